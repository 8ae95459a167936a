"""Where the docks go: tab groups by task, columns sized so the photo keeps most of the width.

Every dock joins a named group (:data:`GROUPS`: annotate, predict, train, findings, photos,
metadata, napari). A *plan* for the window's width says which groups share a tab stack and
how the stacks sit in the left and right columns; docks that would not fit side by side are
tabs (``tabifyDockWidget``), so the window's minimum size is one dock's, never a column's sum.
napari's layer controls and layer list form the ``napari`` group, hidden until View → napari
panels. The layout and its active tabs are remembered per screen size (QSettings, keyed by the
screen's geometry), so a laptop docked to a large monitor and back gets each its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from qtpy.QtCore import QByteArray, QSettings, Qt
from qtpy.QtWidgets import QDockWidget, QMainWindow, QTabWidget, QWidget

from app.gui import _constants as C

# group -> column; a group's docks are always adjacent tabs of one stack, in the order added
GROUPS = {"annotate": "right", "predict": "right", "train": "right", "findings": "right",
          "photos": "left", "metadata": "left", "napari": "left"}
LAYOUT_KEY = "dock_layout"  # QSettings group: one saved state per screen size
LAYOUT_VERSION = 1  # bumped when the plans change, so old saved states are not restored
NAPARI_DOCKS = ("dockLayerControls", "dockLayerList")


@dataclass(frozen=True)
class Plan:
    """``columns``: area -> stacks top to bottom, each stack a tuple of groups (one tab bar);
    ``width``: area -> the column's share of the window's width; ``heights``: area -> each
    stack's share of the column's height."""

    name: str
    columns: dict[str, tuple[tuple[str, ...], ...]]
    width: dict[str, float]
    heights: dict[str, tuple[float, ...]]


# Widths in logical pixels (QT_SCALE_FACTOR 1.25 makes a 1366-px screen 1093 wide).
WIDE = Plan("wide",  # 1800 and up (1920 × 1080): the photo list and the findings always shown
            {"left": (("photos",), ("metadata", "napari")),
             "right": (("annotate",), ("predict", "train"), ("findings",))},
            {"left": 0.15, "right": 0.21},
            {"left": (0.6, 0.4), "right": (0.2, 0.3, 0.5)})
MEDIUM = Plan("medium",  # 1200-1799 (1366 × 768): the photo list alone on the left
              {"left": (("photos", "napari"),),
               "right": (("annotate",), ("findings", "predict", "train", "metadata"))},
              {"left": 0.14, "right": 0.23},
              {"left": (1.0,), "right": (0.25, 0.75)})
NARROW = Plan("narrow",  # under 1200 (1366 × 768 at 125 % or 150 %): one stack on the right
              {"right": (("annotate", "photos", "findings", "predict", "train", "metadata",
                          "napari"),)},
              {"right": 0.33},
              {"right": (1.0,)})


def plan_for(width: int) -> Plan:
    """The plan for a window (or screen) ``width`` logical pixels wide."""
    return WIDE if width >= 1800 else MEDIUM if width >= 1200 else NARROW


def screen_key(window: QWidget) -> str:
    """The saved layout's key: the size of the screen the window is on, e.g. ``1366x768``."""
    screen = window.screen()
    g = screen.geometry() if screen is not None else window.geometry()
    return f"{g.width()}x{g.height()}"


def _settings() -> QSettings:
    return QSettings(C.SETTINGS_ORG, C.SETTINGS_APP)


