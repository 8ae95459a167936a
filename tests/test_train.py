"""Training loop, data split, feature cache and ``b2p train`` on tiny synthetic projects."""

from __future__ import annotations

import math
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ml.project.store import Project
from ml.student.config import ModelCard, StudentConfig, TrainConfig
from ml.training import data as D
from ml.training.events import Checkpoint, Done, Setup, Step, Stopped, Validation

STUDENT = StudentConfig(input_size=56, backbone_weights="none", decoder_channels=32, taps=(0, 1))


def _photo(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Grey noisy photo with a red blob (dirt, 1) and a dark line (damage, 2)."""
    img = rng.integers(90, 140, (h, w, 3), dtype=np.uint8)
    lab = np.zeros((h, w), np.uint8)
    y, x = rng.integers(4, h - 20), rng.integers(4, w - 20)
    img[y:y + 14, x:x + 14] = (200, 40, 40)
    lab[y:y + 14, x:x + 14] = 1
    r = int(rng.integers(2, h - 4))
    img[r:r + 2, :] = 20
    lab[r:r + 2, :] = 2
    return img, lab


def make_project(root: Path, n: int, seed: int = 0) -> Project:
    rng = np.random.default_rng(seed)
    photos = root / "photos"
    photos.mkdir(parents=True)
    labels = {}
    for i in range(n):
        img, lab = _photo(rng, 64, 64 + 8 * (i % 3))
        Image.fromarray(img).save(photos / f"p{i}.png")
        labels[f"p{i}.png"] = lab
    proj = Project.create(root / "proj", photos)
    with proj.batch():
        for k, lab in labels.items():
            proj.save_teacher_mask(k, lab, "test")
    return proj


def cfg(**kw) -> TrainConfig:
    # whole photos (crop 0): the step counts asserted below are one view per photo
    base = dict(epochs=2, batch_size=4, device="cpu", patience=50, crop=0)
    return TrainConfig(**(base | kw))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short bitfit run shared by the checkpoint, EMA and split tests."""
    from ml.training.trainer import train

    root = tmp_path_factory.mktemp("trained")
    proj = make_project(root, 6)
    out = root / "model"
    events = []
    result = train(proj, out, STUDENT, cfg(), on_event=events.append)
    return proj, out, result, events


# ---------------------------------------------------------------- data
def test_split_is_persisted_and_reused_new_images_train(tmp_path):
    proj = make_project(tmp_path, 6)
    keys = D.labelled_keys(proj)
    train_keys, val = D.split_keys(proj, keys, 0.2, seed=3)
    assert len(val) == 1 and set(train_keys) | set(val) == set(keys)
    again = Project.open(proj.root)
    assert again.split == {"seed": 3, "val": val}
    t2, v2 = D.split_keys(again, keys + ["new.png"], 0.5, seed=99)  # other seed: split kept
    assert v2 == val and "new.png" in t2


def test_few_images_have_no_val_split(tmp_path):
    proj = make_project(tmp_path, 3)
    train_keys, val = D.split_keys(proj, D.labelled_keys(proj))
    assert val == [] and len(train_keys) == 3


def test_views_shapes_padding_and_defect_biased_crops(tmp_path):
    proj = make_project(tmp_path, 2)
    samples = D.load_samples(proj, proj.keys(), long_side=1000)
    views = D.fixed_views(samples, proj.keys(), crop=48, flips=True)
    assert len(views) == 2 * (2 * 2) + 2 * (2 * 2)  # 64x64 and 64x72 -> 2x2 grids, x2 flips
    ds = D.RandomViews(samples, proj.keys(), 56, crop=80, augment=True, length=30,
                       rng=np.random.default_rng(0))
    hits = 0
    for i in range(30):
        x, y = ds[i]
        assert x.shape == (3, 56, 56) and x.dtype == torch.float32 and 0 <= x.min() <= x.max() <= 1
        assert y.shape == (56, 56) and y.dtype == torch.long
        assert (y == 255).any()  # an 80 px crop of a 64 px photo is padded with ignore
        hits += int(((y > 0) & (y < 255)).any())
    assert hits >= 20


# ---------------------------------------------------------------- training
def test_loss_falls_on_a_fixed_batch(tmp_path):
    from ml.student.models import build_model
    from ml.training.losses import B2PLoss

    proj = make_project(tmp_path, 4)
    samples = D.load_samples(proj, proj.keys(), long_side=224)
    x, y = D.collate([D.FixedViews(samples, D.fixed_views(samples, proj.keys()), 56)[i]
                      for i in range(2)])
    torch.manual_seed(0)
    model = build_model(STUDENT)
    loss_fn = B2PLoss(TrainConfig(), 3)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-4)
    losses = []
    for _ in range(6):
        loss, _ = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0]


