"""What a trained student has seen as background: a bank of its backbone's background patches.

A defect on a photo nobody boxed is, first of all, something the background of the boxed
photos does not hold (the memory-bank idea of PatchCore, Roth et al., CVPR 2022, on the
student's own frozen DINOv2 taps). After training, the patch features of the training photos'
background (outside every box, outside the teacher's mask) are kept in a bank; a patch's
*novelty* is 1 minus its mean cosine similarity to its :data:`K` nearest bank patches, divided
by :attr:`NoveltyBank.scale`, the novelty background patches themselves reach (the
:data:`QUANTILE` of a sample of them scored against the other photos' bank patches). So
novelty 1 means "as strange as the strangest 1 % of plain background"; a region's highest
novelty is a feature of its calibrated confidence (:mod:`ml.evaluation.calibration`).

Features: the last two taps the student reads (blocks 5 and 8 of ViT-S/14 with the default
taps), each L2-normalised, joined and normalised again, as the ``features`` teacher does.
The bank keeps at most :data:`MAX_PATCHES` patches, a greedy coreset (:func:`coreset`) of a
pool of at most :data:`POOL`, as float16: 6 MB for ViT-S. Saved as ``novelty.safetensors``
beside the model's weights. The coreset replaced a random draw in round 30: on both
magnetic_tile folds it ranks proposals better (docs/RESULTS.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ml.common.atomic import atomic_write_bytes
from ml.student.checkpoint import NOVELTY_NAME

if TYPE_CHECKING:
    import torch

K = 3  # nearest bank patches a patch is compared with
MAX_PATCHES = 4096  # bank size: a greedy coreset of the background patches
CORESET_DIMS = 128  # random projection the coreset's distances are taken on (PatchCore's)
POOL = 40_000  # background patches the coreset picks from at most (a random draw before it)
QUANTILE = 0.99  # the background novelty that ``scale`` holds
SCALE_SAMPLE = 2000  # background patches scored against the bank to find ``scale``
MIN_PHOTOS = 2  # the scale needs a photo's patches scored against another photo's
TAPS_USED = 2  # the student's last taps that make a patch's feature
NOVELTY_UNIT = 32.0  # a novelty map's uint8 value per unit of novelty (255: 8 or more)


def novelty_bytes(novelty: torch.Tensor) -> np.ndarray:
    """uint8 map of a novelty tensor (``NOVELTY_UNIT`` a unit, clipped at 255)."""
    import torch

    return (novelty * NOVELTY_UNIT).round_().clamp_(0, 255).to(torch.uint8).cpu().numpy()


def novelty_value(byte: float) -> float:
    """Novelty of a value of a :func:`novelty_bytes` map."""
    return float(byte) / NOVELTY_UNIT


def patch_features(feats: list[torch.Tensor]) -> torch.Tensor:
    """(B, D, h, w) unit patch features of the student's tap maps ``feats`` (its encode)."""
    import torch
    import torch.nn.functional as F

    maps = [F.normalize(f.float(), dim=1) for f in feats[-TAPS_USED:]]
    return F.normalize(torch.cat(maps, dim=1), dim=1)


