"""Where a finding lies on the blade: the rules :mod:`ml.findings.placement` (blade maps,
history) and :mod:`ml.findings.review` (findings list, findings.csv) share.

* :func:`on_a_blade`: a photo goes on a blade only when its turbine and blade are named; one
  without is ``unplaced`` (:data:`UNPLACED`), never guessed onto a blade;
* :func:`region_outline`: a region's centre and outline in the photo;
* :func:`photo_axis`: the photo's root-to-tip axis (metadata, else the blade's edges, else
  assumed);
* :func:`finding_positions`: each region's radius (± uncertainty) and zone, by
  :func:`ml.metadata.position.finding_position`; a radius beyond the blade length keeps its
  value and says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from ml.common import images as _images
from ml.metadata.blade_axis import axis_from_edges
from ml.metadata.position import Axis, FindingPosition, axis_from_meta, finding_position
from ml.metadata.values import GUESSED
from ml.project.regions import Region, RegionSet
from ml.project.store import Project

UNPLACED = "unplaced"
UNPLACED_POSITION = FindingPosition(None, None, UNPLACED, "",
                                    "no turbine or blade: not placed on any blade")


def on_a_blade(meta: Mapping) -> bool:
    """Whether a photo can go on a blade map: a person (or a guess) named its turbine and blade.
    A photo without them is listed as unplaced, never guessed onto a blade."""
    return bool(meta.get("turbine") and meta.get("blade"))


def region_outline(regions: RegionSet, region: Region) -> tuple[tuple[float, float], np.ndarray]:
    """(centre x, y) and the outer contour (photo px) of ``region``."""
    import cv2

    x0, y0, x1, y1 = region.bbox
    crop = (regions.components[region.cls][y0:y1, x0:x1] == region.label).astype(np.uint8)
    ys, xs = np.nonzero(crop)
    centre = (float(xs.mean() + x0), float(ys.mean() + y0))
    cs, _ = cv2.findContours(crop, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    pts = max(cs, key=cv2.contourArea).reshape(-1, 2).astype(np.float32) + (x0, y0)
    return centre, pts


def photo_axis(project: Project, key: str, image: np.ndarray | None = None) -> Axis:
    """The root-to-tip axis of ``key``: metadata, else the blade's edges in the photo (``image``
    when the caller has read it already), else assumed."""
    axis = axis_from_meta(project.record(key).meta)
    if axis is not None:
        return axis
    try:
        axis = axis_from_edges(project.load_image(key) if image is None else image)
    except _images.ImageError:
        axis = None
    return axis or Axis()


def _with_gsd(meta: Mapping, gsd: float | None) -> Mapping:
    """``meta`` with a GSD given for the whole listing (as a person's value)."""
    if not gsd:
        return meta
    marks = {k: v for k, v in dict(meta.get(GUESSED) or {}).items() if k != "gsd_mm"}
    return {**meta, "gsd_mm": gsd, GUESSED: marks}


def finding_positions(project: Project, key: str, regions: RegionSet, found: Iterable[Region],
                      blade_lengths: Mapping[str, float | None], gsd: float | None = None,
                      image: np.ndarray | None = None) -> dict[str, FindingPosition]:
    """Region id -> its place on the blade, for the regions ``found`` of photo ``key``.

    ``blade_lengths``: turbine -> blade length (:func:`ml.metadata.position.turbines`, read once
    per listing). The photo is read for its axis only when the position needs one (a radius
    and a GSD, no roll in the metadata) and ``image`` is not given.
    """
    found = list(found)
    meta = _with_gsd(project.record(key).meta, gsd)
    if not on_a_blade(meta):
        return {r.id: UNPLACED_POSITION for r in found}
    needs_axis = found and meta.get("radius_m") not in (None, "") and meta.get("gsd_mm")
    axis = photo_axis(project, key, image) if needs_axis else Axis()
    length = blade_lengths.get(str(meta.get("turbine")))
    return {r.id: finding_position(meta, regions.shape, region_outline(regions, r)[0], axis,
                                   length) for r in found}