def test_checkpoint_written_every_epoch_with_history(trained):
    _, out, result, events = trained
    assert result.epochs_run == 2 and not result.stopped
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert (out / "model.safetensors").is_file() and (out / "last" / "train_state.pt").is_file()
    last = ModelCard.load(out / "last" / "config.json")
    best = ModelCard.load(out / "config.json")
    assert last.epoch == 2 and len(best.history) == 2
    assert best.epoch == result.best_epoch and best.best_metric == result.best_metric
    train_events = [e for e in events if isinstance(e, Step)]
    assert train_events[-1].step == train_events[-1].total_steps == len(train_events)
    assert all(math.isfinite(v) for e in train_events
               for v in (e.loss, e.loss_binary, e.loss_fine, e.corrected_frac, e.lr))
    val_events = [e for e in events if isinstance(e, Validation)]
    assert len(val_events) == 2 and 0.0 <= val_events[0].val_anomaly_miou <= 1.0
    assert [type(e) for e in events if isinstance(e, (Checkpoint, Done))] == [
        Checkpoint, Checkpoint, Done]


def test_ema_differs_from_raw_weights_and_is_what_is_saved(trained):
    from safetensors.torch import load_file

    from ml.training.trainer import load_train_state

    _, out, _, _ = trained
    state = load_train_state(out)
    raw, ema = state["raw_model"], state["ema"]["model"]
    trainable = [k for k in raw if "decoder" in k and k.endswith("weight")]
    assert any(not torch.equal(raw[k], ema[k]) for k in trainable)
    saved = load_file(str(out / "last" / "model.safetensors"))
    assert all(torch.equal(saved[k], ema[k]) for k in saved)


def test_model_loads_for_prediction(trained):
    from ml.student.checkpoint import load_model

    _, out, _, _ = trained
    model, card = load_model(out)
    assert card.student.input_size == 56
    assert card.free_threshold == {}  # one validation photo: too few to choose a threshold
    assert model(torch.rand(1, 3, 56, 56))["fine"].shape == (1, 3, 56, 56)


def test_enough_validation_photos_choose_the_box_free_threshold(tmp_path, capsys):
    from app.cli._train import _print_free_threshold
    from ml.evaluation.free_threshold import GRID
    from ml.training.trainer import train

    proj = make_project(tmp_path, 6)
    out = tmp_path / "model"
    train(proj, out, STUDENT, cfg(epochs=1, val_fraction=0.9))
    card = ModelCard.load(out / "config.json")
    assert len(proj.split["val"]) == 5
    # the best epoch's box-free threshold, chosen on the validation photos' pixels
    assert card.free_threshold["threshold"] in GRID and card.free_threshold["pixels"] > 0
    _print_free_threshold(out)  # what `b2p train` says at its end
    assert "box-free threshold" in capsys.readouterr().out


