"""Training settings form: defaults that follow the device, a wall-clock budget, the plan.

On a CPU the default is a 15 min budget, planned by ``ml.budget`` (frozen backbone and feature
cache, the input size and epochs that fit); on a GPU it is the paper's settings, trained until
converged. The plan is measured in a child Python (torch never loads in the GUI for it) and
its expected duration is shown before Start; a chosen budget drives mode, input size and epochs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from qtpy.QtCore import QProcess, QTimer
from qtpy.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QLabel, QSpinBox, QWidget

import ml
from ml.budget import TrainPlan, apply_plan
from ml.config import StudentConfig, TrainConfig

BACKBONE_WEIGHTS = {"official": "dinov2_vits14", "offline": "dinov2_vits14_offline",
                    "none": ""}


# the child finds this ``ml`` wherever the GUI was started from
_ML_ROOT = str(Path(ml.__file__).resolve().parents[1])
PROBE_CODE = ("import os, sys; getattr(os, 'nice', lambda n: 0)(10); "  # below the GUI's priority
              f"sys.path.insert(0, {_ML_ROOT!r}); "
              "from ml.device import describe_auto; print(describe_auto())")
PLAN_CODE = ("import os, sys; getattr(os, 'nice', lambda n: 0)(10); "
             f"sys.path.insert(0, {_ML_ROOT!r}); "
             "from ml.budget import main; sys.exit(main())")
BUDGETS = {"5 min": 300.0, "15 min": 900.0, "60 min": 3600.0, "until converged": None}
CPU_BUDGET, GPU_BUDGET = "15 min", "until converged"


def installed_backbones() -> dict[str, bool]:
    """Whether each backbone choice's weights are in the cache ("none" needs none)."""
    from ml.weights import list_status

    rows = {r.name: r.present for r in list_status(n for n in BACKBONE_WEIGHTS.values() if n)}
    return {k: (True if not name else rows.get(name, False))
            for k, name in BACKBONE_WEIGHTS.items()}


