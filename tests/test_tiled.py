"""Streamed tiled prediction: same result as the whole-image blend, no seams, bounded memory,
stop and progress, band-by-band box constraint, PNG masks written as they come, TIFF by region."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ml.common.classes import DEFAULT_CLASSES
from ml.common.images import load_image, load_label
from ml.common.progress import Cancelled
from ml.prediction import batch_predict as BP
from ml.prediction import predict as P
from ml.prediction.box_constraint import constrain_to_boxes, undo_class_weights
from ml.prediction.photo_rows import ArrayRows, TiffRows, open_rows
from ml.prediction.png_stream import PngMaskSink
from ml.prediction.tiled import ArraySink, TileGrid, ramp_window, tiled_bands, upsample_bands
from ml.student.checkpoint import save_checkpoint
from ml.student.config import ModelCard, StudentConfig
from ml.student.models import build_model

TINY = StudentConfig(input_size=28, backbone_weights="none", taps=(0, 1), decoder_channels=32)
CARD = ModelCard(student=TINY, classes=[c.to_json() for c in DEFAULT_CLASSES])


@pytest.fixture(scope="module")
def student() -> nn.Module:
    torch.manual_seed(0)
    return build_model(TINY).eval()


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _whole_image_tiled(pred: P.Predictor, image: np.ndarray) -> np.ndarray:
    """The blend as it was before streaming: whole-photo sums of weighted tiles."""
    h, w = image.shape[:2]
    t = pred.tile
    ph, pw = max(0, t - h), max(0, t - w)
    if ph or pw:
        image = np.pad(image, ((0, ph), (0, pw), (0, 0)),
                       mode="reflect" if min(h, w) > 1 else "edge")
    hp, wp = image.shape[:2]
    step = t - pred.overlap
    origins = [(y, x) for y in P._starts(hp, t, step) for x in P._starts(wp, t, step)]
    probs = pred._forward(np.stack([image[y:y + t, x:x + t] for y, x in origins]))
    window = ramp_window(t, pred.overlap)
    acc, wsum = torch.zeros((probs.shape[1], hp, wp)), torch.zeros((hp, wp))
    for (y, x), p in zip(origins, probs, strict=True):
        acc[:, y:y + t, x:x + t] += p * window
        wsum[y:y + t, x:x + t] += window
    return (acc / wsum)[:, :h, :w].numpy()


class Local(nn.Module):
    """Logits that depend on each pixel alone (1x1), plus ``edge`` x the column's position in
    the tile: a model whose tiles disagree at their borders, as real models do near edges."""

    def __init__(self, edge: float = 0.0) -> None:
        super().__init__()
        self.edge = edge

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        dark = 1.0 - x.mean(dim=1)  # (B, H, W)
        col = torch.linspace(0, 1, x.shape[-1])[None, None, :].expand_as(dark)
        logits = torch.stack([2 - 4 * dark, 4 * dark - 2 + self.edge * col, dark * 0], dim=1)
        return {"fine": logits}


def _local(edge: float = 0.0, overlap: float = 0.25) -> P.Predictor:
    return P.Predictor(Local(edge), CARD, "cpu", tiled=True, overlap=overlap)


def test_streamed_equals_the_whole_image_blend(student):
    # the raw argmax: no box-free speckle removal (ml/prediction/speckle.py) in this comparison
    pred = P.Predictor(student, CARD, "cpu", tiled=True, batch_size=8, min_region_cells=0)
    for h, w, seed in [(50, 70, 1), (20, 25, 2), (28, 45, 3), (1, 40, 4)]:  # last two: < a tile
        image = _photo(h, w, seed)
        ref = _whole_image_tiled(pred, image)
        res = pred.predict(image)
        np.testing.assert_allclose(pred.probabilities(image), ref, atol=1e-5)
        assert res.label.shape == res.confidence.shape == (h, w)
        sure = np.sort(ref, axis=0)[-1] - np.sort(ref, axis=0)[-2] > 1e-4  # no near-ties
        np.testing.assert_array_equal(res.label[sure], ref.argmax(0)[sure])
        np.testing.assert_allclose(res.confidence, np.round(ref.max(0) * 255), atol=1)


def test_a_pixel_local_model_is_stitched_exactly_at_every_border():
    image = _photo(90, 130, 5)
    pred = _local()
    with torch.inference_mode():
        direct = Local()(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255)
    expected = direct["fine"].softmax(1)[0].numpy()
    np.testing.assert_allclose(pred.probabilities(image), expected, atol=1e-6)


def test_ramp_blending_leaves_no_seam_where_tiles_disagree():
    image = np.full((56, 140, 3), 128, np.uint8)  # flat photo: only the tiles' bias varies
    hard = _local(edge=4.0, overlap=0.0).probabilities(image)[1]
    blended = _local(edge=4.0, overlap=0.25).probabilities(image)[1]
    # without overlap the tile borders show as jumps of the whole bias...
    jumps_hard = np.abs(np.diff(hard, axis=1)).max()
    assert jumps_hard > 0.4
    # ...blended, the largest step between neighbouring columns is a small fraction of it
    jumps = np.abs(np.diff(blended, axis=1))
    assert jumps.max() < jumps_hard / 5


class RecordingRows(ArrayRows):
    def __init__(self, image: np.ndarray, log: list) -> None:
        super().__init__(image)
        self.log = log

    def rows(self, y0: int, y1: int) -> np.ndarray:
        self.log.append(("read", y0, y1))
        return super().rows(y0, y1)


class RecordingSink(ArraySink):
    def __init__(self, h: int, w: int, log: list) -> None:
        super().__init__(h, w)
        self.log = log

    def write(self, y0, label, confidence, probs=None) -> None:
        self.log.append(("write", y0, y0 + len(label)))
        super().write(y0, label, confidence, probs)


@pytest.mark.parametrize("w, batch", [(90, 3), (20, 4)])  # batches across rows; 1-tile rows
def test_memory_is_bounded_by_one_row_of_tiles(w, batch):
    """Structural: reads of at most a tile's rows, batches of at most batch_size tiles, and
    each band written as soon as its tile row is done, at most one tile row read ahead, so no
    whole-photo buffer exists."""
    h, t = 200, 28
    pred = P.Predictor(Local(), CARD, "cpu", tiled=True, batch_size=batch)
    batches = []
    forward = pred._forward
    pred._forward = lambda b: (batches.append(len(b)), forward(b))[1]
    log: list = []
    image = _photo(h, w, 6)
    sink = RecordingSink(h, w, log)
    pred.stream(RecordingRows(image, log), sink)
    reads = [e for e in log if e[0] == "read"]
    writes = [e for e in log if e[0] == "write"]
    grid = TileGrid(h, w, t, pred.overlap)
    assert len(reads) == len(grid.ys) and all(b - a <= t for _, a, b in reads)
    assert max(batches) <= batch and sum(batches) == grid.n_tiles
    if len(grid.xs) > batch:  # batches run on into the next row: none is left part-empty
        assert set(batches[:-1]) == {batch}
    # bands leave as they finish: never more than two tile rows read ahead of the writes
    ahead = np.cumsum([1 if k == "read" else -1 for k, *_ in log])
    assert ahead.max() <= 2 and ahead[-1] == 0 and len(writes) == len(grid.ys)
    assert log[0][0] == "read" and log[-1][0] == "write"
    assert [a for _, a, _ in writes] == [0] + [b for *_, b in writes[:-1]] and writes[-1][2] == h
    assert max(b - a for _, a, b in writes) <= t  # a step, the last band a whole tile
    np.testing.assert_array_equal(sink.label, pred.predict(image).label)
    np.testing.assert_allclose(pred.probabilities(image), _whole_image_tiled(pred, image),
                               atol=1e-5)


def test_stop_mid_photo_raises_and_progress_counts_tiles():
    pred = P.Predictor(Local(), CARD, "cpu", tiled=True, batch_size=2)
    image = _photo(100, 100, 7)
    n = pred.tile_count(100, 100)
    events = []
    pred.predict(image, progress=events.append)
    assert n == TileGrid(100, 100, 28, 7).n_tiles > 2
    assert events[-1].done == n and all(e.total == n for e in events)
    assert [e.done for e in events] == sorted(e.done for e in events)
    asked = []
    with pytest.raises(Cancelled):
        pred.predict(image, should_stop=lambda: asked.append(1) or len(asked) > 3)
    assert len(asked) == 4  # stopped after three batches, not at the end of the photo


def test_folder_prediction_writes_bands_to_png_and_stops_cleanly(student, tmp_path):
    model_dir = save_checkpoint(tmp_path / "m", student, CARD)
    photos = tmp_path / "photos"
    photos.mkdir()
    image = _photo(50, 60, 8)
    from PIL import Image

    Image.fromarray(image).save(photos / "a.png")
    events = []
    out = tmp_path / "out"
    summary = BP.predict_folder(photos, model_dir, out, tiled=True, device="cpu",
                               progress=events.append)
    assert summary.done == ("a.png",)
    expected = P.Predictor.from_dir(model_dir, "cpu", tiled=True).predict(image)
    np.testing.assert_array_equal(load_label(out / "a.png"), expected.label)
    np.testing.assert_array_equal(load_label(out / "a_conf.png"), expected.confidence)
    tile_events = [e for e in events if "tiles" in e.extra]
    assert tile_events and tile_events[-1].extra["tiles"].split("/")[0] == \
        tile_events[-1].extra["tiles"].split("/")[1]
    assert all(e.done == 0 and e.total == 1 for e in tile_events)
    # a stop mid-photo: no mask, no temp file, the batch says stopped
    calls = []
    out2 = tmp_path / "out2"
    summary = BP.predict_folder(photos, model_dir, out2, tiled=True, device="cpu",
                               should_stop=lambda: calls.append(1) or len(calls) > 3)
    assert summary.stopped and not summary.done and not summary.failed
    assert not [p for p in out2.rglob("*") if p.is_file()]


def test_project_stop_mid_photo_keeps_finished_photos(project, student, tmp_path):
    model_dir = save_checkpoint(tmp_path / "m", student, CARD)
    first = project.keys()[0]
    events = []
    # stop once the second photo has started (each photo here takes two batches of tiles)
    summary = BP.predict_project(project, model_dir, tiled=True, device="cpu",
                                progress=events.append,
                                should_stop=lambda: any(e.done == 1 for e in events))
    assert summary.stopped and summary.done == (first,) and not summary.failed
    assert project.load_mask(first, "student") is not None
    assert project.load_mask(project.keys()[1], "student") is None


@pytest.mark.parametrize("rule", ["posterior", "tight"])
def test_box_constraint_by_band_equals_the_whole_photo(rule):
    pred = _local()
    pred.box_rule = rule
    image = _photo(150, 60, 9)
    image[130:150, :15] = 255  # bright: background for the local model, so box 3 is empty
    probs = pred.probabilities(image)
    if rule == "posterior":
        probs = undo_class_weights(probs, pred.class_weights)
    boxes = np.array([[5, 10, 40, 120], [30, 60, 58, 90], [2, 138, 6, 144]], np.float32)
    classes = np.array([1, 2, 1])
    teacher = np.zeros((150, 60), np.uint8)
    teacher[:, :] = 2
    res = pred.predict(image, boxes, teacher, box_classes=classes)
    label, fell_back = constrain_to_boxes(probs, boxes, teacher, pred.box_pad, classes,
                                          rule=rule)
    np.testing.assert_array_equal(res.label, label)
    if rule == "posterior":
        assert res.fallbacks == fell_back == 1 and (res.label[138:144, 2:6] == 2).all()
    else:  # the tight rule finds the student's likeliest pixels even in a faint box
        assert res.fallbacks == fell_back == 0 and (res.label[138:144, 2:6] == 1).any()
    alone = pred.predict(image, boxes, teacher, box_classes=classes, fallback=False)
    assert alone.fallbacks == 0
    np.testing.assert_array_equal(
        alone.label, constrain_to_boxes(probs, boxes, None, pred.box_pad, classes, rule=rule)[0])


def test_upsampling_by_bands_matches_a_whole_resize():
    probs = torch.rand(3, 17, 23)
    bands = list(upsample_bands(probs, 101, 64, rows=10))
    whole = F.interpolate(probs[None], size=(101, 64), mode="bilinear", align_corners=False)[0]
    assert [y for y, _ in bands] == list(range(0, 101, 10))
    torch.testing.assert_close(torch.cat([b for _, b in bands], dim=1), whole, atol=1e-5,
                               rtol=0)


def test_resize_and_crop_modes_still_give_maps_of_the_photo_size(student):
    pred = P.Predictor(student, CARD, "cpu")
    image = _photo(45, 70, 10)
    small = pred._forward(cv2.resize(image, (28, 28), interpolation=cv2.INTER_AREA)[None])
    whole = F.interpolate(small, size=(45, 70), mode="bilinear", align_corners=False)[0]
    np.testing.assert_allclose(pred.probabilities(image), whole.numpy(), atol=1e-5)


def test_png_rows_read_back_exactly_and_short_writes_leave_nothing(tmp_path):
    rng = np.random.default_rng(0)
    label = rng.integers(0, 3, (37, 29), dtype=np.uint8)
    conf = rng.integers(0, 256, (37, 29), dtype=np.uint8)
    pal = [(0, 0, 0), (255, 0, 0), (0, 0, 255)]
    with PngMaskSink(tmp_path / "l.png", tmp_path / "c.png", 29, 37, pal) as sink:
        for y in range(0, 37, 10):
            sink.write(y, label[y:y + 10], conf[y:y + 10])
    np.testing.assert_array_equal(load_label(tmp_path / "l.png"), label)
    np.testing.assert_array_equal(load_label(tmp_path / "c.png"), conf)
    from PIL import Image

    with Image.open(tmp_path / "l.png") as im:
        assert im.mode == "P" and im.getpalette()[:9] == [0, 0, 0, 255, 0, 0, 0, 0, 255]
    with pytest.raises(ValueError, match="10 of 37 rows"):
        with PngMaskSink(tmp_path / "x.png", tmp_path / "y.png", 29, 37) as sink:
            sink.write(0, label[:10], conf[:10])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "l.png"]


@pytest.mark.parametrize("layout", [{"tile": (32, 48), "compression": "zlib"},
                                    {"rowsperstrip": 7}])
def test_tiff_is_read_by_region(tmp_path, layout):
    tifffile = pytest.importorskip("tifffile")
    image = _photo(100, 150, 11)
    path = tmp_path / "p.tif"
    tifffile.imwrite(path, image, photometric="rgb", **layout)
    whole = load_image(path)
    with open_rows(path) as src:
        assert isinstance(src, TiffRows) and (src.height, src.width) == (100, 150)
        for y0, y1 in [(0, 28), (21, 49), (90, 100), (0, 100)]:
            np.testing.assert_array_equal(src.rows(y0, y1), whole[y0:y1])
    # one strip for the whole photo (as Pillow writes it): read whole, as any photo
    from PIL import Image

    Image.fromarray(image).save(tmp_path / "one.tif")
    with open_rows(tmp_path / "one.tif") as src:
        assert isinstance(src, ArrayRows)
    # rotated by its orientation tag: read whole, turned upright as load_image turns it
    rotated = tmp_path / "rot.tif"
    tifffile.imwrite(rotated, image, photometric="rgb", extratags=[(274, "H", 1, 6, True)],
                     **layout)
    with open_rows(rotated) as src:
        assert isinstance(src, ArrayRows) and (src.height, src.width) == (150, 100)
        np.testing.assert_array_equal(src.rows(0, 150), load_image(rotated))


def test_streaming_from_a_tiff_equals_the_array(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    image = _photo(80, 64, 12)
    tifffile.imwrite(tmp_path / "p.tif", image, photometric="rgb", rowsperstrip=5)
    pred = _local()
    with open_rows(tmp_path / "p.tif") as src:
        assert isinstance(src, TiffRows)
        np.testing.assert_array_equal(pred.predict(src).label, pred.predict(image).label)


def test_tiled_bands_yields_each_row_once():
    pred = _local()
    src = ArrayRows(_photo(61, 33, 13))
    grid = TileGrid(61, 33, 28, 7)
    bands = list(tiled_bands(pred._forward, src, grid, 4))
    assert sum(b.shape[1] for _, b in bands) == 61 and all(b.shape[2] == 33 for _, b in bands)


def test_cli_predict_tiled_streams_into_the_project(project, student, tmp_path, capsys):
    from app.cli import main

    model_dir = save_checkpoint(tmp_path / "m", student, CARD)
    assert main(["predict", str(project.root), "--model", str(model_dir), "--device", "cpu",
                 "--tiled", "--no-box-constraint"]) == 0
    assert "predicted 3/3" in capsys.readouterr().out
    reopened = type(project).open(project.root)
    key = reopened.find_key("a")
    assert reopened.record(key).student.settings["mode"] == "tiled"
    expected = P.Predictor(student, CARD, "cpu", tiled=True).predict(reopened.load_image(key))
    np.testing.assert_array_equal(reopened.load_mask(key, "student"), expected.label)
