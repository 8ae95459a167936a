"""The ``features`` teacher: the box's pixels whose DINOv2 features its surroundings lack.

A defect is what a box holds and the tile, blade or wall around it does not. Per box, the box
and a ring round it (:func:`~ml.teachers._base.context_window`, the window ``auto`` weighs its
candidates on) are resized so the long side is ``long_side`` px and passed through the frozen
student backbone (DINOv2 ViT-S/14; blocks 5 and 8, each L2-normalised, then joined). A patch's
*anomaly* is 1 minus the mean cosine similarity of its ``k`` most similar ring patches: low where
the surroundings hold something like it. The ring patches' own anomalies, each against the other
ring patches, show how far plain background strays; the mask is the box's pixels (the anomaly
map upsampled bilinearly) above their ``quantile``. k = 3, the 95th percentile and 224 px are
the first values written, usual nearest-neighbour anomaly choices, and were kept; docs/RESULTS.md
round 28 scores the 90th percentile, the maximum, Otsu's threshold and 448 px beside them, on
magnetic_tile's boxes only.

A box with fewer than :data:`MIN_RING` patches of ring (a box filling the photo) has no
background to learn from and gets no mask; ``auto`` then weighs the others.

It needs the backbone's weights: :func:`backbone_weights` names the cached source (the official
file first, then the offline conversion) and ``auto`` adds this candidate only where one is
cached, as it does SAM; nothing is downloaded here.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ml.student.config import BACKBONE_FILES
from ml.teachers._base import Region, Teacher, box_region, context_window

MIN_RING = 4  # ring patches needed to say what background looks like
TAPS = (4, 7)  # 0-based blocks read (the student's deepest tap and the one before it)


def backbone_weights() -> str | None:
    """The student backbone source whose file is cached and verified, or None (no download)."""
    from ml import weights

    return next((src for src, name in BACKBONE_FILES.items() if weights.find(name) is not None),
                None)


class FeatureTeacher(Teacher):
    """Per box, the pixels whose backbone features differ from the ring round the box.

    ``backbone``: a :class:`ml.student.models.backbone.Backbone` to use (tests pass a random
    one); without it one is built, frozen, from ``weights`` (default: :func:`backbone_weights`).
    """

    name = "features"

    def __init__(self, *, weights: str | None = None, long_side: int = 224, k: int = 3,
                 quantile: float = 0.95, device: str = "cpu", backbone: Any = None,
                 **common: Any) -> None:
        super().__init__(**common)
        if long_side < 28:
            raise ValueError(f"long_side must be >= 28 pixels (two patches), got {long_side}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if not 0 < quantile <= 1:
            raise ValueError(f"quantile must be in (0, 1], got {quantile}")
        self.long_side, self.k, self.quantile = int(long_side), int(k), float(quantile)
        self.device = device
        self._backbone = backbone
        if backbone is None and weights is None:
            weights = backbone_weights()
        self.weights = weights  # None with a given backbone: whatever that one holds
        if backbone is None and weights is None:
            raise RuntimeError("features teacher: no DINOv2 backbone weights cached (`b2p "
                               "weights download dinov2_vits14_offline`, or `b2p weights "
                               "import` with a file fetched elsewhere)")

    def _options(self) -> dict[str, Any]:
        return {"weights": self.weights, "long_side": self.long_side, "k": self.k,
                "quantile": self.quantile, "taps": list(TAPS)}

    def _model(self) -> Any:
        """The frozen backbone, built on first use (it imports torch)."""
        if self._backbone is None:
            from ml.common.device import resolve_device
            from ml.student.models.backbone import Backbone

            self._backbone = Backbone(taps=TAPS, weights=self.weights, mode="frozen").eval()
            self._backbone.to(resolve_device(self.device))
        return self._backbone

    def _box_masks(self, boxes: np.ndarray, padded: list[Region]) -> list[tuple]:
        img = self._image
        assert img is not None
        h, w = img.shape[:2]
        out = []
        for box in boxes:
            win = context_window(box, self.pad, w, h)
            bx = box_region(box, 0, w, h)
            local = (bx[0] - win[0], bx[1] - win[1], bx[2] - win[0], bx[3] - win[1])
            out.append((win, self.window_mask(img[win[1]:win[3], win[0]:win[2]], local)))
        return out

    def window_mask(self, crop: np.ndarray, box: Region) -> np.ndarray:
        """Bool mask of ``crop`` (a box and its ring): the box's pixels unlike the ring."""
        score, ring = self.anomaly(crop, box)
        mask = np.zeros(crop.shape[:2], bool)
        if ring.size < MIN_RING:
            return mask
        x0, y0, x1, y1 = box
        inside = score[y0:y1, x0:x1] > float(np.quantile(ring, self.quantile))
        mask[y0:y1, x0:x1] = inside
        return mask

    def anomaly(self, crop: np.ndarray, box: Region) -> tuple[np.ndarray, np.ndarray]:
        """(the anomaly of every pixel of ``crop``, float32; the ring patches' own anomalies).

        ``box`` is (x0, y0, x1, y1) in the crop; a ring patch lies wholly outside it.
        """
        import torch

        model = self._model()
        h, w = crop.shape[:2]
        p = int(model.patch_size)
        s = self.long_side / max(h, w)
        gh, gw = (max(2, round(n * s / p)) for n in (h, w))
        x = cv2.resize(crop, (gw * p, gh * p), interpolation=cv2.INTER_LINEAR)
        dev = next(model.parameters()).device
        with torch.inference_mode():
            t = torch.from_numpy(x).to(dev).permute(2, 0, 1)[None].float() / 255
            maps = [torch.nn.functional.normalize(f[0].float(), dim=0) for f in model(t)]
            feats = torch.nn.functional.normalize(torch.cat(maps, 0), dim=0)
            feats = feats.reshape(feats.shape[0], -1).T.cpu().numpy()  # (patches, C)
        # a patch belongs to the ring when its cell lies wholly outside the box
        cy, cx = (np.arange(gh) + 0.5) * h / gh, (np.arange(gw) + 0.5) * w / gw
        hy, hx = 0.5 * h / gh, 0.5 * w / gw
        x0, y0, x1, y1 = box
        out_x = (cx + hx <= x0) | (cx - hx >= x1)
        out_y = (cy + hy <= y0) | (cy - hy >= y1)
        ring = (out_y[:, None] | out_x[None, :]).ravel()
        idx = np.flatnonzero(ring)
        if idx.size < MIN_RING:
            return np.zeros((h, w), np.float32), np.zeros(0, np.float32)
        sim = feats @ feats[idx].T  # cosine similarity of every patch to every ring patch
        sim[idx, np.arange(idx.size)] = -np.inf  # a ring patch is not its own neighbour
        k = min(self.k, idx.size - 1)
        near = -np.sort(-sim, axis=1)[:, :k].mean(axis=1)
        score = (1.0 - near).reshape(gh, gw).astype(np.float32)
        full = cv2.resize(score, (w, h), interpolation=cv2.INTER_LINEAR)
        return full, score.ravel()[idx]