class TrainSettings(QWidget):
    """The fields the panel exposes; ``configs()`` builds the dataclasses from them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        s, t = StudentConfig(), TrainConfig()
        self.mode = QComboBox()
        self.mode.addItems(["bitfit", "frozen"])
        self.mode.setCurrentText(s.mode if s.mode in ("bitfit", "frozen") else "bitfit")
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 10000)
        self.epochs.setValue(t.epochs)
        self.input_size = QSpinBox()
        self.input_size.setRange(14, 14 * 200)
        self.input_size.setSingleStep(14)
        self.input_size.setValue(s.input_size)
        self.box_loss = QDoubleSpinBox()  # weight of the box-consistency loss; 0 = off
        self.box_loss.setRange(0.0, 10.0)
        self.box_loss.setSingleStep(0.1)
        self.box_loss.setValue(t.box_loss)
        self.box_loss.setSpecialValueText("off")
        self.box_loss.setToolTip("Also learn from the boxes themselves: each box's rows and "
                                 "columns hold a defect, similar neighbours agree, nothing "
                                 "outside boxes on fully boxed photos (0 = off)")
        self.device = QComboBox()
        self.device.addItems(["auto", "cuda", "cpu"])
        self.backbone = QComboBox()
        for name in BACKBONE_WEIGHTS:
            self.backbone.addItem(name, name)
        self.backbone.setCurrentIndex(self.backbone.findData(s.backbone_weights))
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Mode", self.mode)
        form.addRow("Epochs", self.epochs)
        form.addRow("Input size", self.input_size)
        form.addRow("Box loss", self.box_loss)
        form.addRow("Device", self.device)
        form.addRow("Backbone weights", self.backbone)
        self.budget = QComboBox()
        for name, seconds in BUDGETS.items():
            self.budget.addItem(name, seconds)
        self.budget.setCurrentText(CPU_BUDGET)  # safe on any device until the probe says more
        self.budget.setToolTip("Wall-clock time to train in: picks mode, input size and epochs")
        self.plan_label = QLabel("")
        self.plan_label.setWordWrap(True)
        form.insertRow(0, "Budget", self.budget)
        form.insertRow(1, "", self.plan_label)
        self.refresh_backbones()
        self._probe: QProcess | None = None
        self._probed = False
        self.device_kind = ""  # "cpu" / "cuda" once the probe answered
        self.project_root: Path | None = None
        self.plan: TrainPlan | None = None
        self._planner: QProcess | None = None
        self._plan_key: tuple | None = None  # what the running or last plan was asked for
        self.budget.currentIndexChanged.connect(lambda _i: self.refresh_plan())
        self.device.currentIndexChanged.connect(lambda _i: self.refresh_plan())

    def showEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().showEvent(event)
        if not self._probed:  # torch loads slowly: look only once the form is on screen
            self._probed = True
            QTimer.singleShot(3000, self.probe)
        elif self.plan is None and self.project_root is not None:
            self.refresh_plan()  # e.g. the photos have masks to train on by now

    def probe(self) -> None:
        """Ask a child Python what ``auto`` finds, so torch never loads here for this."""
        if getattr(sys, "frozen", False):
            return
        proc = QProcess(self)
        proc.finished.connect(self._on_probe_done)
        proc.start(sys.executable, ["-c", PROBE_CODE])
        self._probe = proc

    def _on_probe_done(self, *_args) -> None:
        try:
            out = bytes(self._probe.readAllStandardOutput()).decode(errors="replace").strip()
        except RuntimeError:  # the form (and its QProcess) went away while torch loaded
            return
        self._on_device(out or "unknown (torch failed to load)")

    def refresh_backbones(self) -> None:
        for i, (name, ok) in enumerate(installed_backbones().items()):
            label = {"none": "none (random init)"}.get(name, name)
            self.backbone.setItemText(i, f"{label} — {'installed' if ok else 'not installed'}"
                                      if name != "none" else label)

    def _on_device(self, text: str) -> None:
        self.device.setItemText(0, f"auto → {text}")
        kind = "cuda" if text.startswith("cuda") else "cpu" if text.startswith("cpu") else ""
        if not kind or kind == self.device_kind:
            return
        self.device_kind = kind
        s, t = StudentConfig(), TrainConfig()
        if kind == "cuda":  # the paper's settings
            self.mode.setCurrentText(s.mode)
            self.input_size.setValue(s.input_size)
            self.epochs.setValue(t.epochs)
        else:  # a usable run in minutes until the plan is measured
            self.mode.setCurrentText("frozen")
            self.input_size.setValue(224)
            self.epochs.setValue(30)
        self.budget.blockSignals(True)
        self.budget.setCurrentText(GPU_BUDGET if kind == "cuda" else CPU_BUDGET)
        self.budget.blockSignals(False)
        self.refresh_plan()

    def set_project(self, root: Path | None) -> None:
        """Plan for this project's photos (re-planned when the budget or the device changes)."""
        self.project_root = Path(root) if root is not None else None
        self.refresh_plan()

    def budget_s(self) -> float | None:
        return self.budget.currentData()

    def _want(self) -> tuple:
        device = self.device.currentText().split(" ")[0]
        return (str(self.project_root), self.budget_s(), device)

    def refresh_plan(self) -> None:
        """Measure and plan the chosen budget in a child Python; the answer fills the form."""
        self.plan = None
        self._set_fields_enabled(True)
        if self.project_root is None or getattr(sys, "frozen", False):
            self.plan_label.setText("")
            return
        key = self._want()
        self._plan_key = key
        args = [str(self.project_root), "--device", key[2]]
        if key[1] is not None:
            args += ["--budget", f"{key[1]:g}s"]
        self.plan_label.setText("planning: timing a training step on this machine…")
        if self._planner is not None and self._planner.state() != QProcess.ProcessState.NotRunning:
            self._planner.kill()  # its answer is for another choice
        proc = QProcess(self)
        proc.finished.connect(lambda *_a, p=proc, k=key: self._on_plan_done(p, k))
        proc.start(sys.executable, ["-c", PLAN_CODE, *args])
        self._planner = proc

    def _on_plan_done(self, proc: QProcess, key: tuple) -> None:
        try:
            out = bytes(proc.readAllStandardOutput()).decode(errors="replace").strip()
        except RuntimeError:  # the form went away while the child measured
            return
        self.on_plan_json(out.splitlines()[-1] if out else "{}", key)

    def on_plan_json(self, line: str, key: tuple | None = None) -> None:
        """Show a plan line of ``python -m ml.budget``; a stale answer (other budget) is dropped."""
        if key is not None and key != self._plan_key:
            return
        try:
            d = json.loads(line)
        except ValueError:
            d = None
        if not isinstance(d, dict) or "error" in d or "mode" not in d:
            why = d.get("error") if isinstance(d, dict) else None
            self.plan_label.setText(f"no plan: {why or 'the planner gave no answer'}")
            return
        plan = TrainPlan.from_dict(d)
        if plan.budget_s != self.budget_s():
            return
        self.plan = plan
        self.mode.setCurrentText(plan.mode)
        self.input_size.setValue(plan.input_size)
        self.epochs.setValue(plan.epochs)
        self._set_fields_enabled(False)  # the budget drives them now
        self.plan_label.setText(d.get("text") or plan.describe())

    def _set_fields_enabled(self, on: bool) -> None:
        for w in (self.mode, self.input_size, self.epochs):
            w.setEnabled(on)

    def configs(self, num_classes: int) -> tuple[StudentConfig, TrainConfig]:
        size = max(14, round(self.input_size.value() / 14) * 14)
        student = StudentConfig(num_classes=num_classes, mode=self.mode.currentText(),
                                input_size=size,
                                backbone_weights=self.backbone.currentData())
        cfg = TrainConfig(epochs=self.epochs.value(),
                          device=self.device.currentText().split(" ")[0],
                          box_loss=float(self.box_loss.value()))
        if self.plan is not None:  # the budget's plan, recorded in the model card
            student, cfg = apply_plan(self.plan, student, cfg)
        return student, cfg
