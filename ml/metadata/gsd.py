"""Ground sample distance (mm per pixel) of a photo from its lens, sensor and distance.

    GSD = distance × sensor width / (focal length × image width)

with the sensor's long side against the image's long side. The sensor width comes from
:data:`SENSOR_WIDTH_MM` (keyed by the EXIF camera model) or else from the 35 mm equivalent
focal length: the sensor's diagonal is 43.27 mm × f / f35, split by the image's aspect ratio
(for a 3:2 image that is 36 mm × f / f35). Every value here is an estimate: a lens focused
close, a zoom or a cropped image all move it, so the caller marks it guessed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ml.metadata.photo_meta import PhotoMeta

FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)

# Nominal sensor widths (mm) from the makers' specifications, keyed by the EXIF Model with
# everything but letters and digits removed, upper case. Others use the 35 mm equivalent.
SENSOR_WIDTH_MM: dict[str, float] = {
    "FC6310": 13.2, "FC6310S": 13.2, "FC6310R": 13.2,  # Phantom 4 Pro / V2.0 / RTK, 1"
    "FC330": 6.17, "FC300X": 6.17, "FC300S": 6.17,  # Phantom 4, Phantom 3, 1/2.3"
    "FC220": 6.17, "FC7303": 6.17,  # Mavic Pro, Mini 2, 1/2.3"
    "FC3170": 6.4,  # Mavic Air 2, 1/2"
    "FC3411": 13.2, "L1D20C": 13.2,  # Air 2S, Mavic 2 Pro, 1"
    "L2D20C": 17.3, "M3E": 17.3,  # Mavic 3 (Hasselblad), Mavic 3 Enterprise, 4/3"
    "FC6520": 17.3,  # Zenmuse X5S, Micro Four Thirds
    "FC6540": 23.5,  # Zenmuse X7, Super 35
    "ZENMUSEP1": 35.9,  # Zenmuse P1, full frame
}


@dataclass(frozen=True)
class GsdEstimate:
    gsd_mm: float
    how: str  # the inputs, in words, for the record's provenance


def model_key(model: str | None) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", model or "").upper()


def sensor_width(photo: PhotoMeta, width_px: int, height_px: int) -> tuple[float, str] | None:
    """The sensor's width in mm and where it came from, or None when the photo cannot tell."""
    known = SENSOR_WIDTH_MM.get(model_key(photo.model))
    if known:
        return known, f"{photo.model} sensor {known:g} mm"
    f, f35 = photo.focal_mm, photo.focal35_mm
    if not (f and f35 and width_px > 0 and height_px > 0):
        return None
    long, short = max(width_px, height_px), min(width_px, height_px)
    width = FULL_FRAME_DIAGONAL_MM * f / f35 * long / math.hypot(long, short)
    return width, f"sensor {width:.2f} mm from the 35 mm equivalent {f35:g} mm"


def gsd_mm(distance_m: float, focal_mm: float, sensor_width_mm: float,
           image_width_px: int) -> float:
    """Millimetres on the object per pixel; ValueError unless every input is positive."""
    for name, v in (("distance", distance_m), ("focal length", focal_mm),
                    ("sensor width", sensor_width_mm), ("image width", image_width_px)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ValueError(f"GSD needs a positive {name}, got {v!r}")
    return distance_m * 1000.0 * sensor_width_mm / (focal_mm * image_width_px)


def estimate_gsd(photo: PhotoMeta, distance_m: float | None, width_px: int = 0,
                 height_px: int = 0) -> GsdEstimate | None:
    """GSD of ``photo`` at ``distance_m``, or None when the lens or sensor is unknown.

    ``width_px``/``height_px`` default to the photo's own size.
    """
    w, h = width_px or photo.width, height_px or photo.height
    if not distance_m or distance_m <= 0 or not photo.focal_mm or w <= 0 or h <= 0:
        return None
    sensor = sensor_width(photo, w, h)
    if sensor is None:
        return None
    long = max(w, h)
    value = gsd_mm(distance_m, photo.focal_mm, sensor[0], long)
    return GsdEstimate(value, f"{distance_m:g} m × {sensor[1]} / ({photo.focal_mm:g} mm lens × "
                              f"{long} px)")
