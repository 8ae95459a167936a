"""Importing a folder of photos: the next inspection.

:func:`import_photos` brings a folder's photos into a project and makes them one new
inspection (``meta["inspection"]``, :mod:`ml.findings.inspections`), dated by the photos'
capture dates (EXIF/XMP, the first day) where any photo recorded one, else today; a date
software chose is stored as a guess and the result says how it was chosen. A folder inside the
project's photo folder is scanned where it lies; one elsewhere (a memory card, a download) is
hard-linked, else copied, into the photo folder under its own name (``into`` renames it). The
inspections already in the project are left as they are. ``b2p import --photos`` and the GUI's
"Import photos…" call it.

Bad input:

* an inspection of the same day is already there: the new one is ``DATE #2`` (``#3``...),
  told apart by that name and ordered after it;
* the same folder imported again: no new inspection; photos added to the folder since join the
  inspection the folder's photos already belong to;
* a different folder of the same name (a file of the same name and another size): refused
  before anything is copied.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ml.common import images as _images
from ml.common.batch import BatchResult
from ml.common.progress import Cancelled, ProgressFn, Reporter, StopFn
from ml.findings.inspections import GAP_DAYS, inspections
from ml.metadata.photo_meta import read_photo_meta
from ml.metadata.values import apply_guesses, check_value, inspection_name, set_values
from ml.project.files import STORE_DIRS
from ml.project.store import Project, ProjectError

ALREADY = "already in the project"  # why a photo of a re-imported folder was skipped


@dataclass(frozen=True, kw_only=True)
class PhotoImport(BatchResult):
    """Photos brought in (``done``: the new keys) and the inspection they joined."""

    folder: str = ""  # where they are, relative to the project's photo folder ('' = all of it)
    inspection: str = ""  # the name of the inspection they joined ('' when none)
    new_inspection: bool = False
    dated_by: str = ""  # how its date was chosen, in words
    placed: str = ""  # "hard-linked" / "copied" / "" (scanned where they lie)
    again: bool = False  # the folder was imported before

    def summary(self) -> str:
        where = f"{self.folder}/" if self.folder else "the photo folder"
        text = f"{len(self.done)} new photo(s) in {where}"
        if self.placed:
            text += f" ({self.placed} into the project's photo folder)"
        if self.skipped:
            text += f"; {len(self.skipped)} {ALREADY}"
        if self.failed:
            text += f"; {len(self.failed)} unreadable (listed, skipped by every step)"
        if self.new_inspection:
            text += f"\nnew inspection {self.inspection}, dated by {self.dated_by}"
        elif self.again:
            text += "\nthe folder was imported before: no new inspection"
            if self.done and self.inspection:
                text += f"; its new photos joined the inspection {self.inspection}"
        return text + ("\nstopped early" if self.stopped else "")


def _destination(project: Project, src: Path, into: str | None) -> tuple[str, Path]:
    """(the folder's path relative to the photo folder, where its photos go)."""
    root, home = project.image_root.resolve(), project.root.resolve()
    if any(src == home / d or home / d in src.parents for d in STORE_DIRS):
        raise ProjectError(f"{src} is one of the project's own folders, not photos")
    if src == root or root in src.parents:
        if into:
            raise ProjectError(f"{src} is inside the project's photo folder already: it is "
                               f"imported where it lies (drop --into)")
        return ("" if src == root else src.relative_to(root).as_posix()), src
    if src in root.parents:
        raise ProjectError(f"{src} holds the project's photo folder {root}: give a folder of "
                           f"new photos")
    if src == home or src in home.parents:
        raise ProjectError(f"{src} holds the project {project.root}: give a folder of photos")
    rel = PurePosixPath((into or src.name).replace("\\", "/"))
    if rel.is_absolute() or not rel.parts or ".." in rel.parts or rel.parts[0] in STORE_DIRS:
        raise ProjectError(f"cannot import into '{rel}': give a folder name inside the "
                           f"project's photo folder")
    return rel.as_posix(), root / rel


def _conflicts(photos: list[Path], src: Path, dest: Path) -> list[str]:
    return [p.relative_to(src).as_posix() for p in photos
            if (dest / p.relative_to(src)).exists()
            and (dest / p.relative_to(src)).stat().st_size != p.stat().st_size]


def _place(src: Path, dst: Path) -> str:
    """Hard-link ``src`` at ``dst``, else copy it there (through a temp name); says which."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.import.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
        how = "hard-linked"
    except OSError:  # another disk, or a file system without hard links
        shutil.copy2(src, tmp)
        how = "copied"
    os.replace(tmp, dst)
    return how


def _capture_day(path: Path) -> _dt.date | None:
    try:
        day = read_photo_meta(path).date
    except _images.ImageError:
        return None
    return _dt.date.fromisoformat(day) if day else None


def _date(project: Project, keys: list[str], given: str | None) -> tuple[str, str, list[str]]:
    """(ISO date, how it was chosen, warnings) of a new inspection of ``keys``."""
    if given:
        try:
            return check_value("date", given), "the date given", []
        except ValueError as e:
            raise ProjectError(str(e)) from None
    days = [d for d in (_capture_day(project.image_path(k)) for k in keys) if d is not None]
    if not days:
        return _dt.date.today().isoformat(), "today's date: no photo recorded a capture date", []
    first, last = min(days), max(days)
    how = f"the photos' capture dates (the first day; {len(days)} of {len(keys)} photos " \
          f"recorded one)"
    warn = [f"the capture dates span {first} to {last}: more than {GAP_DAYS} days for one "
            f"inspection; check them"] if (last - first).days > GAP_DAYS else []
    return first.isoformat(), how, warn


def _folder_inspection(project: Project, known: list[str]) -> str:
    """The inspection most of the folder's known photos belong to, '' when none."""
    found, _ = inspections(project)
    votes = Counter(i.name for i in found for k in i.keys if k in set(known))
    return votes.most_common(1)[0][0] if votes else ""


def import_photos(project: Project, folder: str | os.PathLike, date: str | None = None,
                  into: str | None = None, progress: ProgressFn | None = None,
                  should_stop: StopFn | None = None) -> PhotoImport:
    """Bring ``folder``'s photos into ``project`` as its next inspection (see the module)."""
    src = Path(folder).resolve()
    if not src.is_dir():
        raise ProjectError(f"{folder}: photo folder not found")
    rel, dest = _destination(project, src, into)
    store = [project.root.resolve() / d for d in STORE_DIRS]
    photos = [p for p in _images.list_images(src) if not any(d in p.parents for d in store)]
    if not photos:
        raise ProjectError(f"{src}: no photos in this folder")
    prefix = f"{rel}/" if rel else ""
    known = [k for k in project.keys() if k.startswith(prefix)]
    before = inspections(project)[0]
    placed, stopped = Counter(), False
    if dest != src:
        clash = _conflicts(photos, src, dest)
        if clash:
            raise ProjectError(f"the project's photo folder already holds a different '{rel}' "
                               f"({len(clash)} file(s) of the same name and another size, e.g. "
                               f"{clash[0]}); import it under another name (--into NAME)")
        rep = Reporter(len(photos), progress, should_stop)
        try:
            for p in photos:
                rep.check()
                target = dest / p.relative_to(src)
                if not target.exists():
                    placed[_place(p, target)] += 1
                rep.step(message=p.name)
        except Cancelled:
            stopped = True
    scan = project.scan()
    new = [k for k in (*scan.done, *scan.failed) if k.startswith(prefix) and k not in known]
    failed = {k: why for k, why in scan.failed.items() if k in new}
    skipped = {p: ALREADY for p in (f"{prefix}{x.relative_to(src).as_posix()}" for x in photos)
               if p in known}
    out = dict(action="photos imported", total=len(photos), done=tuple(k for k in new
                                                                       if k not in failed),
               failed=failed, skipped=skipped, stopped=stopped, folder=rel,
               placed=" and ".join(sorted(placed)), again=bool(known))
    if known or not new:  # imported before: new photos join the folder's inspection, if any
        name = _folder_inspection(project, known)
        with project.batch():
            for k in new if name else []:
                apply_guesses(project, k, {"inspection": (name, f"photos of {rel or '.'}")})
        warn = [f"--date {date} not used: the folder was imported before"] if date and known \
            else []
        return PhotoImport(**out, inspection=name, warnings=tuple(warn))
    day, how, warnings = _date(project, new, date)
    seq = 1 + max((i.seq for i in before if i.date == day), default=0)
    name = inspection_name(day, seq)
    if seq > 1:
        how += f"; another inspection is dated {day}, so this one is '{name}'"
    if date:
        set_values(project, new, inspection=name)
    else:
        with project.batch():
            for k in new:
                apply_guesses(project, k, {"inspection": (name, f"import of {src.name}: {how}")})
    undated = inspections(project)[1]
    if undated:
        warnings.append(f"{len(undated)} photo(s) of the project have no date or inspection "
                        f"and are compared with nothing (b2p history --set-inspection DATE "
                        f"--where GLOB)")
    return PhotoImport(**out, inspection=name, new_inspection=True, dated_by=how,
                       warnings=tuple(warnings))
