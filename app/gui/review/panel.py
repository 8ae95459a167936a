"""The Review dock: the model's proposals one at a time, decided by keyboard.

A accepts (a box of the proposal's class, its mask a training target), R rejects (background
there for training), C accepts as another class, B accepts with the box the person drew over
the proposal, Left/Right move, Ctrl+Z undoes the last decision. The queue's order and the
decisions are :mod:`ml.findings.queue` and :mod:`ml.findings.decisions`; this panel only shows
and forwards. ``latencies`` keeps the milliseconds from each key to the next proposal shown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QKeySequence, QShortcut
from qtpy.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.gui._responsive import lower_priority
from ml.findings import decisions as D
from ml.findings.queue import QueueItem, photos_to_box, review_queue
from ml.project.store import Project, ProjectError

KEYS = {"A": "accept", "R": "reject", "C": "change_class", "B": "redraw_box",
        "Left": "previous", "Right": "next", "Ctrl+Z": "undo"}


class ReviewQueuePanel(QWidget):
    """Emits ``show_proposal(key, proposal)`` to show it, ``decided(key)`` after a change."""

    show_proposal = Signal(str, object)
    decided = Signal(str)
    _finished = Signal(object, object)  # (queue item, its decision's future): worker -> GUI

    def __init__(self, get_project: Callable[[], Project | None],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.get_project = get_project
        self.items: list[QueueItem] = []
        self.index = 0
        self.undo_stack: list[D.Undo] = []
        self.latencies: list[float] = []  # ms, key press to the next proposal shown
        # decisions are written by one worker thread, in order, so the next proposal shows
        # without waiting for the mask to be read and the index to be saved
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="review",
                                        initializer=lower_priority)
        self._pending: list[Future] = []
        self._finished.connect(self._on_finished)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        lay = QVBoxLayout(self)
        self.title = QLabel("no proposals")
        self.title.setWordWrap(True)
        self.detail = QLabel("")
        self.detail.setWordWrap(True)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        lay.addWidget(self.title)
        lay.addWidget(self.detail)
        grid = QGridLayout()
        self.buttons: dict[str, QPushButton] = {}
        labels = {"accept": "Accept", "reject": "Reject", "change_class": "Class…",
                  "redraw_box": "Redraw box", "previous": "Previous", "next": "Next",
                  "undo": "Undo"}
        for n, (key, action) in enumerate(KEYS.items()):
            b = QPushButton(f"{labels[action]} ({key})")
            b.clicked.connect(lambda _c=False, a=action: getattr(self, a)())
            self.buttons[action] = b
            grid.addWidget(b, n // 2, n % 2)
        lay.addLayout(grid)
        self._threshold_row(lay)
        self.refresh_btn = QPushButton("Refresh queue")
        self.refresh_btn.clicked.connect(self.refresh)
        lay.addWidget(self.refresh_btn)
        lay.addWidget(self.status)
        self.to_box = QLabel("")
        self.to_box.setWordWrap(True)
        lay.addWidget(self.to_box)
        lay.addStretch(1)
        self._shortcuts = []
        for key, action in KEYS.items():
            sc = QShortcut(QKeySequence(key), self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(lambda a=action: getattr(self, a)())
            self._shortcuts.append(sc)

    # ------------------------------------------------------------------ threshold slider
    def _threshold_row(self, lay: QVBoxLayout) -> None:
        """Per class: the calibrated confidence a proposal needs, and what it gives."""
        row = QHBoxLayout()
        self.thr_class = QComboBox()
        self.thr_slider = QSlider(Qt.Orientation.Horizontal)
        self.thr_slider.setRange(0, 100)
        self.thr_save = QPushButton("Keep")
        self.thr_save.setToolTip("Store this threshold in the model card: the next prediction "
                                 "proposes what reaches it")
        row.addWidget(QLabel("Threshold"))
        row.addWidget(self.thr_class)
        row.addWidget(self.thr_slider, 1)
        row.addWidget(self.thr_save)
        lay.addLayout(row)
        self.thr_text = QLabel("")
        self.thr_text.setWordWrap(True)
        lay.addWidget(self.thr_text)
        self.calibration = None
        self.model_dir = None
        self.min_conf: dict[int, float] = {}
        self._all: list[QueueItem] = []
        self.thr_class.currentIndexChanged.connect(self._on_class)
        self.thr_slider.valueChanged.connect(self._on_slider)
        self.thr_save.clicked.connect(self.keep_threshold)

    def _load_calibration(self, proj: Project) -> None:
        from ml.evaluation.calibration import Calibration, from_card
        from ml.student.checkpoint import current_model

        self.model_dir = current_model(proj)
        self.calibration = from_card(self.model_dir) if self.model_dir else Calibration()
        self.thr_class.blockSignals(True)
        self.thr_class.clear()
        for cid, name in enumerate(proj.class_names()):
            if cid:
                self.thr_class.addItem(name, cid)
        self.thr_class.blockSignals(False)
        self.thr_save.setEnabled(self.model_dir is not None)
        self._on_class()

    def _on_class(self, _i: int = 0) -> None:
        cls = self.thr_class.currentData()
        if cls is None or self.calibration is None:
            return
        t = self.min_conf.get(cls, self.calibration.threshold(cls))
        self.thr_slider.blockSignals(True)
        self.thr_slider.setValue(round(t * 100))
        self.thr_slider.blockSignals(False)
        self._describe(cls, t)

    def _describe(self, cls: int, t: float) -> None:
        from ml.evaluation.calibration import at_threshold

        curve = self.calibration.curves.get(str(cls), [])
        prec, rec = at_threshold(curve, t)
        if not curve:
            self.thr_text.setText(f">= {t:.2f} (no validation regions of this class to say "
                                  f"what it gives)")
        else:
            self.thr_text.setText(f">= {t:.2f}: precision {'-' if prec is None else f'{prec:.2f}'}"
                                  f", recall {rec:.2f} on validation regions (target precision "
                                  f"{self.calibration.target_precision:g})")

    def _on_slider(self, value: int) -> None:
        cls = self.thr_class.currentData()
        if cls is None or self.calibration is None:
            return
        self.min_conf[cls] = value / 100.0
        self._describe(cls, value / 100.0)
        self._filter()

    def keep_threshold(self) -> None:
        from ml.evaluation.calibration import save_to_card, with_threshold

        cls = self.thr_class.currentData()
        if cls is None or self.model_dir is None or self.calibration is None:
            return
        self.calibration = with_threshold(self.calibration, cls, self.thr_slider.value() / 100)
        save_to_card(self.model_dir, self.calibration)
        self.status.setText(f"threshold of {self.thr_class.currentText()} kept in "
                            f"{self.model_dir.name}; the next prediction uses it")

    def _filter(self) -> None:
        cur = self.current()
        self.items = [i for i in self._all
                      if i.proposal.calibrated >= self.min_conf.get(i.proposal.cls, 0.0)]
        self.index = self.items.index(cur) if cur in self.items else 0
        self._show()

    # ------------------------------------------------------------------ the queue
    def refresh(self) -> None:
        """Read the queue again (after a prediction, or another person's decisions)."""
        proj = self.get_project()
        if proj is None:
            self.items, self.index = [], 0
            self._show()
            return
        q = review_queue(proj)
        self._all, self.index = q.items, 0
        self._load_calibration(proj)
        self.items = [i for i in self._all
                      if i.proposal.calibrated >= self.min_conf.get(i.proposal.cls, 0.0)]
        self.status.setText(q.summary())
        ranked = photos_to_box(proj, 5)
        self.to_box.setText("Photos to box next: " + ", ".join(k for k, _ in ranked)
                            if ranked else "")
        self._show()

    def current(self) -> QueueItem | None:
        return self.items[self.index] if 0 <= self.index < len(self.items) else None

    def _show(self, t0: float | None = None) -> None:
        item = self.current()
        if item is None:
            self.title.setText("no proposals to review" if not self.items else "queue done")
            self.detail.setText("")
        else:
            p = item.proposal
            self.title.setText(f"{self.index + 1}/{len(self.items)}  {item.key}  "
                               f"{item.class_name}")
            done = f"; decided: {item.decision.action}" if item.decision else ""
            novel = "" if p.novelty is None else f", novelty {p.novelty:.1f}"
            self.detail.setText(f"confidence {p.calibrated:.2f} (threshold {p.threshold:.2f})"
                                f"{novel}, {item.reason} {item.priority:.2f}, severity "
                                f"{item.severity}, {p.area} px{done}")
            self.show_proposal.emit(item.key, p)
        if t0 is not None:
            self.latencies.append((time.perf_counter() - t0) * 1000.0)

    def upcoming(self, n: int = 2) -> list[str]:
        """The photos of the next ``n`` proposals on other photos, then the one before: what
        to read ahead while the person looks at this one."""
        cur = self.current()
        here = cur.key if cur else None
        out: list[str] = []
        for it in self.items[self.index + 1:]:
            if len(out) == n:
                break
            if it.key != here and it.key not in out:
                out.append(it.key)
        before = self.items[self.index - 1].key if 0 < self.index <= len(self.items) else None
        if before is not None and before != here and before not in out:
            out.append(before)
        return out

    def next(self) -> None:
        t0 = time.perf_counter()
        self.index = min(self.index + 1, len(self.items))
        self._show(t0)

    def previous(self) -> None:
        t0 = time.perf_counter()
        self.index = max(self.index - 1, 0)
        self._show(t0)

    # ------------------------------------------------------------------ decisions
    def _decide(self, action: str, cls: int | str | None = None,
                box: tuple[float, ...] | None = None) -> bool:
        t0 = time.perf_counter()
        item, proj = self.current(), self.get_project()
        if item is None or proj is None:
            return False
        if item.key not in proj.images:  # the photo was removed since: drop it and go on
            self.status.setText(f"photo '{item.key}' is no longer in the project (removed "
                                f"since the proposal was made); its proposals are gone")
            self.items = [i for i in self.items if i.key != item.key]
            self.index = min(self.index, len(self.items))
            self._show(t0)
            return False
        fut = self._pool.submit(D.decide, proj, item.key, item.proposal.id, action, cls=cls,
                                box=box)
        self._pending.append(fut)
        fut.add_done_callback(lambda f, it=item: self._finished.emit(it, f))
        self.index += 1
        self._show(t0)
        return True

    def _on_finished(self, item: QueueItem, fut: Future) -> None:
        if fut in self._pending:
            self._pending.remove(fut)
        proj = self.get_project()
        try:
            result = fut.result()
        except (ProjectError, ValueError) as e:  # removed class, a stale proposal
            self.status.setText(str(e))
            return
        self.undo_stack.append(result.undo)
        names = proj.class_names() if proj is not None else None
        told = (f" (replaces an earlier decision: {result.previous.brief(names)})"
                if result.previous else "")
        self.status.setText(f"{item.key}: {result.decision.brief(names)}{told}")
        for lst in (self.items, self._all):
            for i, it in enumerate(lst):
                if it.key == item.key and it.proposal.id == item.proposal.id:
                    lst[i] = replace(it, decision=result.decision)
        self.decided.emit(item.key)

    def flush(self) -> None:
        """Wait for the decisions still being written and take in their results (each result
        comes back as a queued signal, posted just after its future is done)."""
        from qtpy.QtWidgets import QApplication

        waiting = list(self._pending)
        for f in waiting:
            try:
                f.result()
            except Exception:  # told through _on_finished
                pass
        deadline = time.perf_counter() + 10.0
        while True:
            QApplication.processEvents()
            if not any(f in self._pending for f in waiting) or time.perf_counter() > deadline:
                return
            time.sleep(0.001)

    def accept(self) -> bool:
        return self._decide(D.ACCEPTED)

    def reject(self) -> bool:
        return self._decide(D.REJECTED)

    def change_class(self, name: str | None = None) -> bool:
        """Accept as another class (asked for when ``name`` is None)."""
        proj = self.get_project()
        if proj is None or self.current() is None:
            return False
        if name is None:
            name, ok = QInputDialog.getItem(self, "Change class", "Class",
                                            proj.class_names()[1:], 0, False)
            if not ok:
                return False
        return self._decide(D.ACCEPTED, cls=name)

    def redraw_box(self) -> bool:
        """Accept with the box the person drew over the proposal (the newest manual box
        overlapping it, which then stands for the proposal instead of staying a box)."""
        self.flush()
        item, proj = self.current(), self.get_project()
        if item is None or proj is None:
            return False
        x0, y0, x1, y1 = item.proposal.box
        drawn = [b for b in proj.record(item.key).boxes if b.source == "manual"
                 and b.x0 < x1 and b.x1 > x0 and b.y0 < y1 and b.y1 > y0]
        if not drawn:
            self.status.setText("draw the box over the defect first (Annotate), then press B")
            return False
        box = drawn[-1]
        proj.set_boxes(item.key, [b for b in proj.record(item.key).boxes if b is not box])
        return self._decide(D.ACCEPTED, cls=box.cls, box=box.xyxy)

    def undo(self) -> bool:
        t0 = time.perf_counter()
        self.flush()
        proj = self.get_project()
        if not self.undo_stack or proj is None:
            return False
        token = self.undo_stack.pop()
        try:
            D.undo(proj, token)
        except ProjectError as e:
            self.status.setText(str(e))
            return False
        for i, it in enumerate(self.items):
            if it.key == token.key and it.proposal.id == token.pid:
                before = D.decisions(proj, token.key).get(token.pid)
                self.items[i] = replace(it, decision=before)
                self.index = i
        self.status.setText(f"undone: {token.key}:{token.pid}")
        self.decided.emit(token.key)
        self._show(t0)
        return True
