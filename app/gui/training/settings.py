"""Training settings form: defaults that follow the device, a wall-clock budget, the plan.

On a CPU the default is a 15 min budget, planned by ``ml.training.budget`` (frozen backbone and
feature cache, the input size and epochs that fit); on a GPU it is the paper's settings, trained
until converged. One child process, :mod:`app.workers.plan` (torch never loads in the GUI for
it), takes the form's configs, measures this machine once and plans every budget choice, the
chosen one first; its expected duration ("about 14 min on this
CPU") is shown before Start, and switching the budget shows that budget's plan at once. A plan
drives mode, input size and epochs; the form holds no planning logic of its own.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from qtpy.QtCore import QProcess, QTimer
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QWidget,
)

import ml
from app.gui import _constants as C
from app.gui.training.process import worker_command, worker_environment
from ml.student.config import StudentConfig, TrainConfig, nearest_input_size
from ml.training.budget import CONVERGED, TrainPlan, apply_plan

BACKBONE_WEIGHTS = {"official": "dinov2_vits14", "offline": "dinov2_vits14_offline",
                    "none": ""}


# the child finds this ``ml`` wherever the GUI was started from
_ML_ROOT = str(Path(ml.__file__).resolve().parents[1])
PROBE_CODE = ("import os, sys; getattr(os, 'nice', lambda n: 0)(10); "  # below the GUI's priority
              f"sys.path.insert(0, {_ML_ROOT!r}); "
              "from ml.common.device import describe_auto; print(describe_auto())")
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
        self.mode.setToolTip("frozen: the backbone stays fixed and its features are computed "
                             "once (feature cache); only the decoder trains: the fast choice "
                             "on a CPU. bitfit: the paper's, also trains the backbone's biases")
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
        self.members = QSpinBox()  # decoders trained side by side, probabilities averaged
        self.members.setRange(1, 8)
        self.members.setValue(s.members)
        self.members.setToolTip("Decoders trained side by side on the one backbone, each "
                                "leaving out its own fifth of the photos; their masks are "
                                "averaged. Each costs about one more training pass")
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
        form.addRow("Members", self.members)
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
        self.plan: TrainPlan | None = None  # the chosen budget's plan, applied to the form
        self._planner: QProcess | None = None
        self._plan_buf = b""
        self._plan_ctx: tuple | None = None  # what the plans at hand are for: _context()
        self._plans: dict[float | None, TrainPlan | str] = {}  # budget -> plan or why none
        self._plan_error: str | None = None  # why no budget has a plan (e.g. no masks yet)
        self.budget.currentIndexChanged.connect(lambda _i: self.refresh_plan())
        self.device.currentIndexChanged.connect(lambda _i: self.refresh_plan())
        self.box_loss.valueChanged.connect(lambda _v: self.refresh_plan())  # its terms cost time
        self.members.valueChanged.connect(lambda _v: self.refresh_plan())  # so does each decoder

    def showEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().showEvent(event)
        if not self._probed:  # torch loads slowly: look only once the form is on screen
            self._probed = True
            QTimer.singleShot(3000, self.probe)
        else:
            self.replan_if_missing()  # e.g. the photos have masks to train on by now

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
        if root is None:  # nothing to plan for: forget the last project's plans
            self._stop_planner()
            self._plan_ctx, self._plans, self._plan_error = None, {}, None
        self.refresh_plan(force=True)

    def budget_s(self) -> float | None:
        return self.budget.currentData()

    def _context(self) -> tuple:
        """What a plan depends on: the project, the device, whether the box terms run and
        how many decoders train."""
        return (str(self.project_root), self.device.currentText().split(" ")[0],
                self.box_loss.value() > 0, self.members.value())

    def planning(self) -> bool:
        p = self._planner
        return p is not None and p.state() != QProcess.ProcessState.NotRunning

    def refresh_plan(self, force: bool = False) -> None:
        """Show the chosen budget's plan; ask the planner when the plans at hand are for
        another project, device, box-loss or members setting (or ``force``: the photos
        changed)."""
        self.plan = None
        self._set_fields_enabled(True)
        if self.project_root is not None:
            ctx = self._context()
            if force or ctx != self._plan_ctx:
                self._start_planner(ctx)
        elif not self._plans and self._plan_error is None:
            self._set_plan_text("")
            return
        self._show_plan()

    def replan_if_missing(self) -> None:
        """Plan again when no plan was possible before for a reason that may be gone now
        (no photos with masks yet, a planner that failed); a too-short budget stays refused."""
        if self.project_root is None or self.planning():
            return
        if not isinstance(self._plans.get(self.budget_s()), (TrainPlan, str)):
            self.refresh_plan(force=True)

    def _start_planner(self, ctx: tuple) -> None:
        """One child process plans every budget choice, the chosen one first, for the form's
        configs."""
        self._stop_planner()  # its answers are for another project or device, or stale
        self._plan_ctx, self._plans, self._plan_error, self._plan_buf = ctx, {}, None, b""
        chosen = self.budget_s()
        budgets = [chosen, *(b for b in BUDGETS.values() if b != chosen)]
        student, cfg = self.base_configs(StudentConfig().num_classes)  # the planner counts them
        args = [ctx[0], "--student", json.dumps(student.to_dict()),
                "--train", json.dumps(cfg.to_dict()), "--nice", str(C.WORKER_NICE)]
        for b in budgets:
            args += ["--budget", CONVERGED if b is None else f"{b:g}s"]
        proc = QProcess(self)
        proc.setProcessEnvironment(worker_environment())
        proc.readyReadStandardOutput.connect(lambda p=proc: self._read_plans(p))
        proc.finished.connect(lambda *_a, p=proc: self._on_plans_done(p))
        proc.finished.connect(proc.deleteLater)
        self._planner = proc
        cmd = worker_command(args, "plan")
        proc.start(cmd[0], cmd[1:])

    def _stop_planner(self) -> None:
        if self.planning():
            self._planner.kill()
        self._planner = None  # a killed one's last signals are dropped: it is no longer ours

    def _read_plans(self, proc: QProcess, final: bool = False) -> None:
        if proc is not self._planner:  # a planner replaced (and killed) since
            return
        try:
            data = bytes(proc.readAllStandardOutput())
        except RuntimeError:  # the form (and its QProcess) went away while the child measured
            return
        self._plan_buf += data
        *lines, self._plan_buf = self._plan_buf.split(b"\n")
        if final:
            lines, self._plan_buf = [*lines, self._plan_buf], b""
        for raw in lines:
            if raw.strip():
                self.on_plan_json(raw.decode(errors="replace"))

    def _on_plans_done(self, proc: QProcess) -> None:
        if proc is not self._planner:
            return
        try:
            self._read_plans(proc, final=True)
            self._planner = None  # deleted later by Qt
            if self.budget_s() not in self._plans:
                self._plan_error = self._plan_error or "the planner gave no answer"
                self._show_plan()
        except RuntimeError:  # the form went away (killing the child) while it measured
            return

    def on_plan_json(self, line: str, ctx: tuple | None = None) -> None:
        """Take one line of :mod:`app.workers.plan`: a budget's plan or error, or an error for
        all; answers for another project or device (``ctx``) are dropped."""
        if ctx is not None and ctx != self._plan_ctx:
            return
        try:
            d = json.loads(line)
        except ValueError:
            d = None
        if isinstance(d, dict) and "mode" in d and "error" not in d:
            plan = TrainPlan.from_dict(d)
            self._plans[plan.budget_s] = plan
        elif isinstance(d, dict) and "budget_s" in d:
            self._plans[d["budget_s"]] = str(d.get("error") or "no plan for this budget")
        else:
            why = d.get("error") if isinstance(d, dict) else None
            self._plan_error = str(why or "the planner gave no answer")
        self._show_plan()

    def _show_plan(self) -> None:
        """The chosen budget's plan on the form, or why there is none (yet)."""
        got = self._plans.get(self.budget_s())
        if not isinstance(got, TrainPlan):
            self.plan = None
            self._set_fields_enabled(True)
            why = got if isinstance(got, str) else self._plan_error
            if why is None and not self.planning():
                why = "the planner gave no answer"
            self._set_plan_text(f"no plan: {why}" if why else
                                "planning: timing a training step on this machine…")
            return
        self.plan = got
        self.mode.setCurrentText(got.mode)
        self.input_size.setValue(got.input_size)
        self.epochs.setValue(got.epochs)
        self._set_fields_enabled(False)  # the budget drives them now
        self._set_plan_text(f"{got.about()}\n{got.describe()}")
        self.plan_label.setToolTip(got.reason)  # why this scale: the project's thin defects

    def _set_plan_text(self, text: str) -> None:
        # a crowded dock squeezes a wrapped label to one line; keep each line of the plan (the
        # expected time is what a person reads before Start)
        self.plan_label.setText(text)
        lines = text.count("\n") + 1
        self.plan_label.setMinimumHeight(lines * self.plan_label.fontMetrics().lineSpacing() + 2)

    def _set_fields_enabled(self, on: bool) -> None:
        for w in (self.mode, self.input_size, self.epochs):
            w.setEnabled(on)

    def base_configs(self, num_classes: int) -> tuple[StudentConfig, TrainConfig]:
        """The form's settings, before any plan (what the planner plans)."""
        student = StudentConfig(num_classes=num_classes, mode=self.mode.currentText(),
                                input_size=nearest_input_size(self.input_size.value()),
                                backbone_weights=self.backbone.currentData(),
                                members=self.members.value())
        cfg = TrainConfig(epochs=self.epochs.value(),
                          device=self.device.currentText().split(" ")[0],
                          box_loss=float(self.box_loss.value()))
        return student, cfg

    def configs(self, num_classes: int) -> tuple[StudentConfig, TrainConfig]:
        """The run's configs: the form's, with the chosen budget's plan; ConfigError (its one
        line is what the panel shows) for settings out of range."""
        student, cfg = self.base_configs(num_classes)
        if self.plan is not None:  # the budget's plan, recorded in the model card
            student, cfg = apply_plan(self.plan, student, cfg)
        return student.check(), cfg.check()
