"""Per-image inspection metadata: turbine, blade, side, distance and date.

Stored in ``record.meta`` through :meth:`Project.set_meta` with the keys ``turbine`` (str),
``blade`` ("A" | "B" | "C"), ``side`` (one of :data:`SIDES`), ``distance_m`` (float, optional)
and ``date`` (ISO date, optional).

Folder convention (:func:`from_folders`), relative to the project's image root::

    TURBINE/BLADE/SIDE/photo.jpg      e.g. WTG07/B/LE/DJI_0042.JPG

Read from the photo upwards: the nearest folder is the side if it names one, the next the
blade if it names one, the next the turbine. So ``TURBINE/BLADE/photo.jpg`` gives turbine and
blade, and deeper trees (``SITE/TURBINE/BLADE/SIDE/photo.jpg``) work too. Sides may be written
``LE``/``TE``/``PS``/``SS``, ``leading edge``, ``Leading-Edge``, ``pressure``...; blades
``A``/``B``/``C``, ``1``/``2``/``3`` or ``Blade A``. The date is taken from the photo's EXIF
(DateTimeOriginal) where present.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from .store import Project, ProjectError

SIDES = ("leading_edge", "trailing_edge", "pressure_side", "suction_side")
BLADES = ("A", "B", "C")
CSV_COLUMNS = ("image", "turbine", "blade", "side", "distance_m", "date")

_SIDE_ALIASES = {
    "le": "leading_edge", "leading": "leading_edge", "leadingedge": "leading_edge",
    "te": "trailing_edge", "trailing": "trailing_edge", "trailingedge": "trailing_edge",
    "ps": "pressure_side", "pressure": "pressure_side", "pressureside": "pressure_side",
    "ss": "suction_side", "suction": "suction_side", "suctionside": "suction_side",
}


@dataclass
class MetaSummary:
    updated: int = 0
    skipped: list[str] = field(default_factory=list)  # keys left without metadata

    def summary(self) -> str:
        return f"metadata set on {self.updated} images; {len(self.skipped)} without"


def normalize_side(text: str) -> str | None:
    """Canonical side name for a spelling such as 'LE' or 'Leading Edge'; None if unknown."""
    t = re.sub(r"[\s_\-.]+", "", str(text).strip().lower())
    return _SIDE_ALIASES.get(t)


def normalize_blade(text: str) -> str | None:
    """'A'/'b'/'2'/'Blade C'/'blade_1' -> 'A'/'B'/'C'; None if it names no blade."""
    t = re.sub(r"[\s_\-.]+", "", str(text).strip().lower())
    t = t.removeprefix("blade").removeprefix("bl")
    if t in ("a", "b", "c"):
        return t.upper()
    if t in ("1", "2", "3"):
        return BLADES[int(t) - 1]
    return None


def meta_from_path(key: str) -> dict:
    """turbine / blade / side read from the folders of an image key (see module docs)."""
    folders = list(Path(key).parts[:-1])
    meta: dict = {}
    if folders and normalize_side(folders[-1]):
        meta["side"] = normalize_side(folders.pop())
    if folders and normalize_blade(folders[-1]):
        meta["blade"] = normalize_blade(folders.pop())
    if folders:
        meta["turbine"] = folders[-1]
    return meta


def exif_date(path: Path) -> str | None:
    """The photo's EXIF DateTimeOriginal (or DateTime) as YYYY-MM-DD, if readable."""
    from .images import ImageError, open_image

    try:
        with open_image(path) as im:
            exif = im.getexif()
            raw = exif.get_ifd(0x8769).get(0x9003) or exif.get(0x0132)
    except ImageError:  # a broken or hostile photo (even a bomb) simply has no date
        return None
    m = re.match(r"(\d{4}):(\d{2}):(\d{2})", str(raw or ""))
    return f"{m[1]}-{m[2]}-{m[3]}" if m else None


def from_folders(project: Project) -> MetaSummary:
    """Set turbine / blade / side (and EXIF date) of every image from its folder path."""
    out = MetaSummary()
    with project.batch():
        for key in project.keys():
            meta = meta_from_path(key)
            date = exif_date(project.image_path(key))
            if date:
                meta["date"] = date
            if not meta:
                out.skipped.append(key)
                continue
            project.set_meta(key, **meta)
            out.updated += 1
    return out


def _parse_row(project: Project, row: dict, where: str) -> tuple[str, dict]:
    name = (row.get("image") or "").strip()
    if not name:
        raise ProjectError(f"{where}: empty 'image' cell")
    key = project.find_key(name)
    if key is None:
        raise ProjectError(f"{where}: no image '{name}' in the project")
    meta: dict = {}
    turbine = (row.get("turbine") or "").strip()
    if turbine:
        meta["turbine"] = turbine
    if (blade := (row.get("blade") or "").strip()):
        meta["blade"] = normalize_blade(blade)
        if meta["blade"] is None:
            raise ProjectError(f"{where}: blade '{blade}' is not A, B or C")
    if (side := (row.get("side") or "").strip()):
        meta["side"] = normalize_side(side)
        if meta["side"] is None:
            raise ProjectError(f"{where}: side '{side}' is not one of {', '.join(SIDES)} "
                               f"(or LE/TE/PS/SS)")
    if (dist := (row.get("distance_m") or "").strip()):
        try:
            meta["distance_m"] = float(dist)
        except ValueError:
            raise ProjectError(f"{where}: distance_m '{dist}' is not a number") from None
        if not meta["distance_m"] >= 0:
            raise ProjectError(f"{where}: distance_m must be >= 0, got {dist}")
    if (date := (row.get("date") or "").strip()):
        try:
            meta["date"] = _dt.date.fromisoformat(date[:10]).isoformat()
        except ValueError:
            raise ProjectError(f"{where}: date '{date}' is not YYYY-MM-DD") from None
    return key, meta


def from_csv(project: Project, path: str | Path) -> MetaSummary:
    """Set metadata from a CSV with columns image,turbine,blade,side,distance_m,date.

    ``image`` is the image key (path under the image root) or a unique file name. Every row
    is checked before anything is stored; the first bad one raises an error naming its line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise ProjectError(f"{path}: cannot read metadata CSV ({e})") from e
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise ProjectError(f"{path}, line 1: missing column(s) {', '.join(missing)} "
                           f"(want {','.join(CSV_COLUMNS)})")
    reader.fieldnames = header
    rows: list[tuple[str, dict]] = []
    for row in reader:
        where = f"{path}, line {reader.line_num}"
        if None in row or any(v is None for v in row.values()):
            raise ProjectError(f"{where}: expected {len(header)} cells")
        if not any((v or "").strip() for v in row.values()):
            continue  # blank line
        rows.append(_parse_row(project, row, where))
    out = MetaSummary()
    with project.batch():
        for key, meta in rows:
            project.set_meta(key, **meta)
        out.updated = len({k for k, _ in rows})
    out.skipped = [k for k in project.keys() if k not in {k2 for k2, _ in rows}]
    return out