@pytest.mark.parametrize("val_fraction,kept", [(0.2, 3), (0.9, 1)])
def test_the_best_epoch_is_chosen_on_five_validation_photos_or_more(tmp_path, monkeypatch,
                                                                     val_fraction, kept):
    """The validation metric falls after epoch 1: five validation photos keep epoch 1, one
    validation photo is too few to choose by and the last epoch is kept."""
    import ml.training.trainer as T

    falling = iter([0.5, 0.2, 0.1])
    validate = T.Trainer._validate

    def scripted(self):
        return {**validate(self), "anomaly_miou": next(falling)}

    monkeypatch.setattr(T.Trainer, "_validate", scripted)
    proj = make_project(tmp_path, 6)
    out = tmp_path / "model"
    result = T.train(proj, out, STUDENT, cfg(epochs=3, val_fraction=val_fraction))
    assert result.epoch_chosen is (kept == 1)
    assert result.best_epoch == kept and ModelCard.load(out / "config.json").epoch == kept
    assert ("kept the last epoch" in result.kept_line()) is (kept == 3)
    assert (ModelCard.load(out / "config.json").free_threshold != {}) is (kept == 1)


def test_resume_continues_from_the_saved_epoch(trained, tmp_path):
    from ml.training.trainer import train

    proj, out, first, _ = trained
    copy = tmp_path / "model"
    shutil.copytree(out, copy)
    events = []
    result = train(proj, copy, StudentConfig(), cfg(epochs=3), resume=True,
                   on_event=events.append)
    assert result.epochs_run == 3 and [h["epoch"] for h in result.history] == [1, 2, 3]
    assert result.history[:2] == first.history
    steps = [e for e in events if isinstance(e, Step)]
    assert len(steps) == 2  # one more epoch: 5 training images in batches of 4
    assert all(e.epoch == 3 for e in steps)
    setup = events[0]
    assert isinstance(setup, Setup) and (setup.start_epoch, setup.start_step) == (2, 4)
    assert [e.step for e in steps] == [5, 6]  # the global step count continues


def test_resumed_eta_comes_from_this_sessions_pace(trained, tmp_path, monkeypatch):
    """Every step takes 10 s of a fake clock: the ETA is 10 s per step still to do."""
    import ml.training.trainer as T

    proj, out, _, _ = trained
    copy = tmp_path / "model"
    shutil.copytree(out, copy)
    clock = [1000.0]
    monkeypatch.setattr(T.time, "monotonic", lambda: clock[0])
    step = T.Trainer._train_step

    def slow_step(self, idx, epoch):
        clock[0] += 10.0
        return step(self, idx, epoch)

    monkeypatch.setattr(T.Trainer, "_train_step", slow_step)
    events = []
    T.train(proj, copy, StudentConfig(), cfg(epochs=4), resume=True, on_event=events.append)
    steps = [e for e in events if isinstance(e, Step)]
    assert [e.step for e in steps] == [5, 6, 7, 8]
    assert [e.eta_s for e in steps] == pytest.approx([30.0, 20.0, 10.0, 0.0])


def test_events_survive_the_json_round_trip(trained):
    import json

    from ml.training.events import event_name, from_json, to_json

    events = trained[3]
    assert {event_name(type(e)) for e in events} == {"setup", "step", "validation",
                                                     "checkpoint", "done"}
    again = [from_json(json.loads(json.dumps(to_json(e)))) for e in events]
    assert again == events
    with pytest.raises(ValueError, match="unknown training event"):
        from_json({"event": "progress", "done": 1})


def test_cancel_stops_within_a_step_and_saves(tmp_path):
    from ml.training.trainer import train

    proj = make_project(tmp_path, 3)  # few images: validation on the training images
    events = []
    result = train(proj, tmp_path / "m", STUDENT, cfg(batch_size=1, epochs=3, crop=48),
                   on_event=events.append,
                   should_stop=lambda: sum(isinstance(e, Step) for e in events) >= 2)
    assert isinstance(events[0], Setup) and events[0].val_on_train is True
    assert result.stopped and result.epochs_run == 0
    assert sum(isinstance(e, Step) for e in events) == 2
    assert isinstance(events[-1], Stopped) and events[-1].result == result
    assert (tmp_path / "m" / "last" / "train_state.pt").is_file()
    assert (tmp_path / "m" / "model.safetensors").is_file()


