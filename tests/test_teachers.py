"""Box-to-mask teachers: box fill, GrabCut and SAM (a tiny random SAM built here)."""

from __future__ import annotations

from functools import partial

import cv2
import numpy as np
import pytest

from ml.teachers import Teacher, make_teacher, paint_order, teacher_options
from ml.teachers._base import fill_small_holes

H, W = 120, 160


def disc_image(cx: int = 70, cy: int = 60, r: int = 22, seed: int = 0) -> np.ndarray:
    """Grey noisy background with one red disc."""
    rng = np.random.default_rng(seed)
    img = np.full((H, W, 3), 90, np.uint8) + rng.integers(0, 20, (H, W, 3), dtype=np.uint8)
    cv2.circle(img, (cx, cy), r, (230, 40, 40), -1)
    return img


def disc_mask(cx: int = 70, cy: int = 60, r: int = 22) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    cv2.circle(m, (cx, cy), r, 1, -1)
    return m.astype(bool)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


# ------------------------------------------------------------------------- common behaviour
@pytest.mark.parametrize("name", ["box", "grabcut"])
def test_predict_before_set_image_raises(name):
    t = make_teacher(name)
    with pytest.raises(RuntimeError, match="set_image"):
        t.predict(np.array([[0, 0, 10, 10]]), np.array([1]))


@pytest.mark.parametrize("name", ["box", "grabcut"])
def test_label_shape_dtype_and_classes(name):
    t = make_teacher(name)
    t.set_image(disc_image())
    label = t.predict(np.array([[40, 30, 100, 90], [120, 10, 150, 40]], np.float32),
                      np.array([2, 1]))
    assert label.shape == (H, W) and label.dtype == np.uint8
    assert set(np.unique(label)) <= {0, 1, 2}
    assert (label == 2).any()
    assert t.settings()["name"] == name


@pytest.mark.parametrize("name", ["box", "grabcut"])
def test_no_boxes_gives_background(name):
    t = make_teacher(name)
    t.set_image(disc_image())
    label = t.predict(np.zeros((0, 4), np.float32), np.zeros((0,), np.int64))
    assert label.shape == (H, W) and not label.any()


def test_bad_inputs_have_clear_errors():
    t = make_teacher("box")
    with pytest.raises(ValueError, match="uint8"):
        t.set_image(np.zeros((10, 10), np.float32))
    t.set_image(disc_image())
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        t.predict(np.zeros((2, 3)), np.array([1, 1]))
    with pytest.raises(ValueError, match="class ids"):
        t.predict(np.array([[0, 0, 5, 5]]), np.array([0]))
    with pytest.raises(ValueError, match="unknown teacher"):
        make_teacher("magic")
    with pytest.raises(ValueError, match="unknown option"):
        make_teacher("grabcut", checkpoint="x.pth")


def test_box_fill_fills_box_exactly_and_ignores_outside_boxes():
    t = make_teacher("box")
    t.set_image(disc_image())
    label = t.predict(np.array([[10.2, 20.0, 30.0, 40.5], [500, 500, 600, 600]]),
                      np.array([1, 2]))
    expect = np.zeros((H, W), np.uint8)
    expect[20:41, 10:30] = 1  # every pixel the box touches
    np.testing.assert_array_equal(label, expect)


def test_overlap_default_higher_class_wins_and_priority_overrides():
    boxes = np.array([[10, 10, 60, 60], [40, 40, 90, 90]], np.float32)
    for classes in (np.array([2, 1]), np.array([1, 2])):
        t = make_teacher("box")
        t.set_image(disc_image())
        label = t.predict(boxes, classes)
        assert label[50, 50] == 2  # overlap: damage over dirt whatever the order
    t = make_teacher("box", priority=(1, 2))
    t.set_image(disc_image())
    assert t.predict(boxes, np.array([2, 1]))[50, 50] == 1
    assert list(paint_order(np.array([1, 3, 2]), None)) == [0, 2, 1]
    assert list(paint_order(np.array([1, 3, 2]), (1,))) == [2, 1, 0]  # 1 listed: painted last


