"""What a photo says about how it was taken: EXIF (time, GPS, lens, camera) and drone XMP.

Read only, offline. EXIF: DateTimeOriginal (+ OffsetTimeOriginal), Make, Model, FocalLength,
FocalLengthIn35mmFilm and the GPS block. XMP: the packet Pillow finds (JPEG APP1
``http://ns.adobe.com/xap/1.0/``, PNG ``XML:com.adobe.xmp``, TIFF tag 700), flattened to
``{"prefix:Name": "value"}``. Drone fields use DJI's names (``drone-dji:RelativeAltitude``,
``GimbalPitchDegree``, ``GimbalYawDegree``, ``GimbalRollDegree``, ``FlightYawDegree``,
``FlightPitchDegree``, ``FlightRollDegree``, ``LRFTargetDistance`` of the laser rangefinder
on DJI's H20/M30 cameras); the same names under another maker's namespace are read too.

The XMP is parsed with the standard library's ElementTree after refusing any packet with a
DTD (``<!DOCTYPE``/``<!ENTITY``), so no entity is ever expanded, and any packet over 1 MiB.
A packet that is not well-formed is ignored, never an error.
"""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field

from ml.common.images import open_image

RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
MAX_XMP_BYTES = 1 << 20

_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_MAKE, _MODEL, _DATETIME = 0x010F, 0x0110, 0x0132
_DT_ORIGINAL, _OFFSET_ORIGINAL = 0x9003, 0x9011
_FOCAL, _FOCAL35 = 0x920A, 0xA405

# PhotoMeta field -> XMP property name (DJI's spelling; first found wins)
_XMP_NUMBERS = {
    "relative_alt_m": ("RelativeAltitude",),
    "laser_distance_m": ("LRFTargetDistance",),
    "gimbal_pitch_deg": ("GimbalPitchDegree",),
    "gimbal_yaw_deg": ("GimbalYawDegree",),
    "gimbal_roll_deg": ("GimbalRollDegree",),
    "flight_yaw_deg": ("FlightYawDegree",),
    "flight_pitch_deg": ("FlightPitchDegree",),
    "flight_roll_deg": ("FlightRollDegree",),
}
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class PhotoMeta:
    """Capture facts of one photo; None where the photo does not say."""

    taken: str | None = None  # ISO 8601 'YYYY-MM-DDTHH:MM:SS', '+HH:MM' when EXIF gives one
    make: str | None = None
    model: str | None = None
    focal_mm: float | None = None
    focal35_mm: float | None = None  # 35 mm equivalent focal length
    lat: float | None = None  # degrees, north positive
    lon: float | None = None  # degrees, east positive
    alt_m: float | None = None  # GPS altitude (above sea level)
    relative_alt_m: float | None = None  # XMP: height above the take-off point
    laser_distance_m: float | None = None  # XMP: laser rangefinder distance to the target
    gimbal_pitch_deg: float | None = None
    gimbal_yaw_deg: float | None = None
    gimbal_roll_deg: float | None = None
    flight_yaw_deg: float | None = None
    flight_pitch_deg: float | None = None
    flight_roll_deg: float | None = None
    width: int = 0  # pixels as stored (before any EXIF rotation)
    height: int = 0
    xmp: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def date(self) -> str | None:
        """The capture date, YYYY-MM-DD."""
        return self.taken[:10] if self.taken else None

    @property
    def camera(self) -> str | None:
        """'Make Model' without repeating the make ('DJI FC6310', 'Canon EOS R5')."""
        make, model = (self.make or "").strip(), (self.model or "").strip()
        if make and model.lower().startswith(make.lower()):
            return model
        return " ".join(p for p in (make, model) if p) or None

    def capture(self) -> dict:
        """JSON-ready facts (no XMP dump, no empty fields) for ``record.meta['capture']``."""
        out = {k: v for k, v in asdict(self).items()
               if v is not None and v != "" and k != "xmp" and not (k in ("width", "height")
                                                                  and not v)}
        if self.camera:
            out["camera"] = self.camera
        return out


# ----------------------------------------------------------------- XMP
def parse_xmp(packet: bytes | str | None) -> dict[str, str]:
    """Simple properties of an XMP packet as ``{"prefix:Name": value}``; {} if unusable."""
    if not packet:
        return {}
    data = packet.encode("utf-8") if isinstance(packet, str) else bytes(packet)
    data = data.strip(b"\x00 \t\r\n")
    if len(data) > MAX_XMP_BYTES or re.search(rb"<!(DOCTYPE|ENTITY)", data, re.IGNORECASE):
        return {}  # a DTD could expand entities; XMP never needs one
    parser = ET.XMLPullParser(events=("start-ns", "end"))
    try:
        parser.feed(data)
        parser.close()
        events = list(parser.read_events())
    except ET.ParseError:
        return {}
    prefixes: dict[str, str] = {}
    out: dict[str, str] = {}

    def name(tag: str) -> str:
        uri, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
        return f"{prefixes[uri]}:{local}" if prefixes.get(uri) else local

    for kind, item in events:
        if kind == "start-ns":
            prefix, uri = item
            prefixes.setdefault(uri, prefix)
            continue
        el = item
        if el.tag == f"{{{RDF_NS}}}Description":
            for attr, value in el.attrib.items():
                if not attr.startswith(f"{{{RDF_NS}}}"):
                    out.setdefault(name(attr), value.strip())
        elif (len(el) == 0 and (el.text or "").strip() and not el.tag.startswith(f"{{{RDF_NS}}}")
              and not el.tag.startswith("{adobe:ns:meta/}")):
            out.setdefault(name(el.tag), el.text.strip())
    return out