@dataclass(frozen=True)
class NoveltyBank:
    """Background patch features (N, D) float16 and the novelty background reaches."""

    features: np.ndarray
    scale: float
    photos: int
    k: int = K

    def score(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """(B, h, w) novelty of every patch of the tap maps ``feats``, in units of ``scale``."""
        import torch

        x = patch_features(feats)
        b, d, h, w = x.shape
        if d != self.features.shape[1]:
            raise ValueError(f"novelty bank holds {self.features.shape[1]}-dim features, the "
                             f"model gives {d}")
        bank = self._bank(x.device)
        flat = x.permute(0, 2, 3, 1).reshape(-1, d)
        k = min(self.k, bank.shape[0])
        near = (flat @ bank.T).topk(k, dim=1).values.mean(dim=1)
        return ((1.0 - near) / self.scale).reshape(b, h, w).to(torch.float32)

    def _bank(self, device: torch.device) -> torch.Tensor:
        import torch

        cached = getattr(self, "_cache", None)
        if cached is None or cached.device != device:
            cached = torch.from_numpy(self.features.astype(np.float32)).to(device)
            object.__setattr__(self, "_cache", cached)  # frozen: a cache, not state
        return cached

    def save(self, folder: str | Path) -> Path:
        """Write the bank into the model ``folder`` (atomic)."""
        from safetensors.numpy import save

        meta = {"scale": repr(float(self.scale)), "photos": str(self.photos), "k": str(self.k)}
        data = save({"features": np.ascontiguousarray(self.features, np.float16)},
                    metadata={"b2p.novelty": json.dumps(meta)})
        return atomic_write_bytes(Path(folder) / NOVELTY_NAME, data)


def load_bank(folder: str | Path) -> NoveltyBank | None:
    """The bank saved in the model ``folder``, or None (a model trained before banks, or one
    whose bank was never built)."""
    from safetensors import safe_open

    path = Path(folder) / NOVELTY_NAME
    if not path.is_file():
        return None
    with safe_open(str(path), framework="numpy") as f:
        meta = json.loads((f.metadata() or {})["b2p.novelty"])
        features = f.get_tensor("features")
    return NoveltyBank(features, float(meta["scale"]), int(meta["photos"]), int(meta["k"]))


def coreset(feats: np.ndarray, n: int, seed: int = 0, dims: int = CORESET_DIMS) -> np.ndarray:
    """Sorted indices of ``n`` rows of ``feats``, each in turn the row farthest from those
    chosen before (greedy k-center, PatchCore's coreset), on a random projection to ``dims``.

    A random draw keeps background in proportion to its area, so a texture seen on a few
    photos may have no patch in the bank and read as novel; the coreset keeps every kind of
    background the photos hold, however rare."""
    import torch

    rng = np.random.default_rng(seed)
    x = torch.from_numpy(np.ascontiguousarray(feats, np.float32))
    if x.shape[1] > dims:
        proj = rng.normal(size=(x.shape[1], dims)) / np.sqrt(dims)
        x = x @ torch.from_numpy(proj.astype(np.float32))
    sq = (x * x).sum(dim=1)
    chosen = torch.empty(n, dtype=torch.long)
    chosen[0] = int(rng.integers(len(x)))
    far = torch.full((len(x),), float("inf"))
    for i in range(n):
        if i:
            chosen[i] = far.argmax()
        j = chosen[i]
        torch.minimum(far, sq - 2.0 * (x @ x[j]) + sq[j], out=far)
    return np.sort(chosen.numpy())


def build_bank(per_photo: list[np.ndarray], max_patches: int = MAX_PATCHES, k: int = K,
               seed: int = 0, select: str = "coreset") -> NoveltyBank | None:
    """A bank from each photo's (n_i, D) unit background features; None with fewer than
    :data:`MIN_PHOTOS` photos that have any (no photo to score another against).
    ``select``: how the bank's patches are chosen when there are more than ``max_patches``,
    ``"coreset"`` (:func:`coreset`) or ``"random"`` (round 29's random draw, kept for
    ``bench/novelty.py``)."""
    if select not in ("coreset", "random"):
        raise ValueError(f"select is 'coreset' or 'random', got {select!r}")
    rows = [np.asarray(p, np.float32) for p in per_photo if len(p)]
    if len(rows) < MIN_PHOTOS:
        return None
    owner_all = np.concatenate([np.full(len(p), i) for i, p in enumerate(rows)])
    feats_all = np.concatenate(rows)
    rng = np.random.default_rng(seed)
    if len(feats_all) > POOL:  # bounds the coreset's time (about 6 s on 2 cores)
        pool = np.sort(rng.choice(len(feats_all), POOL, replace=False))
        feats_all, owner_all = feats_all[pool], owner_all[pool]
    feats, owner = feats_all, owner_all
    if len(feats) > max_patches:
        keep = (coreset(feats, max_patches, seed) if select == "coreset" else
                np.sort(rng.choice(len(feats), max_patches, replace=False)))
        feats, owner = feats[keep], owner[keep]
    # the scale: how novel plain background is, a sample of every background patch (not only
    # the bank's, which the coreset picks among the strangest) scored against the bank
    sample = rng.choice(len(feats_all), min(SCALE_SAMPLE, len(feats_all)), replace=False)
    sim = feats_all[sample] @ feats.T
    sim[owner_all[sample][:, None] == owner[None, :]] = -np.inf  # only other photos' patches
    others = int(np.isfinite(sim).sum(axis=1).min())
    if not others:
        return None  # a sampled patch has no other photo's patch to be scored against
    kk = min(k, others)
    near = -np.sort(-sim, axis=1)[:, :kk].mean(axis=1)
    scale = float(np.quantile(1.0 - near, QUANTILE))
    return NoveltyBank(feats.astype(np.float16), max(scale, 1e-3), len(rows), k)