def test_fill_small_holes_keeps_big_holes_and_border_pockets():
    m = np.zeros((40, 40), bool)
    m[5:35, 5:35] = True
    m[10:12, 10:12] = False  # small hole (4 px)
    m[15:30, 15:30] = False  # big hole (225 px)
    out = fill_small_holes(m, 50)
    assert out[10:12, 10:12].all()
    assert not out[15:30, 15:30].any()
    edge = np.ones((10, 10), bool)
    edge[0:2, 4:6] = False  # touches the border: not a hole
    assert not fill_small_holes(edge, 50)[0:2, 4:6].any()


# ------------------------------------------------------------------------- GrabCut
def test_grabcut_recovers_disc_inside_box():
    t = make_teacher("grabcut")
    t.set_image(disc_image())
    label = t.predict(np.array([[40, 30, 100, 90]], np.float32), np.array([2]))
    assert iou(label == 2, disc_mask()) > 0.85
    assert t.fallbacks == 0


def test_grabcut_downscaled_crop_still_recovers_disc():
    t = make_teacher("grabcut", max_side=32)
    t.set_image(disc_image())
    label = t.predict(np.array([[40, 30, 100, 90]], np.float32), np.array([2]))
    assert iou(label == 2, disc_mask()) > 0.75


def test_grabcut_is_clipped_to_padded_box():
    img = disc_image(r=30)  # the disc spills out of the box
    t = make_teacher("grabcut", pad=2)
    t.set_image(img)
    label = t.predict(np.array([[50, 40, 90, 80]], np.float32), np.array([1]))
    ys, xs = np.nonzero(label)
    assert len(xs) > 0
    assert xs.min() >= 48 and xs.max() < 92 and ys.min() >= 38 and ys.max() < 82


class RingTeacher(Teacher):
    """Test double: each box's mask is a ring (filled square with a 4x4 hole), drawn
    over the whole image so that clipping has something to cut."""

    name = "ring"

    def _box_masks(self, boxes, padded):
        h, w = self._image.shape[:2]
        out = []
        for b in boxes:
            m = np.zeros((h, w), bool)
            x0, y0, x1, y1 = (int(v) for v in b)
            m[y0 - 6:y1 + 6, x0 - 6:x1 + 6] = True
            cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
            m[cy - 2:cy + 2, cx - 2:cx + 2] = False
            out.append(((0, 0, w, h), m))
        return out


@pytest.mark.parametrize("fill", [False, True])
def test_base_fills_small_holes_and_clips(fill):
    t = RingTeacher(pad=2, fill_holes=fill, max_hole_frac=0.05)
    t.set_image(disc_image())
    label = t.predict(np.array([[40, 30, 80, 70]], np.float32), np.array([1]))
    assert bool(label[50, 60] == 1) is fill  # 16 px hole <= 5 % of 1600 px box
    assert label[28:72, 38:82].all() if fill else label[28:48, 38:82].all()
    assert not label[:28].any() and not label[:, 82:].any()  # clipped to the padded box
    t = RingTeacher(pad=2, clip_to_box=False, max_hole_frac=0.001)
    t.set_image(disc_image())
    label = t.predict(np.array([[40, 30, 80, 70]], np.float32), np.array([1]))
    assert label[24:48, 34:86].all() and label[25, 35] == 1  # not clipped to the padded box
    assert label[50, 60] == 0  # hole larger than 0.1 % of the box: kept


def test_grabcut_tiny_box_falls_back_to_box_fill():
    t = make_teacher("grabcut")
    t.set_image(disc_image())
    label = t.predict(np.array([[130, 100, 135, 104]], np.float32), np.array([1]))
    assert t.fallbacks == 1
    assert (label[100:104, 130:135] == 1).all() and (label == 1).sum() == 20


def test_grabcut_box_covering_whole_image_falls_back():
    t = make_teacher("grabcut")
    t.set_image(disc_image())
    label = t.predict(np.array([[0, 0, W, H]], np.float32), np.array([1]))
    assert t.fallbacks == 1 and (label == 1).all()


