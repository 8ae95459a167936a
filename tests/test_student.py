"""The student model, its backbone, the U-Net baseline and checkpoints (tiny sizes, random init)."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
import timm
import torch

from ml.student.checkpoint import load_model, load_train_state, model_id, save_checkpoint
from ml.student.config import ModelCard, StudentConfig, TrainConfig
from ml.student.models import MODELS, Backbone, build_model, count_parameters

SMALL = StudentConfig(input_size=56, backbone_weights="none")
TINY = replace(SMALL, taps=(0, 1), decoder_channels=32)  # 2 blocks, narrow decoder


@pytest.fixture(scope="module")
def b2p() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(SMALL).eval()


def _image(h: int = 56, w: int = 84, b: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(seed))


def test_b2p_output_shapes_follow_the_input(b2p):
    with torch.no_grad():
        out = b2p(_image(56, 84))
    assert set(out) == {"fine", "binary"}
    assert out["fine"].shape == (2, 3, 56, 84)
    assert out["binary"].shape == (2, 2, 56, 84)


def test_ablation_switches_change_the_outputs():
    torch.manual_seed(0)
    model = build_model(replace(TINY, detail=False, binary=False, num_classes=5)).eval()
    assert model.decoder.detail is None
    with torch.no_grad():
        out = model(_image(28, 42, 1))
    assert set(out) == {"fine"}
    assert out["fine"].shape == (1, 5, 28, 42)


@pytest.mark.parametrize("binary", [True, False])
def test_full_res_refinement_starts_as_the_plain_decoder_and_learns_edges(binary):
    """A fresh refinement predicts what the plain decoder does; a step changes its output."""
    cfg = replace(TINY, binary=binary)
    torch.manual_seed(0)
    plain = build_model(cfg).eval()
    torch.manual_seed(0)
    refined = build_model(replace(cfg, full_res=True)).eval()
    refined.load_state_dict(plain.state_dict(), strict=False)
    x = _image(28, 42, 1)
    with torch.no_grad():
        a, b = plain(x), refined(x)
    assert set(a) == set(b)
    for k in a:
        assert b[k].shape == a[k].shape and torch.allclose(a[k], b[k])
    refined.train()
    loss = refined(x)["fine"][:, 1].mean()
    loss.backward()
    assert refined.decoder.refine.body[-1].weight.grad.abs().sum() > 0


def test_members_train_each_on_its_own_and_predict_their_mean_probabilities():
    from ml.student.models.b2p import MEMBERS
    from ml.training.losses import B2PLoss
    from ml.training.step import training_loss

    torch.manual_seed(0)
    model = build_model(replace(TINY, members=3))
    x = _image(28, 42, 2)
    y = torch.randint(0, 3, (2, 28, 42), generator=torch.Generator().manual_seed(1))
    model.train()
    out = model(x)
    assert set(out) == {MEMBERS} and len(out[MEMBERS]) == 3
    loss_fn = B2PLoss(TrainConfig(), 3)
    total, parts = training_loss(out, y, 0, loss_fn)
    each = [training_loss(o, y, 0, loss_fn) for o in out[MEMBERS]]
    torch.testing.assert_close(total, sum(t for t, _ in each) / 3)
    assert parts["fine"] == pytest.approx(sum(p["fine"] for _, p in each) / 3)
    total.backward()
    assert all(d.fine_head.weight.grad.abs().sum() > 0 for d in model.decoder.decoders)
    model.eval()
    with torch.no_grad():
        mean = model(x)
        feats = model.encode(x)
        xn = model.backbone.normalize(x)
        for key in ("fine", "binary"):
            probs = torch.stack([d(feats, xn)[key].softmax(dim=1)
                                 for d in model.decoder.decoders]).mean(dim=0)
            torch.testing.assert_close(mean[key].softmax(dim=1), probs)


def test_a_members_model_folder_loads_and_one_member_keeps_the_plain_names(tmp_path):
    cfg = replace(TINY, members=2)
    torch.manual_seed(5)
    model = build_model(cfg).eval()
    save_checkpoint(tmp_path / "m", model, ModelCard(student=cfg))
    loaded, card = load_model(tmp_path / "m")
    assert card.student.members == 2 and len(loaded.decoder.decoders) == 2
    x = _image(28, 42, 1, seed=6)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)["fine"], model(x)["fine"])
    plain = build_model(TINY).state_dict()  # old model folders have no "members" key
    assert any(k.startswith("decoder.fine_head") for k in plain)
    with pytest.raises(ValueError, match="members"):
        build_model(replace(TINY, members=0))


def test_the_refinement_changes_logits_only_near_the_coarse_border():
    """Inside a large coarse defect and far outside it the coarse logits stand (band 4 px)."""
    from ml.student.models.b2p import FullResRefine

    torch.manual_seed(0)
    refine = FullResRefine(logits=5, classes=3, band=4).eval()
    with torch.no_grad():
        refine.body[-1].weight.normal_(0, 0.5)  # a trained refinement: it changes something
    logits = torch.zeros(1, 5, 40, 40)
    logits[:, 0] = 2.0
    logits[:, 1, 10:30, 10:30] = 5.0  # a 20 px coarse defect
    x = torch.randn(1, 3, 40, 40, requires_grad=True)
    out = refine(logits, x)
    changed = (out - logits).abs().sum(dim=1)[0] > 0
    border = torch.zeros(40, 40, dtype=torch.bool)
    border[6:34, 6:34] = True
    border[14:26, 14:26] = False  # more than 4 px inside the defect
    assert not changed[~border].any() and changed[border].float().mean() > 0.9
    out[:, 1].sum().backward()
    assert refine.body[-1].weight.grad.abs().sum() > 0
    anywhere = FullResRefine(logits=5, classes=3, band=0).eval()
    anywhere.load_state_dict(refine.state_dict())
    with torch.no_grad():
        assert ((anywhere(logits, x) - logits).abs().sum(dim=1)[0] > 0).float().mean() > 0.9


def test_a_model_card_from_before_the_band_keeps_a_refinement_that_acts_anywhere(tmp_path):
    cfg = replace(TINY, full_res=True)
    ModelCard(student=cfg).save(tmp_path / "config.json")
    assert ModelCard.load(tmp_path / "config.json").student.refine_band == 4  # the default
    d = json.loads((tmp_path / "config.json").read_text())
    del d["student"]["refine_band"]  # round 8's models
    (tmp_path / "config.json").write_text(json.dumps(d))
    assert ModelCard.load(tmp_path / "config.json").student.refine_band == 0


def test_a_full_res_model_folder_loads_with_its_refinement(tmp_path):
    cfg = replace(TINY, full_res=True)
    torch.manual_seed(3)
    model = build_model(cfg).eval()
    with torch.no_grad():  # a trained refinement: its last conv no longer zero
        model.decoder.refine.body[-1].weight.normal_(0, 0.1)
    save_checkpoint(tmp_path / "m", model, ModelCard(student=cfg))
    loaded, card = load_model(tmp_path / "m")
    assert card.student.full_res and loaded.decoder.refine is not None
    x = _image(28, 42, 1, seed=4)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)["fine"], model(x)["fine"])


def test_only_blocks_up_to_the_deepest_tap_exist(b2p):
    assert len(b2p.backbone.vit.blocks) == 8  # taps 1, 2, 4, 7: blocks 8-11 are gone
    assert not any(k.startswith("backbone.vit.blocks.8.") for k in b2p.state_dict())


def test_truncated_taps_equal_the_full_models_normed_blocks(b2p):
    full = timm.create_model(SMALL.backbone, pretrained=False, img_size=56,
                             dynamic_img_size=True, num_classes=0).eval()
    missing, _ = full.load_state_dict(b2p.backbone.vit.state_dict(), strict=False)
    assert all(re.match(r"blocks\.(8|9|10|11)\.", k) for k in missing)
    x = _image(56, 56, 1)
    with torch.no_grad():
        ref = full.forward_intermediates(b2p.backbone.normalize(x), indices=[1, 2, 4, 7],
                                         norm=True, intermediates_only=True)
        ours = b2p.encode(x)
    assert len(ours) == 4
    for a, b in zip(ours, ref, strict=True):
        assert a.shape == (1, 384, 4, 4)
        torch.testing.assert_close(a, b)


def _trainable_backbone(model: torch.nn.Module) -> list[str]:
    return [n for n, p in model.backbone.named_parameters() if p.requires_grad]


def test_bitfit_trains_only_biases_and_norms_of_the_backbone(b2p):
    names = _trainable_backbone(b2p)
    assert names and all(n.endswith(".bias") or ".norm" in n or n.startswith("vit.norm")
                         for n in names)
    assert "vit.blocks.0.attn.qkv.weight" not in names
    assert "vit.blocks.0.norm1.weight" in names
    assert all(p.requires_grad for p in b2p.decoder.parameters())
    trainable, total = count_parameters(b2p)
    decoder = sum(p.numel() for p in b2p.decoder.parameters())
    assert decoder < trainable < total


@pytest.mark.parametrize("mode", ["frozen", "full"])
def test_frozen_and_full_modes(mode):
    model = build_model(replace(TINY, mode=mode))
    backbone = [p.requires_grad for p in model.backbone.parameters()]
    assert all(backbone) if mode == "full" else not any(backbone)
    assert model.features_cacheable == (mode == "frozen")
    if mode == "frozen":  # no graph through the backbone, the decoder still trains
        x = _image(28, 28, 1)
        assert not any(f.requires_grad for f in model.encode(x))
        model(x)["fine"].sum().backward()
        assert model.decoder.fine_head.weight.grad is not None


def test_encode_then_decode_equals_forward(b2p):
    x = _image(56, 56, 1, seed=3)
    with torch.no_grad():
        torch.testing.assert_close(b2p.decode(b2p.encode(x), x)["fine"], b2p(x)["fine"])


def test_normalisation_comes_from_timm_and_is_not_saved(b2p):
    cfg = b2p.backbone.vit.pretrained_cfg
    assert b2p.backbone.mean.flatten().tolist() == pytest.approx(list(cfg["mean"]))
    assert not any(k.endswith((".mean", ".std")) for k in b2p.state_dict())


def test_normalisation_buffers_equal_the_weight_sources(b2p):
    from ml import weights

    src = weights.get_source("dinov2_vits14")  # random init: the arch's reference source
    assert b2p.backbone.pretrained == src
    assert b2p.backbone.mean.flatten().tolist() == pytest.approx(list(src.mean))
    assert b2p.backbone.std.flatten().tolist() == pytest.approx(list(src.std))


def test_preprocessing_and_default_size_are_read_from_the_registry(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    from ml import weights

    for name, mean in (("dinov2_vits14", (0.5, 0.4, 0.3)), ("dinov2_vits14_offline", (0.1,) * 3)):
        monkeypatch.setitem(weights.SOURCES, name, replace(
            weights.SOURCES[name], mean=mean, std=(0.2, 0.3, 0.4), input_size=28))
    backbone = Backbone(taps=(0,))
    assert backbone.mean.flatten().tolist() == pytest.approx([0.5, 0.4, 0.3])
    assert backbone.std.flatten().tolist() == pytest.approx([0.2, 0.3, 0.4])
    assert backbone.vit.pos_embed.shape[1] == 1 + 2 * 2  # 28 px: a 2x2 grid of patches
    # Weights read later (as a checkpoint does) bring their own source's preprocessing.
    save_file(_vit_weights(img_size=28, depth=1), tmp_path / "offline.safetensors")
    monkeypatch.setattr(weights, "ensure", lambda name: tmp_path / "offline.safetensors")
    monkeypatch.setattr(weights, "expected_sha256", lambda name: "0" * 64)
    backbone.load_weights("offline")
    assert backbone.pretrained.name == "dinov2_vits14_offline"
    assert backbone.mean.flatten().tolist() == pytest.approx([0.1] * 3)


def test_bad_inputs_raise_clear_errors(b2p):
    with pytest.raises(ValueError, match="multiple of the patch size"):
        b2p(_image(50, 56, 1))
    with pytest.raises(ValueError, match="mode"):
        Backbone(input_size=28, taps=(0,), mode="half")
    with pytest.raises(ValueError, match="unknown model"):
        build_model(replace(SMALL, arch="resnet"))
    with pytest.raises(FileNotFoundError):
        build_model(replace(TINY, backbone_weights="/nonexistent/w.safetensors"))


def test_unet_baseline_has_the_same_outputs():
    assert set(MODELS) >= {"b2p", "unet"}
    model = build_model(replace(SMALL, arch="unet", num_classes=4)).eval()
    x = _image(50, 70, 1)
    with torch.no_grad():
        out = model(x)
        feats = model.encode(x)
        torch.testing.assert_close(model.decode(feats, x)["fine"], out["fine"])
    assert out["fine"].shape == (1, 4, 50, 70) and out["binary"].shape == (1, 2, 50, 70)
    assert not model.features_cacheable
    assert count_parameters(model)[0] == count_parameters(model)[1]


def _vit_weights(img_size: int, depth: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    vit = timm.create_model(SMALL.backbone, pretrained=False, img_size=img_size, num_classes=0,
                            depth=depth)
    return {k: v.clone() for k, v in vit.state_dict().items()}


def _timm_to_hf(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse renaming, to feed the loader a Hugging Face-shaped file."""
    top = {"cls_token": "embeddings.cls_token", "pos_embed": "embeddings.position_embeddings",
           "patch_embed.proj.weight": "embeddings.patch_embeddings.projection.weight",
           "patch_embed.proj.bias": "embeddings.patch_embeddings.projection.bias",
           "norm.weight": "layernorm.weight", "norm.bias": "layernorm.bias"}
    names = {"norm1": "norm1", "norm2": "norm2", "attn.proj": "attention.output.dense",
             "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}
    out = {"embeddings.mask_token": torch.zeros(1, 384)}
    for k, v in sd.items():
        if k in top:
            out[top[k]] = v
            continue
        i, rest = re.match(r"blocks\.(\d+)\.(.+)", k).groups()
        pre = f"encoder.layer.{i}."
        if rest.startswith("attn.qkv."):
            for name, part in zip(("query", "key", "value"), v.chunk(3, dim=0), strict=True):
                out[f"{pre}attention.attention.{name}.{rest.rsplit('.', 1)[1]}"] = part
        elif rest.startswith("ls"):
            out[f"{pre}layer_scale{rest[2]}.lambda1"] = v
        else:
            mod, kind = rest.rsplit(".", 1)
            out[f"{pre}{names[mod]}.{kind}"] = v
    return out


def test_weights_load_from_timm_and_hugging_face_files(tmp_path):
    from safetensors.torch import save_file

    # A deeper file than the model (block 2 is dropped) on another grid (resampled positions).
    sd = _vit_weights(img_size=112, depth=3)
    save_file(sd, tmp_path / "timm.safetensors")
    torch.save(_timm_to_hf(sd), tmp_path / "hf.bin")
    torch.save({**sd, "mask_token": torch.zeros(1, 384)}, tmp_path / "meta.pth")  # Meta layout
    cfg = replace(TINY, taps=(1,))
    a = build_model(replace(cfg, backbone_weights=str(tmp_path / "timm.safetensors"))).eval()
    b = build_model(replace(cfg, backbone_weights=f"hf:{tmp_path / 'hf.bin'}")).eval()
    c = build_model(replace(cfg, backbone_weights=str(tmp_path / "meta.pth"))).eval()
    torch.testing.assert_close(a.backbone.vit.blocks[1].attn.qkv.weight,
                               sd["blocks.1.attn.qkv.weight"])
    assert a.backbone.vit.pos_embed.shape == (1, 1 + 4 * 4, 384)
    x = _image(56, 56, 1)
    with torch.no_grad():
        torch.testing.assert_close(a.encode(x)[0], b.encode(x)[0])
        torch.testing.assert_close(a.encode(x)[0], c.encode(x)[0])
    save_file({"foo": torch.zeros(2)}, tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match="do not fit"):
        build_model(replace(cfg, backbone_weights=str(tmp_path / "bad.safetensors")))


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(2)
    model = build_model(TINY)
    with torch.no_grad():  # give the BN running stats non-default values
        model.train()(_image(28, 28, 2))
    model.eval()
    card = ModelCard(student=TINY, epoch=3, classes=[{"id": 0, "name": "background"}])
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    save_checkpoint(tmp_path / "m", model, card, optimizer_state=opt.state_dict(),
                    extra_state={"epoch": 3, "ema": {"w": torch.ones(2)}})
    loaded, card2 = load_model(tmp_path / "m")
    assert card2.epoch == 3 and card2.student == TINY
    assert not loaded.training
    x = _image(28, 42, 1, seed=5)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)["fine"], model(x)["fine"])
    state = load_train_state(tmp_path / "m")
    assert state["epoch"] == 3 and torch.equal(state["ema"]["w"], torch.ones(2))
    assert "state" in state["optimizer"]
    mid = model_id(tmp_path / "m")
    assert re.fullmatch(r"[0-9a-f]{12}", mid) and mid == model_id(tmp_path / "m")
    with pytest.raises(FileNotFoundError, match="not a trained model"):
        load_model(tmp_path)