def test_frozen_mode_encodes_each_view_once(tmp_path, monkeypatch):
    import ml.student.models as student_mod
    from ml.training.trainer import train

    encoded = []
    build = student_mod.build_model

    def counting_build(c):
        model = build(c)
        enc = model.encode

        def encode(x):
            encoded.append(x.shape[0])
            return enc(x)

        model.encode = encode
        return model

    monkeypatch.setattr(student_mod, "build_model", counting_build)
    proj = make_project(tmp_path, 5)  # 4 train + 1 val
    frozen = replace(STUDENT, mode="frozen")
    result = train(proj, tmp_path / "m", frozen, cfg(epochs=2))
    assert result.cached and result.epochs_run == 2
    assert sum(encoded) == 4 * 2 + 1  # train images x (plain, flipped) + the val image


def test_bitfit_mode_does_not_cache(trained):
    assert trained[2].cached is False


# ---------------------------------------------------------------- CLI
def test_cli_trains_a_tiny_project(trained, tmp_path, capsys):
    from app.cli import main

    proj, model_dir, _, _ = trained
    out = tmp_path / "cli_model"
    # --from a tiny model keeps its small config (2 taps, 32 channels): fast on a CPU
    rc = main(["train", str(proj.root), "--out", str(out), "--mode", "frozen", "--epochs", "1",
               "--input-size", "56", "--batch-size", "4", "--backbone-weights", "none",
               "--device", "cpu", "--seed", "1", "--from", str(model_dir)])
    text = capsys.readouterr()
    assert rc == 0, text.err
    # one validation photo: the last epoch is kept, and the run says so
    assert "trainable" in text.err + text.out and "kept the last epoch" in text.out
    card = ModelCard.load(out / "config.json")
    assert card.train.seed == 1 and card.student.mode == "frozen" and len(card.history) == 1
    assert card.student.taps == (0, 1)
    assert main(["train", str(proj.root), "--out", str(out), "--input-size", "50"]) == 1
    assert "multiple of 14" in capsys.readouterr().err
    # fine-tuning keeps the model's build: another number of decoders is refused, clearly
    assert main(["train", str(proj.root), "--out", str(tmp_path / "m3"), "--epochs", "1",
                 "--device", "cpu", "--from", str(model_dir), "--members", "3"]) == 1
    assert "cannot fine-tune a model built otherwise: members 1 (asked: 3)" in (
        capsys.readouterr().err)


def test_resume_state_keeps_only_what_trains_and_resumes(tmp_path):
    import timm
    from safetensors.torch import save_file

    from ml.student.checkpoint import pretrained_keys
    from ml.training.trainer import load_train_state, train

    torch.manual_seed(1)
    vit = timm.create_model(STUDENT.backbone, pretrained=False, img_size=56, num_classes=0,
                            depth=2)
    backbone = tmp_path / "backbone.safetensors"
    save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, backbone)
    student = replace(STUDENT, backbone_weights=str(backbone))
    proj = make_project(tmp_path, 5)
    out = tmp_path / "m"
    train(proj, out, student, cfg(epochs=1))
    state = load_train_state(out)
    frozen = "backbone.vit.blocks.0.attn.qkv.weight"  # read from the backbone file
    for kept in (state["raw_model"], state["ema"]["model"]):
        assert frozen not in kept and "backbone.vit.blocks.0.attn.qkv.bias" in kept
        assert any(k.startswith("decoder.") for k in kept)
    result = train(proj, out, StudentConfig(), cfg(epochs=2), resume=True)
    assert result.epochs_run == 2 and [h["epoch"] for h in result.history] == [1, 2]
    from ml.student.checkpoint import load_model

    model, _ = load_model(out)
    assert frozen in pretrained_keys(model)