# ------------------------------------------------------------------------- SAM (tiny, random)
def tiny_sam(seed: int = 0):
    """A SAM small enough for CPU tests: 64 px input, one encoder block, 32-dim prompts."""
    import torch
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    torch.manual_seed(seed)
    d = 32
    encoder = ImageEncoderViT(img_size=64, patch_size=16, embed_dim=32, depth=1, num_heads=2,
                              mlp_ratio=2, out_chans=d, qkv_bias=True,
                              norm_layer=partial(torch.nn.LayerNorm, eps=1e-6))
    prompt = PromptEncoder(embed_dim=d, image_embedding_size=(4, 4),
                           input_image_size=(64, 64), mask_in_chans=4)
    decoder = MaskDecoder(num_multimask_outputs=3, transformer_dim=d,
                          transformer=TwoWayTransformer(depth=1, embedding_dim=d, mlp_dim=64,
                                                        num_heads=2),
                          iou_head_depth=2, iou_head_hidden_dim=16)
    return Sam(image_encoder=encoder, prompt_encoder=prompt, mask_decoder=decoder,
               pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375]).eval()


def count_calls(module) -> list[int]:
    """Record the batch size of every forward call of ``module``."""
    calls: list[int] = []
    module.register_forward_hook(lambda m, args, kwargs, out: calls.append(
        (args[0] if args else next(iter(kwargs.values()))).shape[0]), with_kwargs=True)
    return calls


@pytest.fixture(scope="module")
def sam_model():
    return tiny_sam()


def test_sam_embeds_once_and_decodes_all_boxes_in_one_call(sam_model):
    sam = tiny_sam()
    enc_calls = count_calls(sam.image_encoder)
    dec_calls: list[int] = []
    sam.mask_decoder.register_forward_hook(
        lambda m, a, kw, out: dec_calls.append(kw["sparse_prompt_embeddings"].shape[0]),
        with_kwargs=True)
    t = make_teacher("sam", model=sam, device="cpu")
    t.set_image(disc_image())
    boxes = np.array([[10, 10, 50, 50], [60, 20, 100, 70], [100, 60, 150, 110]], np.float32)
    t.predict(boxes, np.array([1, 2, 1]))
    t.predict(boxes[:2], np.array([1, 2]))
    assert len(enc_calls) == 1  # one embedding for the image, reused by both predicts
    assert dec_calls == [3, 2]  # every box of a predict in one batched decoder call
    t.set_image(disc_image(seed=1))
    assert len(enc_calls) == 2


def test_sam_chunks_boxes_when_asked(sam_model):
    dec_calls: list[int] = []
    h = sam_model.mask_decoder.register_forward_hook(
        lambda m, a, kw, out: dec_calls.append(kw["sparse_prompt_embeddings"].shape[0]),
        with_kwargs=True)
    try:
        t = make_teacher("sam", model=sam_model, device="cpu", chunk=2)
        t.set_image(disc_image())
        t.predict(np.array([[10, 10, 50, 50]] * 5, np.float32), np.ones(5, np.int64))
    finally:
        h.remove()
    assert dec_calls == [2, 2, 1]


@pytest.mark.parametrize("multimask", [False, True])
def test_sam_label_is_clipped_to_padded_boxes(sam_model, multimask):
    t = make_teacher("sam", model=sam_model, device="cpu", pad=3, multimask=multimask)
    t.set_image(disc_image())
    boxes = np.array([[20, 20, 60, 50], [90, 40, 130, 100]], np.float32)
    label = t.predict(boxes, np.array([1, 2]))
    assert label.shape == (H, W) and label.dtype == np.uint8
    allowed = np.zeros((H, W), bool)
    allowed[17:53, 17:63] = True
    allowed[37:103, 87:133] = True
    assert not label[~allowed].any()
    assert set(np.unique(label)) <= {0, 1, 2}
    assert t.settings()["name"] == "sam_vit_b" and t.settings()["multimask"] is multimask


