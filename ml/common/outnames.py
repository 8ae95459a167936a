"""Names for files written per photo into one folder: readable, and never two on one path."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path, PurePosixPath


class OutputNames:
    """Output stems per photo key for one export: the key's folders and stem kept, made unique.

    A writer appends one of ``endings`` to the stem it is given. A stem is handed out only when
    every stem + ending is still free (compared case-insensitively, as Windows and macOS
    compare), so ``a.png`` and ``a.jpg`` get ``a`` and ``a.jpg``, and ``a_color.png`` cannot
    land on ``a.png``'s ``a_color.png``. ``reserved`` names fixed files such as ``classes.txt``.
    """

    def __init__(self, endings: tuple[str, ...], reserved: tuple[str, ...] = ()) -> None:
        self._endings = endings
        self._used = {r.lower() for r in reserved}

    def __call__(self, key: str) -> Path:
        for stem in _candidates(PurePosixPath(key)):
            files = {f"{stem.as_posix()}{e}".lower() for e in self._endings}
            if not files & self._used:
                self._used |= files
                return Path(stem)
        raise AssertionError("unreachable: the candidates never run out")


def _candidates(p: PurePosixPath) -> Iterator[PurePosixPath]:
    yield p.parent / p.stem  # the usual name: a.png -> a
    yield p.parent / p.name  # a same-stem sibling keeps its extension: a.jpg -> a.jpg
    for n in itertools.count(2):
        yield p.parent / f"{p.name}~{n}"
