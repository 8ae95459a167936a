"""Per-image inspection metadata: turbine, blade, side, date, distance and GSD, with provenance.

Stored in ``record.meta`` with the keys ``turbine`` (str), ``blade`` ("A" | "B" | "C"),
``side`` (one of :data:`SIDES`), ``date`` (ISO date), ``distance_m`` (camera to blade, m) and
``gsd_mm`` (mm per pixel); ``capture`` holds what the photo itself recorded (EXIF/XMP:
time, GPS, lens, camera, drone attitude; see :mod:`ml.metadata.photo_meta`).

A value that software guessed (folder names, EXIF date, a distance from the drone's XMP, the
GSD estimate) is listed in ``meta["_guessed"]`` as ``{field: how}`` until a person sets or
confirms it (:func:`set_values`, :func:`confirm`). Guesses are stored by
:func:`apply_guesses` (``ml.metadata.autofill`` and :func:`from_folders` use it), which never
overwrites a value a person gave; values without an entry in ``_guessed`` (a CSV, the panel, older
projects) count as given by a person.

Folder convention (:func:`meta_from_path`), relative to the project's image root::

    TURBINE/BLADE/SIDE/photo.jpg      e.g. WTG07/B/LE/DJI_0042.JPG

Read from the photo upwards: the nearest folder is the side if it names one, the next the
blade if it names one, the next the turbine. So ``TURBINE/BLADE/photo.jpg`` gives turbine and
blade, and deeper trees (``SITE/TURBINE/BLADE/SIDE/photo.jpg``) work too. Sides may be written
``LE``/``TE``/``PS``/``SS``, ``leading edge``, ``Leading-Edge``, ``pressure``...; blades
``A``/``B``/``C``, ``1``/``2``/``3`` or ``Blade A``.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml.common.images import ImageError
from ml.metadata.gsd import estimate_gsd
from ml.metadata.photo_meta import PhotoMeta, read_photo_meta
from ml.project.store import Project, ProjectError

SIDES = ("leading_edge", "trailing_edge", "pressure_side", "suction_side")
SHORT_SIDES = {"leading_edge": "LE", "trailing_edge": "TE", "pressure_side": "PS",
               "suction_side": "SS"}
BLADES = ("A", "B", "C")
FIELDS = ("turbine", "blade", "side", "date", "distance_m", "gsd_mm")  # a person can set these
# position along the blade (ml.metadata.position): the photo's radius, its turbine's sizes
# (set on every photo of a turbine), its inspection's date (ml.findings.inspections)
POSITION_FIELDS = ("radius_m", "hub_height_m", "blade_length_m", "inspection")
ALL_FIELDS = FIELDS + POSITION_FIELDS
CSV_COLUMNS = ("image", "turbine", "blade", "side", "distance_m", "date")
CSV_OPTIONAL = ("radius_m", "hub_height_m", "blade_length_m", "gsd_mm")
GUESSED = "_guessed"
CAPTURE = "capture"

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


RADIUS_FOLDER = re.compile(r"(?i)(?:r\s*=?\s*)?(\d+(?:[.,]\d+)?)\s*m")


def meta_from_path(key: str) -> dict:
    """turbine / blade / side read from the folders of an image key (see module docs)."""
    folders = list(Path(key).parts[:-1])
    meta: dict = {}
    if folders and RADIUS_FOLDER.fullmatch(folders[-1].strip()):
        folders.pop()  # .../B/PS/12.5m/photo.jpg: the radius (ml.metadata.position) is below
    if folders and normalize_side(folders[-1]):
        meta["side"] = normalize_side(folders.pop())
    if folders and normalize_blade(folders[-1]):
        meta["blade"] = normalize_blade(folders.pop())
    if folders:
        meta["turbine"] = folders[-1]
    return meta


_INSPECTION_SEQ = re.compile(r"(.+?)\s*#\s*(\d+)")


def inspection_name(date: str, seq: int = 1) -> str:
    """An inspection's name: its ISO date, with ' #n' for the n-th inspection of that day."""
    return date if seq <= 1 else f"{date} #{seq}"


