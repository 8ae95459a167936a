"""Project pseudo-labelling and `b2p pseudo-label`."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from app.cli import main
from app.cli._progress import stop_on_ctrl_c
from ml.project.store import Box, Project
from ml.teachers import make_teacher
from ml.teachers.pseudo_label import EDITED, EXISTING, NO_BOXES, pseudo_label_project


def write_disc(path: Path, cx: int, cy: int, r: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    img = np.full((96, 128, 3), 100, np.uint8) + rng.integers(0, 20, (96, 128, 3), np.uint8)
    cv2.circle(img, (cx, cy), r, (220, 50, 40), -1)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)


@pytest.fixture
def proj(tmp_path: Path) -> Project:
    """Four photos: a, b, c with a boxed disc each, d without boxes, and a broken e."""
    photos = tmp_path / "photos"
    for i, name in enumerate("abcd"):
        write_disc(photos / f"{name}.png", 40 + 10 * i, 48, 16, i)
    (photos / "e.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    p = Project.create(tmp_path / "proj", photos)
    for i, name in enumerate("abc"):
        cx = 40 + 10 * i
        p.set_boxes(f"{name}.png", [Box(cx - 20, 28, cx + 20, 68, 2)])
    p.set_boxes("e.png", [Box(1, 1, 20, 20, 1)])
    return p


def test_labels_boxed_images_and_records_bad_ones(proj):
    seen = []
    summary = pseudo_label_project(proj, make_teacher("box"), progress=seen.append)
    assert len(summary.done) == 3 and summary.skipped_for(NO_BOXES) == ["d.png"]
    assert list(summary.failed) == ["e.png"]
    assert "e.png" in summary.problems()[0]
    assert not summary.stopped and summary.total == 5
    assert [p.done for p in seen] == [1, 2, 3, 4, 5] and seen[-1].total == 5
    label = proj.load_mask("a.png")
    assert label.shape == (96, 128) and (label[28:68, 20:60] == 2).all()
    assert (label == 2).sum() == 40 * 40
    rec = Project.open(proj.root).record("a.png")  # saved to disk, not just in memory
    assert rec.teacher.source == "box" and rec.teacher.settings["name"] == "box"
    assert proj.record("d.png").teacher is None


def test_resumable_and_edited_masks_untouched(proj):
    first = pseudo_label_project(proj, make_teacher("box"), keys=["a.png", "b.png"])
    assert len(first.done) == 2
    edited = np.zeros((96, 128), np.uint8)
    edited[0:5, 0:5] = 1
    proj.save_edited_mask("a.png", edited)
    again = pseudo_label_project(proj, make_teacher("grabcut"), only_missing=True)
    assert again.skipped_for(EDITED) == ["a.png"] and again.skipped_for(EXISTING) == ["b.png"]
    assert again.done == ("c.png",)  # only c.png was missing
    assert proj.record("b.png").teacher.source == "box"
    assert proj.record("c.png").teacher.source == "grabcut"
    redo = pseudo_label_project(proj, make_teacher("grabcut"))
    assert len(redo.done) == 3 - 1 and len(redo.skipped_for(EDITED)) == 1
    np.testing.assert_array_equal(proj.load_mask("a.png"), edited)
    assert proj.record("a.png").teacher.edited


def test_should_stop_between_images_keeps_finished_work(proj):
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 2  # let two images through

    summary = pseudo_label_project(proj, make_teacher("box"), should_stop=stop)
    assert summary.stopped and len(summary.done) == 2
    assert Project.open(proj.root).record("b.png").teacher is not None
    assert proj.record("c.png").teacher is None
    rest = pseudo_label_project(proj, make_teacher("box"), only_missing=True)
    assert len(rest.done) == 1 and len(rest.skipped_for(EXISTING)) == 2


def test_unknown_key_fails_before_work(proj):
    from ml.project.store import ProjectError

    with pytest.raises(ProjectError, match="nope.png"):
        pseudo_label_project(proj, make_teacher("box"), keys=["a.png", "nope.png"])
    assert proj.record("a.png").teacher is None


def test_grabcut_masks_follow_the_disc(proj):
    pseudo_label_project(proj, make_teacher("grabcut"), keys=["b.png"])
    label = proj.load_mask("b.png")
    gt = np.zeros((96, 128), np.uint8)
    cv2.circle(gt, (50, 48), 16, 1, -1)
    m = label == 2
    assert (m & (gt > 0)).sum() / (m | (gt > 0)).sum() > 0.8


# ------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("teacher", ["grabcut", "box"])
def test_cli_pseudo_label_end_to_end(proj, teacher, capsys):
    (proj.root.parent / "photos" / "e.png").unlink()
    proj.remove_images(["e.png"])
    rc = main(["pseudo-label", str(proj.root), "--teacher", teacher, "--pad", "3"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "pseudo-labelled 3 of 4 images" in out and "1 without boxes" in out
    reopened = Project.open(proj.root)
    assert reopened.record("a.png").teacher.source == teacher
    assert reopened.record("a.png").teacher.settings["pad"] == 3
    rc = main(["pseudo-label", str(proj.root), "--teacher", teacher, "--only-missing"])
    assert rc == 0 and "skipped 0 edited, 3 existing" in capsys.readouterr().out


def test_cli_default_teacher_is_auto(proj, capsys):
    # students learn best from it on every set measured (docs/RESULTS.md, round 6)
    (proj.root.parent / "photos" / "e.png").unlink()
    proj.remove_images(["e.png"])
    assert main(["pseudo-label", str(proj.root)]) == 0, capsys.readouterr().out
    assert Project.open(proj.root).record("a.png").teacher.source == "auto"


def test_cli_reports_bad_images_with_nonzero_exit(proj, capsys):
    rc = main(["pseudo-label", str(proj.root), "--teacher", "box"])
    cap = capsys.readouterr()
    assert rc == 1
    assert "error: e.png:" in cap.out and "could not be pseudo-labelled" in cap.err
    assert Project.open(proj.root).record("c.png").teacher is not None  # the rest went on


def test_cli_sam_without_checkpoint_says_how_to_get_it(proj, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("B2P_WEIGHTS_DIR", str(tmp_path / "empty"))  # no cached weights anywhere
    rc = main(["pseudo-label", str(proj.root), "--teacher", "sam", "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "b2p weights download sam_vit_b" in err and len(err.strip().splitlines()) == 1
    rc = main(["pseudo-label", str(proj.root), "--teacher", "box", "--checkpoint", "x.pth"])
    assert rc == 1 and "--checkpoint" in capsys.readouterr().err


def test_ctrl_c_sets_stop_flag_then_aborts():
    before = signal.getsignal(signal.SIGINT)
    with stop_on_ctrl_c("the current image") as flag:
        assert flag == [False]
        os.kill(os.getpid(), signal.SIGINT)
        assert flag == [True]
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
