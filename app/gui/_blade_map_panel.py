"""The Blade map dock: each blade's findings at their radius; a click opens the photo there.

The map is :func:`ml.findings.blade_map.to_svg` painted by QSvgRenderer; a click is matched to
the nearest marker of :func:`ml.findings.blade_map.shapes` (same coordinates) and emitted as
``region_chosen(key, bbox)``, the Findings dock's signal. The current photo's markers get a
dark ring. Findings of the latest inspection are placed in a background job (masks and photos
are read).
"""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtCore import QByteArray, QRectF, Qt, Signal
from qtpy.QtGui import QPainter
from qtpy.QtSvg import QSvgRenderer
from qtpy.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.gui._jobs import Job
from ml.findings.blade_map import HEIGHT, BladeMap, blade_maps, shapes, to_svg
from ml.findings.inspections import latest_keys
from ml.findings.placement import Placement, place_findings
from ml.metadata.position import turbines
from ml.project.store import Project

MAP_WIDTH = 900.0


def _place_latest(project: Project, progress=None, should_stop=None) -> Placement:
    """The findings of the latest inspection (all photos when there is one) at their place."""
    return place_findings(project, latest_keys(project), progress=progress,
                          should_stop=should_stop)


class MapView(QWidget):
    """Paints one blade map and turns a click on a marker into ``clicked(ref)``."""

    clicked = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.map: BladeMap | None = None
        self.highlight: str | None = None
        self._renderer = QSvgRenderer()
        self.setMinimumHeight(170)  # readable; the dock scrolls when smaller

    def set_map(self, bm: BladeMap | None, highlight: str | None = None) -> None:
        self.map, self.highlight = bm, highlight
        if bm is not None:
            self._renderer.load(QByteArray(to_svg(bm, MAP_WIDTH, highlight).encode("utf-8")))
        self.update()

    def _box(self) -> QRectF:
        w = self.width()
        h = min(self.height(), w * HEIGHT / MAP_WIDTH)
        return QRectF(0, 0, h * MAP_WIDTH / HEIGHT, h)

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt name)
        if self.map is None:
            return
        p = QPainter(self)
        self._renderer.render(p, self._box())
        p.end()

    def marker_at(self, x: float, y: float) -> str | None:
        """The ref of the marker under widget point (x, y), if any."""
        if self.map is None:
            return None
        box = self._box()
        k = box.width() / MAP_WIDTH
        best, ref = 12.0, None
        for s in shapes(self.map, MAP_WIDTH, self.highlight):
            if s.kind == "circle" and s.ref:
                d = ((s.points[0] * k - x) ** 2 + (s.points[1] * k - y) ** 2) ** 0.5
                if d < best:
                    best, ref = d, s.ref
        return ref

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt name)
        pos = event.position() if hasattr(event, "position") else event.pos()
        ref = self.marker_at(pos.x(), pos.y())
        if ref is not None and event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(ref)


class BladeMapPanel(QWidget):
    """A blade picker, the map and a line of status; ``refresh`` places the findings again."""

    region_chosen = Signal(str, object)

    def __init__(self, project_fn: Callable[[], Project | None]) -> None:
        super().__init__()
        self._project_fn = project_fn
        self.maps: list[BladeMap] = []
        self.current_key: str | None = None
        self._job: Job | None = None
        self.blade = QComboBox()
        self.blade.currentIndexChanged.connect(lambda _i: self._show())
        self.refresh_btn = QPushButton("Place findings")
        self.refresh_btn.setToolTip("Read the masks and put every finding at its radius")
        self.refresh_btn.clicked.connect(self.refresh)
        self.view = MapView()
        self.view.clicked.connect(self._open)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.blade, 1)
        top.addWidget(self.refresh_btn)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.status)

    def refresh(self) -> None:
        project = self._project_fn()
        if project is None or (self._job is not None and self._job.is_running()):
            return
        self.status.setText("placing findings…")
        self._job = Job("blade map", _place_latest, project)
        self._job.succeeded.connect(lambda res, p=project: self._placed(p, res))
        self._job.failed.connect(self.status.setText)
        self._job.start()

    def stop(self) -> None:
        """Cancel placing and drop its result (the window is closing)."""
        if self._job is not None:
            self._job.abandon()
            self._job = None

    def _placed(self, project: Project, placed: Placement | None) -> None:
        if placed is None or project is not self._project_fn():
            return  # cancelled, or another project was opened meanwhile
        lengths = {n: t.blade_length_m for n, t in turbines(project).items()}
        self.maps = blade_maps(placed.found, lengths)
        self.blade.blockSignals(True)
        self.blade.clear()
        self.blade.addItems([m.title for m in self.maps])
        self.blade.blockSignals(False)
        notes = [f"{len(placed.unplaced)} photo(s) without turbine or blade"] \
            if placed.unplaced else []
        notes += [p for m in self.maps for p in m.problems]
        self.status.setText("; ".join(notes) if notes else
                            "" if self.maps else "no finding on a photo with turbine and blade")
        self._show()

    def show_photo(self, key: str) -> None:
        """Ring the markers of photo ``key``, switching to its blade."""
        self.current_key = key
        for i, m in enumerate(self.maps):
            if any(mk.finding.key == key for mk in m.markers):
                if i != self.blade.currentIndex():
                    self.blade.setCurrentIndex(i)
                    return
        self._show()

    def _show(self) -> None:
        i = self.blade.currentIndex()
        self.view.set_map(self.maps[i] if 0 <= i < len(self.maps) else None, self.current_key)

    def _open(self, ref: str) -> None:
        for m in self.maps:
            for mk in m.markers:
                f = mk.finding
                if f"{f.key}#{f.row.region_id}" == ref:
                    self.region_chosen.emit(f.key, f.row.finding.region.bbox)
                    return