def parse_inspection(text: Any) -> tuple[_dt.date, int] | None:
    """(date, n) of an inspection's name ('2025-06-18', '2025-06-18 #2'); None if not one."""
    m = _INSPECTION_SEQ.fullmatch(str(text).strip())
    try:
        day = _dt.date.fromisoformat((m[1] if m else str(text))[:10])
    except ValueError:
        return None
    return day, max(1, int(m[2])) if m else 1


def check_value(name: str, value: Any) -> Any:
    """A person's value for field ``name``, normalised; ValueError naming what is wrong."""
    text = str(value).strip()
    if name == "turbine":
        if not text:
            raise ValueError("turbine is empty")
        return text
    if name == "blade":
        if normalize_blade(text) is None:
            raise ValueError(f"blade '{text}' is not A, B or C")
        return normalize_blade(text)
    if name == "side":
        if normalize_side(text) is None:
            raise ValueError(f"side '{text}' is not one of {', '.join(SIDES)} (or LE/TE/PS/SS)")
        return normalize_side(text)
    if name == "date":
        try:
            return _dt.date.fromisoformat(text[:10]).isoformat()
        except ValueError:
            raise ValueError(f"date '{text}' is not YYYY-MM-DD") from None
    if name == "inspection":
        m = _INSPECTION_SEQ.fullmatch(text)
        return inspection_name(check_value("date", m[1] if m else text), int(m[2]) if m else 1)
    if name in ("distance_m", "gsd_mm", "radius_m", "hub_height_m", "blade_length_m"):
        return _metres(name, text)
    raise ValueError(f"unknown field '{name}' (one of {', '.join(ALL_FIELDS)})")


def _metres(name: str, text: str) -> float:
    """A positive number (a radius may be 0: the root); ValueError naming the field."""
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{name} '{text}' is not a number") from None
    zero_ok = name == "radius_m"
    if not (math.isfinite(number) and (number > 0 or (zero_ok and number == 0))):
        kind = "non-negative" if zero_ok else "positive"
        raise ValueError(f"{name} must be a {kind} number, got {text}")
    return number


# ----------------------------------------------------------------- provenance
def guessed(meta: Mapping) -> dict[str, str]:
    """Field -> how it was guessed, for the fields of ``meta`` no person has confirmed."""
    g = meta.get(GUESSED)
    return {k: str(v) for k, v in g.items() if k in meta} if isinstance(g, Mapping) else {}


def is_confirmed(meta: Mapping, name: str) -> bool:
    """True when ``name`` holds a value a person gave or confirmed."""
    return meta.get(name) not in (None, "") and name not in guessed(meta)


def _with(meta: Mapping, values: Mapping[str, Any], guesses: Mapping[str, str]) -> dict:
    """``meta`` with ``values`` set (None removes one); fields in ``guesses`` marked guessed."""
    out = {k: v for k, v in meta.items() if k != GUESSED}
    g = guessed(meta)
    for name, v in values.items():
        g.pop(name, None)
        if v is None or v == "":
            out.pop(name, None)
        else:
            out[name] = v
    g.update({k: how for k, how in guesses.items() if k in out})
    if g:
        out[GUESSED] = g
    return out


def set_values(project: Project, keys: Iterable[str], **values: Any) -> None:
    """A person's values (a bulk set over ``keys``): checked first, stored, no longer guessed.

    An empty value ('' or None) clears the field. Raises ProjectError before storing anything.
    """
    try:
        clean = {k: None if v is None or str(v).strip() == "" else check_value(k, v)
                 for k, v in values.items()}
    except ValueError as e:
        raise ProjectError(str(e)) from None
    with project.batch():
        for key in keys:
            meta = _with(project.record(key).meta, clean, {})
            if clean.get("distance_m") and not is_confirmed(meta, "gsd_mm"):
                meta = _with(meta, *_gsd_guess(meta, clean["distance_m"]))
            project.update(key, meta=meta)