class DockLayout:
    """The main window's docks by group; :meth:`add` registers one, :meth:`arrange` places them
    all by the plan for the screen, :meth:`save` / :meth:`restore` keep it per screen size."""

    def __init__(self, napari_window) -> None:
        self.napari = napari_window
        self.win: QMainWindow = napari_window._qt_window
        self.groups: dict[str, list[QDockWidget]] = {g: [] for g in GROUPS}
        self.plan: Plan | None = None
        self.screen_key: str | None = None  # the screen size the layout was placed for
        for area in (Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea):
            self.win.setTabPosition(area, QTabWidget.TabPosition.North)  # tabs read as a notebook
        qv = napari_window._qt_viewer
        for attr in NAPARI_DOCKS:
            dock = getattr(qv, attr, None)
            if dock is not None:
                self.groups["napari"].append(dock)

    # ------------------------------------------------------------------ docks
    def add(self, widget: QWidget, name: str, group: str) -> QDockWidget:
        """Dock ``widget`` under ``name`` into tab group ``group`` (a key of :data:`GROUPS`)."""
        if group not in GROUPS:
            raise ValueError(f"unknown dock group {group!r}; one of {', '.join(GROUPS)}")
        dock = self.napari.add_dock_widget(widget, name=name, area=GROUPS[group])
        self.groups[group].append(dock)
        if self.plan is not None:  # added after the layout was placed: placed again, the new
            self.arrange()  # dock a tab beside its group's
        return dock

    def docks(self) -> list[QDockWidget]:
        """Every dock, by group."""
        return [d for g in GROUPS for d in self.groups[g]]

    def _tabbed(self, dock: QDockWidget) -> bool:
        return any(not o.isHidden() for o in self.win.tabifiedDockWidgets(dock))

    # ------------------------------------------------------------------ napari's panels
    def napari_panels_shown(self) -> bool:
        return any(not d.isHidden() or self._tabbed(d) for d in self.groups["napari"])

    def show_napari_panels(self, on: bool) -> None:
        """napari's layer controls and layer list, tabs of the metadata stack when shown."""
        for dock in self.groups["napari"]:
            dock.setVisible(on)
        if on and self.groups["napari"]:
            self.groups["napari"][0].raise_()

    # ------------------------------------------------------------------ placing
    def arrange(self, width: int | None = None) -> Plan:
        """Place every dock by the plan for ``width`` (default: the window's screen's available
        width) with the first tab of each stack in front; napari's panels hidden."""
        if width is None:
            width = self._screen_width()
        plan = plan_for(width)
        self.plan = plan
        self.screen_key = screen_key(self.win)
        areas = {"left": Qt.DockWidgetArea.LeftDockWidgetArea,
                 "right": Qt.DockWidgetArea.RightDockWidgetArea}
        for dock in self.docks():  # placed while shown: a hidden dock goes back to its old
            dock.setFloating(False)  # place when it is shown again
            dock.show()
        tabs = []  # (head, dock): tabified once every split is made (splitting a dock that
        for area, stacks in plan.columns.items():  # is a tab adds a tab, not a split)
            above = None
            for stack in stacks:
                docks = [d for g in stack for d in self.groups[g]]
                if not docks:
                    continue
                head = docks[0]
                if above is None:
                    self.win.addDockWidget(areas[area], head)
                else:
                    self.win.splitDockWidget(above, head, Qt.Orientation.Vertical)
                tabs += [(head, d) for d in docks[1:]]
                above = head
        for head, dock in tabs:
            self.win.tabifyDockWidget(head, dock)
        for dock in self.groups["napari"]:
            dock.hide()
        for stacks in plan.columns.values():
            for stack in stacks:
                heads = [d for g in stack for d in self.groups[g] if not d.isHidden()]
                if heads:
                    heads[0].raise_()
        self.fit_columns()
        return plan

    def fit_columns(self, width: int | None = None) -> None:
        """Size the columns (and the stacks in them) to the plan's shares of ``width``."""
        plan = self.plan
        if plan is None:
            return
        width = width or (self.win.width() if self.win.isVisible() else self._screen_width())
        heads, widths = [], []
        for area, stacks in plan.columns.items():
            column = [self._front(stack) for stack in stacks]
            column = [d for d in column if d is not None]
            if not column:
                continue
            heads.append(column[0])
            widths.append(round(plan.width[area] * width))
            if len(column) > 1:
                h = max(self.win.height() - 80, 200)
                shares = plan.heights[area][:len(column)]
                self.win.resizeDocks(column, [round(s * h) for s in shares],
                                     Qt.Orientation.Vertical)
        if heads:
            self.win.resizeDocks(heads, widths, Qt.Orientation.Horizontal)

    def _front(self, stack: tuple[str, ...]) -> QDockWidget | None:
        docks = [d for g in stack for d in self.groups[g] if not d.isHidden()]
        return docks[0] if docks else None

    def _screen_width(self) -> int:
        screen = self.win.screen()
        return screen.availableGeometry().width() if screen is not None else self.win.width()

    # ------------------------------------------------------------------ remembered per screen
    def _key(self, key: str | None = None) -> str:
        return f"{LAYOUT_KEY}/v{LAYOUT_VERSION}/{key or screen_key(self.win)}"

    def save(self) -> None:
        """Remember the docks' places and active tabs for the screen the window is on."""
        _settings().setValue(self._key(self.screen_key), self.win.saveState(LAYOUT_VERSION))

    def restore(self) -> bool:
        """Place the docks as they were last on a screen of this size; False if never saved
        (the caller then arranges them by the plan)."""
        raw = _settings().value(self._key())
        if not isinstance(raw, QByteArray) or raw.isEmpty():
            return False
        if not self.win.restoreState(raw, LAYOUT_VERSION):
            return False
        self.plan = plan_for(self._screen_width())
        self.screen_key = screen_key(self.win)
        return True

    def place(self) -> None:
        """The remembered layout for this screen size, else the plan's."""
        if not self.restore():
            self.arrange()

    def release(self) -> None:
        """Drop the window and its docks (window closing): held here they would keep a closed
        viewer alive (Qt's side of the cycle is invisible to Python's collector)."""
        self.groups = {g: [] for g in GROUPS}
        self.napari = self.win = None

    def reset(self) -> None:
        """View → Reset layout: forget this screen size's layout and arrange by the plan."""
        _settings().remove(self._key())
        self.arrange()

    def follow_screen(self) -> None:
        """Once the window is shown: place the layout again when it moves to another screen."""
        handle = self.win.windowHandle()
        if handle is not None:
            handle.screenChanged.connect(lambda _s: self.screen_changed())

    def screen_changed(self) -> None:
        """The window moved to a screen of another size: keep the old screen's layout, place
        this one's."""
        if self.win is None or screen_key(self.win) == self.screen_key:
            return
        if self.screen_key is not None:
            self.save()
        self.place()
