"""The folder layout Ultralytics trains from, written by the ``yolo`` and ``yolo-seg`` exports.

::

    OUT/data.yaml                           path, train, val, nc, names
    OUT/classes.txt                         the class names, line i = YOLO class i
    OUT/images/train/T01/A/LE/img_0042.jpg  the photo (hard link, else symbolic link, else copy)
    OUT/labels/train/T01/A/LE/img_0042.txt  its label lines (:mod:`ml.datasets.yolo`)
    OUT/images/val/...  OUT/labels/val/...

Ultralytics finds a photo's labels by replacing the last ``images/`` of its path by ``labels/``
and its extension by ``.txt``, so both names come from one :class:`ml.common.outnames.OutputNames`
stem: ``a.png`` and ``a.jpg`` in one folder become ``a.png`` + ``a.txt`` and ``a.jpg.jpg`` +
``a.jpg.txt``. Names do not depend on the split.

The split is the project's (:func:`ml.project.split.split_keys`): the stored one when there is one,
else one drawn with the seed and saved, so training in b2p validates on the same photos. A
split left empty (fewer than ``MIN_VAL_IMAGES`` photos) points at the other one in data.yaml.

Exporting again into the same folder replaces the earlier export: files under ``images/`` and
``labels/`` that this export did not write are removed (Ultralytics' ``.cache`` files too, as
they would hide changed labels). A folder holding ``images/``, ``labels/`` or a ``data.yaml``
that b2p did not write is refused, so a dataset made elsewhere is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from ml import __version__
from ml.common.atomic import atomic_write_text
from ml.common.outnames import OutputNames
from ml.datasets.yolo import write_class_names
from ml.project.split import MIN_VAL_IMAGES, labelled_keys, split_keys
from ml.project.store import Project, ProjectError

SPLITS = ("train", "val")
DATA_YAML = "data.yaml"
_MARK = "written by b2p"  # in data.yaml's first line, old flat exports included


def plan_split(project: Project, source: str, val_fraction: float = 0.2,
               seed: int = 0) -> tuple[frozenset[str], str]:
    """The val keys of the photos with a ``source`` mask, and a note on where they came from."""
    if not 0 < val_fraction < 1:
        raise ProjectError(f"the val fraction must lie between 0 and 1, got {val_fraction}")
    stored = bool(project.split.get("val")) if project.split else False
    _, val = split_keys(project, labelled_keys(project, source), val_fraction, seed)
    if not val:
        note = f"fewer than {MIN_VAL_IMAGES} photos, no val set"
    elif stored:
        note = "the project's stored split"
    else:
        note = f"drawn (fraction {val_fraction:g}, seed {seed}) and kept in the project"
    return frozenset(val), note


def place_photo(src: Path, dst: Path, copy: bool = False) -> str:
    """Put photo ``src`` at ``dst`` (replacing it); says how: hard-linked, symlinked, copied.

    A hard link costs no space and survives moving the folder; it needs one file system, so a
    symbolic link comes next and a copy last. ``dst`` is replaced, never written through, so an
    earlier link to the original is not changed.
    """
    if not src.is_file():
        raise OSError(f"photo file not found: {src}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    makers = [] if copy else [("hard-linked", os.link),
                              ("symlinked", lambda s, d: os.symlink(s.resolve(), d))]
    for how, make in makers:
        try:
            make(src, tmp)
            os.replace(tmp, dst)
            return how
        except OSError:
            tmp.unlink(missing_ok=True)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return "copied"


def _inside(a: Path, b: Path) -> bool:
    return a == b or b in a.parents


def check_folder(project: Project, out: Path) -> None:
    """Refuse an ``out`` that overlaps the photo folder or holds a dataset b2p did not write."""
    photos, target = project.image_root.resolve(), out.resolve()
    if _inside(target, photos) or _inside(photos, target):
        raise ProjectError(f"{out}: overlaps the photo folder {photos}; export to a folder "
                           f"outside it")
    if out.is_file():
        raise ProjectError(f"{out}: is a file; give a folder for a YOLO export")
    yaml = out / DATA_YAML
    ours = False
    if yaml.is_file():
        with open(yaml, encoding="utf-8", errors="replace") as fh:
            ours = _MARK in fh.readline()
        if not ours:
            raise ProjectError(f"{out}: holds a {DATA_YAML} that b2p did not write; choose an "
                               f"empty folder")
    if not ours and any((out / d).exists() for d in ("images", "labels")):
        raise ProjectError(f"{out}: holds an images or labels folder that b2p did not write; "
                           f"choose an empty folder")


class YoloDatasetWriter:
    """Writes one export: ``add`` each photo's label lines, then ``finish``."""

    def __init__(self, project: Project, out: str | Path, val: Iterable[str],
                 copy_images: bool = False) -> None:
        self.project, self.out, self.copy = project, Path(out), copy_images
        check_folder(project, self.out)
        self.val = frozenset(val)
        self.names = OutputNames((".txt",))
        self.counts: Counter[str] = Counter({s: 0 for s in SPLITS})
        self.photos: Counter[str] = Counter()  # how the photos were placed
        self._written: set[str] = set()  # paths relative to out, posix

    def add(self, key: str, lines: Sequence[str]) -> str:
        """Place the photo and write its labels; returns the split. OSError: nothing counted."""
        split = "val" if key in self.val else "train"
        stem = self.names(key).as_posix()
        img = f"images/{split}/{stem}{Path(key).suffix}"
        lab = f"labels/{split}/{stem}.txt"
        # labels first: if the photo cannot be placed, neither is recorded and finish()
        # removes the label, so Ultralytics never sees half a pair
        atomic_write_text(self.out / lab, "".join(f"{s}\n" for s in lines))
        self.photos[place_photo(self.project.image_path(key), self.out / img, self.copy)] += 1
        self._written |= {img, lab}
        self.counts[split] += 1
        return split

    def finish(self, source: str, split_note: str) -> None:
        """Remove what an earlier export left, write classes.txt and data.yaml."""
        self._remove_stale()
        names = self.project.class_names()[1:]
        write_class_names(self.out, names)
        atomic_write_text(self.out / DATA_YAML, self._yaml(names, source, split_note))

    def _yaml(self, names: list[str], source: str, split_note: str) -> str:
        n_train, n_val = self.counts["train"], self.counts["val"]
        train = "images/train" if n_train or not n_val else "images/val"
        val = "images/val" if n_val else "images/train"
        how = ", ".join(f"{n} {k}" for k, n in sorted(self.photos.items())) or "none"
        lines = [f"# Ultralytics dataset {_MARK} {__version__} from {source} masks of "
                 f"{json.dumps(self.project.name)}; cls = project class id - 1.",
                 f"# {n_train} train and {n_val} val photos; split: {split_note}.",
                 f"# Photos from {json.dumps(str(self.project.image_root))}: {how}."]
        if not n_val or not n_train:
            lines.append("# One split is empty: it points at the other one's photos.")
        lines += [f"path: {json.dumps(self.out.resolve().as_posix())}  # this folder",
                  f"train: {train}", f"val: {val}", f"nc: {len(names)}", "names:"]
        lines += [f"  {i}: {json.dumps(n)}" for i, n in enumerate(names)]
        return "\n".join(lines) + "\n"

    def _remove_stale(self) -> None:
        for top in ("images", "labels"):
            for split in SPLITS:
                root = self.out / top / split
                for folder, _dirs, files in os.walk(root, topdown=False):
                    here = Path(folder)
                    for f in files:
                        if (here / f).relative_to(self.out).as_posix() not in self._written:
                            (here / f).unlink()
                    if here != root and not any(here.iterdir()):
                        here.rmdir()
        for cache in (self.out / "labels").glob("*.cache"):
            cache.unlink()
