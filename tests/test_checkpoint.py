"""Model folders: what a checkpoint keeps, old-format folders, and the rules that find folders."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from ml.project.store import Project
from ml.student.checkpoint import (
    CARD_NAME,
    LAST_NAME,
    TRAIN_STATE_NAME,
    WEIGHTS_NAME,
    can_resume,
    current_model,
    find_model,
    list_models,
    model_id,
    new_model_dir,
    resumable_run,
)


# ---------------------------------------------------------------- what a checkpoint keeps
@pytest.fixture
def tiny(tmp_path):
    """(config, backbone file) for a 2-block bitfit student whose backbone comes from a file."""
    import timm
    import torch
    from safetensors.torch import save_file

    from ml.student.config import StudentConfig

    torch.manual_seed(1)
    vit = timm.create_model("vit_small_patch14_dinov2", pretrained=False, img_size=56,
                            num_classes=0, depth=2)
    path = tmp_path / "backbone.safetensors"
    save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, path)
    cfg = StudentConfig(input_size=56, taps=(0, 1), decoder_channels=32,
                        backbone_weights=str(path))
    return cfg, path


def _trained(cfg):
    """A model whose trainable tensors and BN statistics moved away from their start."""
    import torch

    from ml.student.models import build_model

    torch.manual_seed(2)
    model = build_model(cfg)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.01 * torch.randn_like(p))
        model.train()(torch.rand(2, 3, 56, 56))
    return model.eval()


def _same_outputs(a, b) -> None:
    import torch

    x = torch.rand(1, 3, 56, 84, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(a(x)["fine"], b(x)["fine"])


def test_bitfit_checkpoint_leaves_out_the_frozen_backbone_and_reads_it_back(tiny, tmp_path):
    from safetensors import safe_open

    from ml.student.checkpoint import load_model, save_checkpoint
    from ml.student.config import ModelCard

    cfg, backbone_file = tiny
    model = _trained(cfg)
    save_checkpoint(tmp_path / "m", model, ModelCard(student=cfg))
    with safe_open(str(tmp_path / "m" / WEIGHTS_NAME), "pt") as f:
        keys, header = set(f.keys()), f.metadata()
    full = set(model.state_dict())
    assert "backbone.vit.blocks.0.attn.qkv.weight" not in keys  # frozen: read from the file
    assert {"backbone.vit.blocks.0.attn.qkv.bias", "backbone.vit.norm.weight",
            "backbone.vit.pos_embed"} <= keys  # trained, or resampled from the file
    assert {k for k in full if not k.startswith("backbone.")} <= keys  # decoder + BN stats
    assert keys < full
    assert header["b2p.backbone_weights"] == str(backbone_file)
    from ml.weights import sha256_file

    assert header["b2p.backbone_sha256"] == sha256_file(backbone_file)
    loaded, _ = load_model(tmp_path / "m")
    _same_outputs(loaded, model)


def test_a_changed_or_missing_backbone_file_is_refused(tiny, tmp_path):
    from safetensors.torch import load_file, save_file

    from ml.student.checkpoint import load_model, save_checkpoint
    from ml.student.config import ModelCard

    cfg, backbone_file = tiny
    save_checkpoint(tmp_path / "m", _trained(cfg), ModelCard(student=cfg))
    sd = load_file(str(backbone_file))
    sd["cls_token"] = sd["cls_token"] + 1
    save_file(sd, backbone_file)
    with pytest.raises(ValueError, match="SHA-256"):
        load_model(tmp_path / "m")
    backbone_file.unlink()
    with pytest.raises(ValueError, match="needs its backbone weights"):
        load_model(tmp_path / "m")


def test_model_folder_from_before_the_change_still_loads(tiny, tmp_path):
    from safetensors.torch import save_file

    from ml.student.checkpoint import load_model
    from ml.student.config import ModelCard

    cfg, backbone_file = tiny
    model = _trained(cfg)
    old = tmp_path / "old"
    old.mkdir()
    # the format written before: every tensor, no backbone named in the header
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, old / WEIGHTS_NAME,
              metadata={"format": "pt"})
    ModelCard(student=cfg).save(old / CARD_NAME)
    backbone_file.unlink()  # a full checkpoint needs no backbone file
    loaded, card = load_model(old)
    assert card.student == cfg
    _same_outputs(loaded, model)


def test_random_init_checkpoints_hold_the_full_state(tmp_path):
    from safetensors import safe_open

    from ml.student.checkpoint import load_model, save_checkpoint
    from ml.student.config import ModelCard, StudentConfig

    cfg = StudentConfig(input_size=56, taps=(0, 1), decoder_channels=32, backbone_weights="none")
    model = _trained(cfg)
    save_checkpoint(tmp_path / "m", model, ModelCard(student=cfg))
    with safe_open(str(tmp_path / "m" / WEIGHTS_NAME), "pt") as f:
        assert set(f.keys()) == set(model.state_dict())
        assert "b2p.backbone_weights" not in (f.metadata() or {})
    _same_outputs(load_model(tmp_path / "m")[0], model)


def test_fine_tuning_in_another_mode_keeps_what_the_source_trained(tiny, tmp_path):
    import torch

    from ml.student.checkpoint import load_model, load_weights, save_checkpoint
    from ml.student.config import ModelCard
    from ml.student.models import build_model

    cfg, _ = tiny
    source = _trained(cfg)  # bitfit: backbone biases moved
    save_checkpoint(tmp_path / "a", source, ModelCard(student=cfg))
    frozen = replace(cfg, mode="frozen")
    model = build_model(replace(frozen, backbone_weights="none"))
    load_weights(model, tmp_path / "a")
    save_checkpoint(tmp_path / "b", model, ModelCard(student=frozen))
    loaded, _ = load_model(tmp_path / "b")
    bias = "backbone.vit.blocks.0.attn.qkv.bias"  # frozen now, but not the file's value
    assert torch.equal(loaded.state_dict()[bias], source.state_dict()[bias])
    _same_outputs(loaded, source)


# ---------------------------------------------------------------- finding model folders
def _model(folder: Path, weights: bytes, mtime: float, resumable: bool = False) -> Path:
    folder.mkdir(parents=True)
    (folder / WEIGHTS_NAME).write_bytes(weights)
    (folder / CARD_NAME).write_text("{}")
    os.utime(folder / WEIGHTS_NAME, (mtime, mtime))
    if resumable:
        last = folder / LAST_NAME
        last.mkdir()
        for name in (WEIGHTS_NAME, CARD_NAME, TRAIN_STATE_NAME):
            (last / name).write_bytes(b"state" + weights)
            os.utime(last / name, (mtime, mtime))
    return folder


@pytest.fixture
def project(tmp_path) -> Project:
    photos = tmp_path / "photos"
    photos.mkdir()
    return Project.create(tmp_path / "proj", photos)


def test_list_models_finds_nested_folders_oldest_first_without_run_states(project):
    root = project.models_dir()
    a = _model(root / "student-a", b"a", 1000, resumable=True)
    b = _model(root / "experiments" / "b", b"b", 3000)
    c = _model(root / "student-c", b"c", 2000)
    (root / "half").mkdir()
    (root / "half" / WEIGHTS_NAME).write_bytes(b"no card")
    assert list_models(project) == [a, c, b]
    assert list_models(root) == [a, c, b]  # a folder works as well as a project
    assert current_model(project) == b


def test_no_models_means_none(project, tmp_path):
    assert list_models(project) == [] and current_model(project) is None
    assert resumable_run(project) is None and list_models(tmp_path / "absent") == []


def test_resumable_run_is_the_newest_saved_run_state(project):
    root = project.models_dir()
    old = _model(root / "old", b"o", 1000, resumable=True)
    new = _model(root / "deep" / "new", b"n", 2000, resumable=True)
    _model(root / "best-only", b"x", 3000)  # newest model, but nothing to resume
    assert resumable_run(project) == new
    assert can_resume(old) and not can_resume(root / "best-only")


def test_find_model_by_recorded_folder_by_name_and_by_hash(project, tmp_path):
    root = project.models_dir()
    a = _model(root / "deep" / "run-a", b"weights a", 1000)
    mid = model_id(a)
    assert find_model(mid, project) == a  # only the hash names it
    named = _model(root / mid[:6], b"other", 1000)
    assert find_model(mid[:6], project) == named  # PROJECT/models/<id>
    elsewhere = _model(tmp_path / "moved", b"weights a", 1000)
    assert find_model(mid, project, recorded=elsewhere) == elsewhere
    assert find_model("0" * 12, project) is None
    assert find_model("", project) is None


def test_new_model_dir_never_reuses_a_folder(project):
    first = new_model_dir(project, "student")
    first.mkdir(parents=True)
    second = new_model_dir(project, "student")
    assert first.parent == second.parent == project.models_dir()
    assert second != first and second.name.startswith("student-") and not second.exists()


def test_a_cards_thin_widths_round_trip_and_an_old_card_has_none(tmp_path):
    import json

    from ml.student.config import ModelCard

    ModelCard(thin_widths={"3": 5.6}).save(tmp_path / "c.json")
    assert ModelCard.load(tmp_path / "c.json").thin_widths == {"3": 5.6}
    old = json.loads((tmp_path / "c.json").read_text())
    del old["thin_widths"]  # a card written before thin classes were drawn as lines
    (tmp_path / "c.json").write_text(json.dumps(old))
    assert ModelCard.load(tmp_path / "c.json").thin_widths == {}
