"""Connected defect regions of a label map.

A *region* is one 8-connected component of one defect class. Its id is derived from what the
region is, not from its position in a list, so a person's decision about it (a severity
override) stays attached when the mask is predicted again:

    region id = "<class id>@<x0>,<y0>,<x1>,<y1>"

where the bbox edges are given in percent of the image width / height, rounded to whole
percent. The same mask always gives the same ids; a re-predicted region keeps its id as long
as each bbox edge stays within the same 1 % band of the image. Two regions of one class that
round to the same box get ``#2``, ``#3``... in order of their top-left pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.project.store import Box


@dataclass(frozen=True)
class Region:
    """One connected region of one defect class."""

    id: str
    cls: int
    area: int  # pixels
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, x1 / y1 exclusive
    confidence: float | None  # mean student confidence in [0, 1], None without a map
    label: int  # component number in ``RegionSet.components`` for this class

    @property
    def xywh(self) -> tuple[int, int, int, int]:
        x0, y0, x1, y1 = self.bbox
        return x0, y0, x1 - x0, y1 - y0


@dataclass
class RegionSet:
    """The regions of one label map plus the component images needed to get their masks."""

    regions: list[Region]
    shape: tuple[int, int]
    components: dict[int, np.ndarray]  # class id -> int32 component labels

    def mask(self, region: Region) -> np.ndarray:
        """Boolean full-size mask of ``region``."""
        return self.components[region.cls] == region.label

    def length_px(self, region: Region) -> float:
        """Length of ``region``: the longer side of the smallest rotated rectangle around its
        pixel centres, plus one pixel (a run of n pixels is n long, a single pixel 1)."""
        import cv2

        x0, y0, x1, y1 = region.bbox
        crop = (self.components[region.cls][y0:y1, x0:x1] == region.label).astype(np.uint8)
        # the outline's convex hull is the region's, so its points give the same rectangle
        outline, _ = cv2.findContours(crop, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        pts = np.concatenate([c.reshape(-1, 2) for c in outline]).astype(np.float32)
        _, (w, h), _ = cv2.minAreaRect(pts)
        return float(max(w, h)) + 1.0

    def __len__(self) -> int:
        return len(self.regions)

    def __iter__(self):
        return iter(self.regions)


def region_id(cls: int, bbox: tuple[int, int, int, int], shape: tuple[int, int]) -> str:
    """Stable id of a region from its class and its bbox rounded to 1 % of the image."""
    h, w = shape
    x0, y0, x1, y1 = bbox
    pct = [round(100.0 * v / max(w, 1)) for v in (x0, x1)]
    pct_y = [round(100.0 * v / max(h, 1)) for v in (y0, y1)]
    return f"{cls}@{pct[0]},{pct_y[0]},{pct[1]},{pct_y[1]}"


def find_regions(label: np.ndarray, confidence: np.ndarray | None = None,
                 min_area: int = 1) -> RegionSet:
    """8-connected regions of every defect class (id > 0) in ``label``, largest first per class.

    ``confidence`` is the student's uint8 map (255 = certain); a region's confidence is its
    mean over the region's pixels, scaled to [0, 1].
    """
    import cv2

    if label.ndim != 2:
        raise ValueError(f"label map must be 2-D, got shape {label.shape}")
    if confidence is not None and confidence.shape[:2] != label.shape:
        raise ValueError(f"confidence map {confidence.shape[:2]} does not match the label map "
                         f"{label.shape}")
    shape = (int(label.shape[0]), int(label.shape[1]))
    regions: list[Region] = []
    components: dict[int, np.ndarray] = {}
    for cls in (int(c) for c in np.unique(label) if c > 0):
        binary = (label == cls).astype(np.uint8)
        n, comp, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
        components[cls] = comp
        conf_sum = None
        if confidence is not None:  # one pass for all components instead of one per region
            conf_sum = np.bincount(comp.ravel(), weights=confidence.ravel().astype(np.float64),
                                   minlength=n)
        found = []
        for i in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[i])
            if area < min_area:
                continue
            conf = None if conf_sum is None else float(conf_sum[i]) / area / 255.0
            found.append((i, (x, y, x + w, y + h), area, conf))
        seen: dict[str, int] = {}
        # stable suffix order for colliding ids: top-left first, not component numbering
        for i, bbox, area, conf in sorted(found, key=lambda f: (f[1][1], f[1][0])):
            rid = region_id(cls, bbox, shape)
            seen[rid] = seen.get(rid, 0) + 1
            if seen[rid] > 1:
                rid = f"{rid}#{seen[rid]}"
            regions.append(Region(rid, cls, area, bbox, conf, i))
    regions.sort(key=lambda r: (r.cls, -r.area, r.bbox[1], r.bbox[0]))
    return RegionSet(regions, shape, components)


def boxes_from_mask(label: np.ndarray, pad: int = 0, by_class: bool = False,
                    min_area: int = 1) -> list[Box]:
    """One "imported" box per 8-connected component of ``min_area`` px or more.

    Components are of all defect pixels together, each boxed with its majority class, or with
    ``by_class`` of each class alone (touching defects of two classes give two boxes). Boxes
    grow by ``pad`` px, clipped to the image.
    """
    import cv2

    h, w = label.shape
    layers = ([(c, label == c) for c in range(1, int(label.max(initial=0)) + 1)] if by_class
              else [(0, label > 0)])
    out = []
    for cls, fg in layers:
        n, comp, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
        for i in range(1, n):
            x, y, bw, bh, area = (int(v) for v in stats[i])
            if area < min_area:
                continue
            c = cls or int(np.bincount(label[y:y + bh, x:x + bw][comp[y:y + bh, x:x + bw] == i])
                           .argmax())
            out.append(Box(float(max(x - pad, 0)), float(max(y - pad, 0)),
                           float(min(x + bw + pad, w)), float(min(y + bh + pad, h)), c,
                           "imported"))
    return out