def xmp_get(xmp: dict[str, str], local: str) -> str | None:
    """The value of property ``local`` (DJI's namespace first, then any other)."""
    if f"drone-dji:{local}" in xmp:
        return xmp[f"drone-dji:{local}"]
    for k, v in xmp.items():
        if k.rpartition(":")[2] == local:
            return v
    return None


def _xmp_number(xmp: dict[str, str], *names: str) -> float | None:
    for n in names:
        m = _NUMBER.search(xmp_get(xmp, n) or "")
        if m:
            return _finite(float(m[0]))
    return None


# ----------------------------------------------------------------- EXIF
def _finite(v: object) -> float | None:
    try:
        f = float(v)  # IFDRational, int, float, str
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return f if math.isfinite(f) else None


def _text(v: object) -> str | None:
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    s = str(v).strip("\x00 ") if v is not None else ""
    return s or None


def _taken(raw: object, offset: object) -> str | None:
    m = re.match(r"\s*(\d{4})[:-](\d{2})[:-](\d{2})(?:[ T](\d{2}):(\d{2}):(\d{2}))?",
                 _text(raw) or "")
    if not m or m[1] == "0000":
        return None
    out = f"{m[1]}-{m[2]}-{m[3]}"
    if m[4]:
        out += f"T{m[4]}:{m[5]}:{m[6]}"
        off = _text(offset) or ""
        if re.fullmatch(r"[+-]\d{2}:\d{2}", off):
            out += off
    return out


def _degrees(dms: object, ref: object, negative: str, limit: float) -> float | None:
    if isinstance(dms, (tuple, list)) and dms:
        parts = [_finite(x) for x in dms[:3]]
        if None in parts:
            return None
        deg = sum(p / 60**i for i, p in enumerate(parts))
    else:
        deg = _finite(dms)
        if deg is None:
            return None
    if (_text(ref) or "").upper().startswith(negative):
        deg = -deg
    return deg if abs(deg) <= limit else None


def _gps(gps: dict) -> tuple[float | None, float | None, float | None]:
    lat = _degrees(gps.get(2), gps.get(1), "S", 90) if 2 in gps else None
    lon = _degrees(gps.get(4), gps.get(3), "W", 180) if 4 in gps else None
    alt = _finite(gps.get(6)) if 6 in gps else None
    ref = gps.get(5)
    if alt is not None and (ref == 1 or ref in (b"\x01", "\x01")):
        alt = -alt  # below sea level
    return lat, lon, alt


def _positive(v: float | None) -> float | None:
    return v if v is not None and v > 0 else None


def read_photo_meta(path: str | os.PathLike) -> PhotoMeta:
    """EXIF and XMP capture facts of the photo at ``path``; ImageError if it cannot be opened."""
    with open_image(path) as im:
        exif = im.getexif()
        ifd0 = dict(exif)
        sub = dict(exif.get_ifd(_EXIF_IFD))
        gps = dict(exif.get_ifd(_GPS_IFD))
        packet = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
        width, height = im.size
    xmp = parse_xmp(packet)
    taken = _taken(sub.get(_DT_ORIGINAL) or ifd0.get(_DATETIME), sub.get(_OFFSET_ORIGINAL))
    if taken is None:  # some tools write the time only into XMP
        taken = _taken(xmp_get(xmp, "DateTimeOriginal") or xmp_get(xmp, "CreateDate"), None)
    lat, lon, alt = _gps(gps)
    if lat is None or lon is None:  # DJI repeats the position in XMP (older firmware: "Longtitude")
        lat = _degrees(xmp_get(xmp, "GpsLatitude"), None, "S", 90)
        lon = _degrees(xmp_get(xmp, "GpsLongitude") or xmp_get(xmp, "GpsLongtitude"), None, "W",
                       180)
        if lat is None or lon is None:
            lat = lon = None
    numbers = {k: _xmp_number(xmp, *names) for k, names in _XMP_NUMBERS.items()}
    if (xmp_get(xmp, "LRFStatus") or "Normal").strip().lower() != "normal":
        numbers["laser_distance_m"] = None  # too close, too far or no echo: not a distance
    numbers["laser_distance_m"] = _positive(numbers["laser_distance_m"])
    return PhotoMeta(
        taken=taken, make=_text(ifd0.get(_MAKE)), model=_text(ifd0.get(_MODEL)),
        focal_mm=_positive(_finite(sub.get(_FOCAL))),
        focal35_mm=_positive(_finite(sub.get(_FOCAL35))),
        lat=lat, lon=lon, alt_m=alt, width=width, height=height, xmp=xmp, **numbers)
