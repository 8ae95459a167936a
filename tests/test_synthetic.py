import json

import cv2
import numpy as np
import pytest

from app.cli import main
from ml.common.images import load_image, load_label
from ml.datasets.importers import import_yolo
from ml.datasets.synthetic import (
    DAMAGE,
    DIRT,
    generate,
    make_sample,
    mask_boxes,
    write_dataset,
)
from ml.datasets.yolo import boxes_text as yolo_lines
from ml.project.store import Box, Project

SIZE = 128


@pytest.fixture(scope="module")
def samples():
    return generate(12, SIZE, seed=3)


def _same(a, b) -> bool:
    return (a.name == b.name and np.array_equal(a.image, b.image)
            and np.array_equal(a.mask, b.mask) and a.boxes == b.boxes)


def test_same_seed_same_samples_and_longer_sets_extend_shorter_ones():
    a, b = generate(3, 96, seed=7), generate(4, 96, seed=7)
    assert all(_same(x, y) for x, y in zip(a, b[:3], strict=True))
    other = generate(3, 96, seed=8)
    assert not any(np.array_equal(x.image, y.image) for x, y in zip(a, other, strict=True))
    s1 = make_sample(np.random.default_rng(11), 96, "x")
    s2 = make_sample(np.random.default_rng(11), 96, "x")
    assert _same(s1, s2)


def test_shapes_dtypes_and_names(samples):
    widths = set()
    for i, s in enumerate(samples):
        h, w = s.mask.shape
        assert s.name == f"synth_{i:04d}"
        assert s.image.dtype == np.uint8 and s.image.shape == (h, w, 3)
        assert s.mask.dtype == np.uint8 and h == SIZE
        assert set(np.unique(s.mask)) <= {0, DIRT, DAMAGE}
        widths.add(w)
        assert s.image.std() > 5  # a real picture, not a flat fill
    assert any(w != SIZE for w in widths), "some images must be non-square"


def test_boxes_are_the_tight_components_of_each_class(samples):
    for s in samples:
        h, w = s.mask.shape
        expected = set()
        for cls in (DIRT, DAMAGE):
            n, _, stats, _ = cv2.connectedComponentsWithStats((s.mask == cls).astype(np.uint8),
                                                              connectivity=8)
            for x, y, bw, bh, _area in stats[1:]:
                expected.add((float(x), float(y), float(x + bw), float(y + bh), cls))
        got = [(b.x0, b.y0, b.x1, b.y1, b.cls) for b in s.boxes]
        assert len(got) == len(set(got)) and set(got) == expected
        for b in s.boxes:
            assert b.source == "imported"
            assert 0 <= b.x0 < b.x1 <= w and 0 <= b.y0 < b.y1 <= h
            inside = s.mask[int(b.y0):int(b.y1), int(b.x0):int(b.x1)] == b.cls
            # tight: the class touches all four sides of its box
            assert inside[0].any() and inside[-1].any()
            assert inside[:, 0].any() and inside[:, -1].any()


def test_both_classes_and_clean_images_occur(samples):
    per_image = [{b.cls for b in s.boxes} for s in samples]
    assert any(DIRT in c for c in per_image) and any(DAMAGE in c for c in per_image)
    assert sum(len(s.boxes) for s in samples) >= len(samples)
    bigger = generate(40, 64, seed=0)
    assert any(not s.boxes and not s.mask.any() for s in bigger)


def test_defects_are_clipped_to_the_blade_and_damage_wins_overlaps():
    from ml.datasets import synthetic as syn

    rng = np.random.default_rng(2)
    blade = syn._blade_geometry(rng, 160, 200)
    cv = syn._Canvas(np.full((160, 200, 3), 128, np.float32), blade)
    for maker in syn._DIRT_MAKERS + syn._DAMAGE_MAKERS:
        for _ in range(3):
            maker(rng, cv, 0.5)
    assert (cv.mask == DIRT).any() and (cv.mask == DAMAGE).any()
    assert (blade.alpha[cv.mask > 0] >= 0.5).all()
    # a dirt stain over everything, then a crack: the crack's pixels stay damage
    everything = np.ones((160, 200), np.float32)
    cv.apply(everything, 0, 0, DIRT, np.array([100, 90, 80], np.float32), 0.5, True)
    before = cv.mask.copy()
    syn._crack(rng, cv, 1.0)
    assert ((cv.mask == DAMAGE) & (before == DIRT)).sum() > 10
    assert ((cv.mask == DIRT) <= (before == DIRT)).all()


