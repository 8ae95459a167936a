"""Auto-fill: what a photo's EXIF/XMP, its folders and the GSD estimate suggest, as guesses.

:func:`auto_fill` reads every photo (outside the project's lock), then stores its guesses
through :func:`ml.metadata.values.apply_guesses`, so a value a person set or confirmed is never
overwritten. The camera-to-blade distance comes from, best first: a person's value, the
distance given to :func:`auto_fill`, the drone's laser rangefinder, and only then its height
above take-off, which is not the distance to the blade and is marked as such.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ml.common.batch import BatchResult
from ml.common.images import ImageError
from ml.common.progress import ProgressFn, Reporter, StopFn
from ml.metadata.gsd import estimate_gsd
from ml.metadata.photo_meta import PhotoMeta, read_photo_meta
from ml.metadata.position import radius_guesses
from ml.metadata.values import (
    CAPTURE,
    FIELDS,
    apply_guesses,
    check_value,
    guessed,
    is_confirmed,
    meta_from_path,
)
from ml.project.store import Project

_ALTITUDE_NOTE = ("the drone's height above take-off (XMP RelativeAltitude), not the distance "
                  "to the blade: enter the real distance")


def _distance(meta: Mapping, photo: PhotoMeta, entered: float | None) -> tuple[float, str] | None:
    """The best camera-to-blade distance and how it was found, best source first."""
    if is_confirmed(meta, "distance_m"):
        return float(meta["distance_m"]), "confirmed distance"
    if entered:
        return entered, "entered distance"
    if photo.laser_distance_m:
        return photo.laser_distance_m, "laser rangefinder (XMP LRFTargetDistance)"
    if photo.relative_alt_m and photo.relative_alt_m > 0:
        return photo.relative_alt_m, _ALTITUDE_NOTE
    return None


def guesses_for(key: str, meta: Mapping, photo: PhotoMeta,
                distance_m: float | None = None) -> dict[str, tuple[Any, str]]:
    """``{field: (value, how)}`` that folders, EXIF/XMP and the GSD estimate suggest."""
    out: dict[str, tuple[Any, str]] = {
        k: (v, "folder name") for k, v in meta_from_path(key).items()}
    if photo.date:
        out["date"] = (photo.date, "photo's capture time (EXIF)")
    dist = _distance(meta, photo, distance_m)
    if dist and dist[1] not in ("confirmed distance", "entered distance"):
        out["distance_m"] = (round(dist[0], 2), dist[1])
    if dist:
        est = estimate_gsd(photo, dist[0])
        if est:
            how = f"estimate: {est.how}" + ("; distance guessed" if dist[1] == _ALTITUDE_NOTE
                                             else "")
            out["gsd_mm"] = (round(est.gsd_mm, 4), how)
    # the radius along the blade: a folder like 12.5m, else hub height minus drone height
    out.update(radius_guesses(key, {**meta, CAPTURE: photo.capture()}))
    return out


@dataclass(frozen=True, kw_only=True)
class AutoFillResult(BatchResult):
    """Per field: photos given a guess, and photos where a person's value was kept."""

    filled: Mapping[str, int] = field(default_factory=dict)
    kept: Mapping[str, int] = field(default_factory=dict)
    guessed_now: Mapping[str, int] = field(default_factory=dict)  # still unconfirmed, after

    def summary(self) -> str:
        def counts(c: Mapping[str, int]) -> str:
            return ", ".join(f"{k} {c[k]}" for k in (*FIELDS, "radius_m") if c.get(k)) or "none"

        return (f"{super().summary()}\nfilled: {counts(self.filled)}\n"
                f"kept (set by a person): {counts(self.kept)}\n"
                f"guessed, to confirm: {counts(self.guessed_now)}")


def auto_fill(project: Project, keys: Iterable[str] | None = None,
              distance_m: float | None = None, progress: ProgressFn | None = None,
              should_stop: StopFn | None = None) -> AutoFillResult:
    """Fill metadata from folders, EXIF/XMP and the GSD estimate, never over a person's value.

    ``distance_m`` is a person's camera-to-blade distance for photos without one (stored as
    theirs); otherwise the drone's laser rangefinder, then its height above take-off (a poor
    stand-in, marked guessed) feed the GSD estimate.
    """
    if distance_m is not None:
        distance_m = check_value("distance_m", distance_m)
    keys = list(project.keys() if keys is None else keys)
    rep = Reporter(len(keys), progress, should_stop)
    photos: dict[str, PhotoMeta] = {}
    failed: dict[str, str] = {}
    stopped = False
    for key in keys:  # file reads outside the project's lock: the GUI keeps saving meanwhile
        if rep.stopped():
            stopped = True
            break
        try:
            photos[key] = read_photo_meta(project.image_path(key))
        except ImageError as e:
            failed[key] = e.reason
            rep.step(message=key, error=e.reason)
            continue
        rep.step(message=key)
    filled: Counter = Counter()
    kept: Counter = Counter()
    done, skipped = [], {}
    with project.batch():
        for key, photo in photos.items():
            meta = project.record(key).meta
            capture = photo.capture()
            told = bool(set(capture) - {"width", "height"})  # the photo said something
            facts: dict[str, Any] = {CAPTURE: capture} if told else {}
            if distance_m and not is_confirmed(meta, "distance_m"):
                facts["distance_m"] = distance_m
            new, same = apply_guesses(project, key, guesses_for(key, meta, photo, distance_m),
                                      facts)
            filled.update(new)
            kept.update(same)
            if new or told:
                done.append(key)
            else:
                skipped[key] = "no metadata in the photo or its folders"
    now = Counter(f for k in keys for f in guessed(project.record(k).meta))
    return AutoFillResult(action="photos given metadata", total=len(keys), done=tuple(done),
                          failed=failed, skipped=skipped, stopped=stopped, filled=dict(filled),
                          kept=dict(kept), guessed_now=dict(now))
