"""A read-only mapping view of a project's records, each read from the database on use."""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, Mapping, ValuesView
from typing import TYPE_CHECKING

from ml.project.files import ProjectError
from ml.project.records import ImageRecord

if TYPE_CHECKING:
    from ml.project.store import Project


class ImagesView(Mapping[str, ImageRecord]):
    """``project.images``: ``len``, ``in`` and one record are queries; ``values()`` and
    ``items()`` read the whole campaign in three (:meth:`Project.records`)."""

    def __init__(self, project: Project) -> None:
        self._p = project

    def __getitem__(self, key: str) -> ImageRecord:
        try:
            return self._p.record(key)
        except ProjectError:
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._p.db.one(
            "SELECT 1 FROM images WHERE key = ?", (key,)) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._p.keys())

    def __len__(self) -> int:
        return int(self._p.db.one("SELECT count(*) FROM images")[0])

    def values(self) -> ValuesView[ImageRecord]:
        return self._p.records().values()

    def items(self) -> ItemsView[str, ImageRecord]:
        return self._p.records().items()