def _gsd_guess(meta: Mapping, distance_m: float) -> tuple[dict, dict]:
    """(values, guesses) re-estimating the GSD at a new distance from the stored capture."""
    cap = meta.get(CAPTURE)
    if not isinstance(cap, Mapping):
        return {}, {}
    names = PhotoMeta.__dataclass_fields__
    try:
        photo = PhotoMeta(**{k: v for k, v in cap.items() if k in names and k != "xmp"})
        est = estimate_gsd(photo, distance_m)
    except (TypeError, ValueError):  # a hand-edited index: no estimate rather than an error
        return {}, {}
    if est is None:
        return {}, {}
    return {"gsd_mm": round(est.gsd_mm, 4)}, {"gsd_mm": f"estimate: {est.how}"}


def confirm(project: Project, keys: Iterable[str], fields: Iterable[str] | None = None) -> int:
    """A person says the guessed ``fields`` (default: all) are right; returns how many."""
    n = 0
    with project.batch():
        for key in keys:
            meta = project.record(key).meta
            names = [f for f in (fields or ALL_FIELDS) if f in guessed(meta)]
            if names:
                project.update(key, meta=_with(meta, {f: meta[f] for f in names}, {}))
                n += len(names)
    return n


def apply_guesses(project: Project, key: str, guesses: Mapping[str, tuple[Any, str]],
                  facts: Mapping[str, Any] | None = None) -> tuple[list[str], list[str]]:
    """Store ``{field: (value, how)}`` as guesses except over a person's value; ``facts`` as is.

    Returns (fields filled, fields kept because a person set them).
    """
    meta = project.record(key).meta
    kept = [f for f in guesses if is_confirmed(meta, f)]
    new = {f: vh for f, vh in guesses.items() if f not in kept}
    values = {f: v for f, (v, _) in new.items()} | dict(facts or {})
    updated = _with(meta, values, {f: how for f, (_, how) in new.items()})
    if updated != meta:
        project.update(key, meta=updated)
    return list(new), kept


def from_folders(project: Project) -> MetaSummary:
    """Guess turbine / blade / side (and the EXIF date) of every image from its folder path."""
    out = MetaSummary()
    found: dict[str, dict] = {}
    for key in project.keys():  # the photos are read first: no write lock is held meanwhile
        guesses = {k: (v, "folder name") for k, v in meta_from_path(key).items()}
        try:
            date = read_photo_meta(project.image_path(key)).date
        except ImageError:  # a broken or hostile photo (even a bomb) simply has no date
            date = None
        if date:
            guesses["date"] = (date, "photo's capture time (EXIF)")
        if not guesses:
            out.skipped.append(key)
            continue
        found[key] = guesses
    with project.batch():
        for key, guesses in found.items():
            apply_guesses(project, key, guesses)
            out.updated += 1
    return out


# ----------------------------------------------------------------- CSV
def _parse_row(project: Project, row: dict, where: str) -> tuple[str, dict]:
    name = (row.get("image") or "").strip()
    if not name:
        raise ProjectError(f"{where}: empty 'image' cell")
    key = project.find_key(name)
    if key is None:
        raise ProjectError(f"{where}: no image '{name}' in the project")
    meta: dict = {}
    for col in CSV_COLUMNS[1:] + CSV_OPTIONAL:
        text = (row.get(col) or "").strip()
        if text:
            try:
                meta[col] = check_value(col, text)
            except ValueError as e:
                raise ProjectError(f"{where}: {e}") from None
    return key, meta


def from_csv(project: Project, path: str | Path) -> MetaSummary:
    """Set metadata from a CSV with columns image,turbine,blade,side,distance_m,date.

    Optional columns: radius_m, hub_height_m, blade_length_m, gsd_mm.

    ``image`` is the image key (path under the image root) or a unique file name. Every row
    is checked before anything is stored; the first bad one raises an error naming its line.
    The values count as a person's (they are no longer marked guessed).
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
            project.update(key, meta=_with(project.record(key).meta, meta, {}))
        out.updated = len({k for k, _ in rows})
    out.skipped = [k for k in project.keys() if k not in {k2 for k2, _ in rows}]
    return out
