"""What the review queue ranks a proposal by besides its confidence: disagreement about it.

:func:`teacher_iou` runs a teacher on the proposed box and compares its mask with the
proposal's; :func:`member_spread` measures how much a model's members differ on it. Both are
computed once, when the proposal is found (:func:`ml.prediction.proposals.find_proposals`), and
stored with it for :mod:`ml.findings.queue`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ml.prediction.predict import Predictor


def teacher_iou(teacher: Any, image: np.ndarray, box: tuple[int, int, int, int], cls: int,
                mask: np.ndarray) -> float | None:
    """IoU of the teacher's mask on the proposed box with the proposal's mask (on a crop)."""
    x0, y0, x1, y1 = box
    h, w = image.shape[:2]
    m = max(8, (x1 - x0 + y1 - y0) // 4)
    cx0, cy0, cx1, cy1 = max(x0 - m, 0), max(y0 - m, 0), min(x1 + m, w), min(y1 + m, h)
    try:
        teacher.set_image(np.ascontiguousarray(image[cy0:cy1, cx0:cx1]))
        lab = teacher.predict(np.array([[x0 - cx0, y0 - cy0, x1 - cx0, y1 - cy0]], np.float32),
                              np.array([cls], np.int64))
    except Exception:  # a teacher failing on one box must not stop the batch
        return None
    t = lab[y0 - cy0:y1 - cy0, x0 - cx0:x1 - cx0] > 0
    union = (t | mask).sum()
    return round(float((t & mask).sum() / union), 4) if union else None


def member_spread(predictor: Predictor, image: np.ndarray, box: tuple[int, int, int, int],
                  mask: np.ndarray) -> float | None:
    """Std across the members of their defect probability over the mask (one crop each)."""
    import cv2
    import torch

    model = predictor.model
    decoders = getattr(getattr(model, "decoder", None), "decoders", None)
    if decoders is None or len(decoders) < 2:
        return None
    x0, y0, x1, y1 = box
    h, w = image.shape[:2]
    side = max(x1 - x0, y1 - y0, predictor.tile // 2)
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    cx0, cy0 = min(max(cx - side // 2 - side // 4, 0), max(w - 1, 0)), \
        min(max(cy - side // 2 - side // 4, 0), max(h - 1, 0))
    cx1, cy1 = min(cx0 + side + side // 2, w), min(cy0 + side + side // 2, h)
    crop = cv2.resize(image[cy0:cy1, cx0:cx1], (predictor.tile, predictor.tile),
                      interpolation=cv2.INTER_AREA)
    full = np.zeros((h, w), bool)
    full[y0:y1, x0:x1] = mask
    m = cv2.resize(full[cy0:cy1, cx0:cx1].astype(np.uint8), (predictor.tile, predictor.tile),
                   interpolation=cv2.INTER_NEAREST).astype(bool)
    if not m.any():
        return None
    with torch.inference_mode():
        x = torch.from_numpy(crop[None]).to(predictor.device).permute(0, 3, 1, 2).float() / 255
        feats = model.encode(x)
        xn = model.backbone.normalize(x)
        ps = [1.0 - d(feats, xn)["fine"].float().softmax(1)[0, 0].cpu().numpy()
              for d in decoders]
    return round(float(np.std([p[m].mean() for p in ps])), 4)
