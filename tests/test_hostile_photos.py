"""A folder of good, awkward and broken photos goes through every CLI step without a traceback.

Each broken photo is named with its reason where it fails; every good one gets a mask.
"""

from __future__ import annotations

import json
import struct
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from app.cli import main
from ml.common import images as I
from ml.project.store import Project


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(path: Path, side: int = 20000, full: bool = True) -> Path:
    """A 1-bit PNG of ``side`` x ``side`` zeros: a few kB on disk, gigabytes once decoded.

    ``full=False`` writes the header and one row only (a file that claims the size)."""
    rows = side if full else 1
    z = zlib.compressobj(9)
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    data = b"".join(z.compress(row) for _ in range(rows)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", data)
                     + _chunk(b"IEND", b""))
    return path


def _disc(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 90, np.uint8) + rng.integers(0, 20, (h, w, 3), np.uint8)
    cv2.circle(img, (w // 2, h // 2), 10, (230, 60, 40), -1)
    return img


GOOD = ["good.png", "good.jpg", "cmyk.jpg", "gray16.png", "alpha.png", "float_nan.tif"]
BROKEN = {"bomb.png": "200 MP limit", "claims_huge.png": "225 MP",
          "empty.png": "empty", "notes.jpg": "not a readable image",
          "float_rgb.tif": "not a readable image"}
LATE = {"truncated.jpg": "truncated"}  # the header reads; decoding fails when it is used


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    d = tmp_path / "photos"
    d.mkdir()
    Image.fromarray(_disc()).save(d / "good.png")
    Image.fromarray(_disc(seed=1)).save(d / "good.jpg", quality=95)
    Image.fromarray(_disc(seed=2)).convert("CMYK").save(d / "cmyk.jpg")
    gray = (_disc(seed=3)[..., 0].astype(np.uint16) * 257)
    Image.fromarray(gray).save(d / "gray16.png")  # mode I;16
    Image.fromarray(_disc(seed=4)).convert("LA").save(d / "alpha.png")
    flt = _disc(seed=5)[..., 0].astype(np.float32)
    flt[0, :4] = [np.nan, np.inf, -np.inf, np.nan]
    Image.fromarray(flt).save(d / "float_nan.tif")  # mode F with non-finite samples
    bomb_png(d / "bomb.png")
    bomb_png(d / "claims_huge.png", side=15000, full=False)  # under Pillow's limit, over ours
    (d / "empty.png").write_bytes(b"")
    (d / "notes.jpg").write_text("field notes, not a photo\n")
    cv2.imwrite(str(d / "float_rgb.tif"), np.random.default_rng(0).random((8, 8, 3),
                                                                         np.float32))
    jpg = (d / "good.jpg").read_bytes()
    (d / "truncated.jpg").write_bytes(jpg[:len(jpg) // 2])
    return d


def _yolo(folder: Path, names: list[str]) -> Path:
    folder.mkdir()
    for name in names:
        (folder / (Path(name).stem + ".txt")).write_text("1 0.5 0.5 0.5 0.6\n")
    return folder


def _run(capsys, *argv: str) -> tuple[int, str]:
    rc = main(list(argv))
    cap = capsys.readouterr()
    out = cap.out + cap.err
    assert "Traceback" not in out, out
    return rc, out


def test_bomb_is_refused_from_its_header_and_big_photos_open(tmp_path):
    bomb = bomb_png(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 100_000
    for read in (I.image_size, I.load_image, I.load_label):
        with pytest.raises(I.ImageError, match=r"20000 x 20000 = 400 MP, over the 200 MP"):
            read(bomb)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning for a field photo
        assert I.image_size(bomb_png(tmp_path / "100mp.png", 10000, full=False)) == (10000,
                                                                                     10000)
        assert I.image_size(bomb_png(tmp_path / "45mp.png", 6700, full=False)) == (6700, 6700)


def test_float_tiff_with_nan_converts_to_a_clean_image(hostile):
    arr = I.load_image(hostile / "float_nan.tif")
    assert arr.dtype == np.uint8 and arr.shape == (48, 64, 3)
    assert arr[24, 32, 0] > 0  # the scale is not poisoned by NaN / inf


def test_scan_names_every_unreadable_photo_and_keeps_it_listed(hostile, tmp_path):
    from ml.common.batch import BatchResult

    proj = Project.create(tmp_path / "proj", hostile)
    assert len(proj.images) == len(GOOD) + len(BROKEN) + len(LATE)
    scan = proj.scan()  # a rescan reads only the unreadable again
    assert isinstance(scan, BatchResult) and not scan.done
    assert sorted(scan.failed) == sorted(BROKEN)
    for name, words in BROKEN.items():
        assert words in scan.failed[name], scan.failed[name]
        assert proj.record(name).width == 0


def test_thumbnail_uses_the_same_checks(hostile):
    assert I.thumbnail(hostile / "gray16.png", 16).size == (16, 12)
    with pytest.raises(I.ImageError, match="bomb.png"):
        I.thumbnail(hostile / "bomb.png", 16)


def test_cli_init_import_pseudo_label_export_masks(hostile, tmp_path, capsys):
    proj_dir = tmp_path / "proj"
    rc, out = _run(capsys, "init", str(proj_dir), "--images", str(hostile))
    assert rc == 1 and (proj_dir / "project.sqlite").is_file()  # partial: made, with warnings
    for name, words in BROKEN.items():
        assert f"{name}: " in out and words in out, name

    rc, out = _run(capsys, "import", str(proj_dir), "--yolo",
                   str(_yolo(tmp_path / "yolo", GOOD + list(BROKEN) + list(LATE))))
    assert rc == 1
    for name in BROKEN:
        assert f"error: {name}: unreadable photo, labels skipped" in out
    assert f"{len(GOOD) + len(LATE)} images" in out

    coco = {"images": [{"id": i, "file_name": n} for i, n in enumerate(GOOD + ["bomb.png"])],
            "categories": [{"id": 1, "name": "dirt"}],
            "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [4, 4, 10, 10]}
                            for i in range(len(GOOD) + 1)]}
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    rc, out = _run(capsys, "import", str(proj_dir), "--coco", str(tmp_path / "coco.json"),
                   "--keep")
    assert rc == 1 and "error: bomb.png: unreadable photo" in out

    rc, out = _run(capsys, "pseudo-label", str(proj_dir), "--teacher", "box")
    assert rc == 1
    for name, words in {**BROKEN, **LATE}.items():
        assert f"error: {name}: " in out and words in out, name
    assert f"pseudo-labelled {len(GOOD)} of" in out

    rc, out = _run(capsys, "export", str(proj_dir), "--format", "png", "--source", "teacher",
                   "--out", str(tmp_path / "png"))
    assert rc == 0 and f"{len(GOOD)} images" in out
    rc, out = _run(capsys, "masks", str(proj_dir), "--out", str(tmp_path / "masks"))
    assert rc == 0
    proj = Project.open(proj_dir)
    for name in GOOD:
        label = np.asarray(Image.open(tmp_path / "masks" / Path(name).with_suffix(".png")))
        assert label.shape == (48, 64) and (label == 2).sum() > 0, name  # the YOLO box's class
        assert proj.record(name).teacher is not None
    for name in [*BROKEN, *LATE]:
        assert proj.record(name).teacher is None

    rc, out = _run(capsys, "rescan", str(proj_dir))
    assert rc == 1 and "0 new photos" in out and "bomb.png" in out
    # a person can clear them: deleted files with --forget-missing, broken ones explicitly
    (hostile / "bomb.png").unlink()
    rc, out = _run(capsys, "rescan", str(proj_dir))
    assert "bomb.png" in out and "bomb.png" in Project.open(proj_dir).keys()  # never automatic
    rc, out = _run(capsys, "rescan", str(proj_dir), "--forget-missing", "--forget-unreadable")
    assert rc == 0 and "forgot" in out and "bomb.png" in out
    keys = set(Project.open(proj_dir).keys())
    assert not set(BROKEN) & keys and set(GOOD) <= keys


def test_report_names_a_damaged_mask_and_goes_on(hostile, tmp_path, capsys):
    proj = Project.create(tmp_path / "proj", hostile)
    label = np.zeros((48, 64), np.uint8)
    label[10:20, 10:20] = 1
    for name in ("good.png", "good.jpg"):
        proj.save_teacher_mask(name, label, "box")
    (proj.root / proj.record("good.jpg").teacher.path).write_bytes(b"broken")
    rc, out = _run(capsys, "report", str(proj.root), "--out", str(tmp_path / "rep"),
                   "--source", "teacher")
    assert rc == 1 and "good.jpg" in out and (tmp_path / "rep" / "report.html").is_file()
    rc, out = _run(capsys, "export", str(proj.root), "--format", "coco", "--source", "teacher",
                   "--out", str(tmp_path / "c.json"))
    assert rc == 1 and "error: good.jpg: damaged mask file" in out