def test_mask_boxes_erases_specks():
    mask = np.zeros((20, 30), np.uint8)
    mask[2:4, 2:3] = DIRT  # 2 px: a speck
    mask[10:15, 5:12] = DAMAGE
    mask[10:15, 12:14] = DIRT  # touches the damage but is its own dirt instance
    boxes = mask_boxes(mask)
    assert boxes == [Box(12, 10, 14, 15, DIRT, "imported"), Box(5, 10, 12, 15, DAMAGE, "imported")]
    assert not mask[2:4, 2:3].any()


def test_yolo_lines_are_zero_based_and_normalised():
    text = yolo_lines([Box(10, 20, 30, 60, DAMAGE, "imported"), Box(0, 0, 50, 100, DIRT)],
                      100, 200)
    assert text.splitlines() == ["1 0.200000 0.200000 0.200000 0.200000",
                                 "0 0.250000 0.250000 0.500000 0.500000"]


def test_write_dataset_files_match_the_samples_and_import_back(tmp_path):
    out = write_dataset(tmp_path / "set", n=3, size=96, seed=4)
    info = json.loads((out / "dataset.json").read_text())
    assert info["classes"] == ["background", "dirt", "damage"]
    assert (info["n"], info["size"], info["name"]) == (3, 96, "synthetic_blades")
    assert "seed 4" in info["source"]
    ref = generate(3, 96, seed=4)
    for s in ref:
        img = load_image(out / "images" / f"{s.name}.jpg")
        assert img.shape == s.image.shape
        assert np.abs(img.astype(int) - s.image.astype(int)).mean() < 4  # JPEG q92
        assert np.array_equal(load_label(out / "masks" / f"{s.name}.png"), s.mask)
        lines = (out / "labels" / f"{s.name}.txt").read_text().splitlines()
        assert len(lines) == len(s.boxes)
    proj = Project.create(tmp_path / "proj", out / "images")
    import_yolo(proj, out / "labels")
    for s in ref:
        got = proj.record(f"{s.name}.jpg").boxes
        assert [b.cls for b in got] == [b.cls for b in s.boxes]
        for g, b in zip(got, s.boxes, strict=True):
            assert g.xyxy == pytest.approx(b.xyxy, abs=0.01)


def test_write_dataset_stops_cleanly_and_rejects_bad_input(tmp_path):
    events = []
    out = write_dataset(tmp_path / "s", n=5, size=64, seed=0, progress=events.append,
                        should_stop=lambda: len(events) >= 2)
    assert [e.done for e in events] == [1, 2] and events[0].total == 5
    assert len(list((out / "images").glob("*.jpg"))) == 2
    assert json.loads((out / "dataset.json").read_text())["n"] == 2
    with pytest.raises(ValueError, match="n must be"):
        write_dataset(tmp_path / "t", n=0)
    with pytest.raises(ValueError, match="size must be"):
        make_sample(np.random.default_rng(0), 16)


def test_cli_synth_writes_the_set(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["synth", str(out), "--n", "2", "--size", "80", "--seed", "1"]) == 0
    assert sorted(p.name for p in (out / "images").iterdir()) == ["synth_0000.jpg",
                                                                 "synth_0001.jpg"]
    assert len(list((out / "masks").glob("*.png"))) == 2
    assert len(list((out / "labels").glob("*.txt"))) == 2
    assert json.loads((out / "dataset.json").read_text())["size"] == 80
    assert str(out) in capsys.readouterr().out
    assert main(["synth", str(tmp_path / "bad"), "--n", "0"]) == 1
    assert "n must be" in capsys.readouterr().err