def test_sam_overlap_follows_priority(sam_model, monkeypatch):
    # Threshold far below any logit: every mask covers its whole padded box.
    monkeypatch.setattr(sam_model, "mask_threshold", -1e9)
    boxes = np.array([[10, 10, 60, 60], [40, 40, 90, 90]], np.float32)
    t = make_teacher("sam", model=sam_model, device="cpu", pad=0)
    t.set_image(disc_image())
    label = t.predict(boxes, np.array([2, 1]))
    assert label[50, 50] == 2 and label[20, 20] == 2 and label[80, 80] == 1
    assert not label[:, 91:].any() and not label[:9, :].any()
    t = make_teacher("sam", model=sam_model, device="cpu", pad=0, priority=(1,))
    t.set_image(disc_image())
    assert t.predict(boxes, np.array([2, 1]))[50, 50] == 1


def test_sam_checkpoint_loads_with_weights_only(tmp_path, monkeypatch):
    import torch

    from ml.teachers import sam as sam_mod

    src, dst = tiny_sam(seed=1), tiny_sam(seed=2)
    path = tmp_path / "tiny_sam.pth"
    torch.save(src.state_dict(), path)
    seen: list[dict] = []
    real_load = torch.load

    def spy(*a, **kw):
        seen.append(kw)
        return real_load(*a, **kw)

    monkeypatch.setattr(torch, "load", spy)
    t = make_teacher("sam", model=dst, checkpoint=path, device="cpu")
    assert seen and seen[0].get("weights_only") is True
    for k, v in src.state_dict().items():
        assert torch.equal(v, dst.state_dict()[k]), k
    assert t.settings()["checkpoint"] == "tiny_sam.pth"
    monkeypatch.setattr(torch, "load", real_load)

    evil = tmp_path / "evil.pth"
    torch.save({"payload": _NotATensor()}, evil)
    with pytest.raises(RuntimeError, match="refused"):
        sam_mod.load_checkpoint(tiny_sam(), evil)
    wrong = tmp_path / "wrong.pth"
    torch.save({"x": torch.zeros(2)}, wrong)
    with pytest.raises(RuntimeError, match="do not fit"):
        sam_mod.load_checkpoint(tiny_sam(), wrong)


class _NotATensor:
    """Pickled as code, which weights_only loading must refuse."""


def _fake_weights(monkeypatch, module) -> None:
    """Replace ml.weights by ``module``."""
    import sys

    import ml

    monkeypatch.setitem(sys.modules, "ml.weights", module)
    monkeypatch.setattr(ml, "weights", module, raising=False)


def test_sam_without_checkpoint_says_how_to_get_it(monkeypatch):
    import types

    import ml.teachers.sam as sam_mod

    monkeypatch.setattr(sam_mod, "build_sam", lambda model_type: tiny_sam())
    _fake_weights(monkeypatch, types.SimpleNamespace(find=lambda name: None))  # none cached
    with pytest.raises(RuntimeError, match="b2p weights download sam_vit_b"):
        make_teacher("sam", device="cpu")
    with pytest.raises(FileNotFoundError, match="not found"):
        make_teacher("sam", device="cpu", checkpoint="/nonexistent/sam.pth")
    t = make_teacher("sam", device="cpu", random_init=True)
    assert t.settings()["random_init"] is True
    assert "model_type" in teacher_options("sam")


def test_sam_finds_cached_checkpoint_through_weights(tmp_path, monkeypatch):
    import types

    import torch

    import ml.teachers.sam as sam_mod

    path = tmp_path / "sam_vit_b_cached.pth"
    torch.save(tiny_sam(seed=3).state_dict(), path)
    asked: list[str] = []
    _fake_weights(monkeypatch, types.SimpleNamespace(
        find=lambda name: asked.append(name) or path))
    monkeypatch.setattr(sam_mod, "build_sam", lambda model_type: tiny_sam())
    t = make_teacher("sam", device="cpu")
    assert asked == ["sam_vit_b"] and t.settings()["checkpoint"] == path.name
