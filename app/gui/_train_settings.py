"""Training settings form: paper defaults, with what device and backbone weights were found."""

from __future__ import annotations

import sys
from pathlib import Path

from qtpy.QtCore import QProcess, QTimer
from qtpy.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QSpinBox, QWidget

import ml
from ml.config import StudentConfig, TrainConfig

BACKBONE_WEIGHTS = {"official": "dinov2_vits14", "offline": "dinov2_vits14_offline",
                    "none": ""}


# the child finds this ``ml`` wherever the GUI was started from
_ML_ROOT = str(Path(ml.__file__).resolve().parents[1])
PROBE_CODE = ("import os, sys; getattr(os, 'nice', lambda n: 0)(10); "  # below the GUI's priority
              f"sys.path.insert(0, {_ML_ROOT!r}); "
              "from ml.device import describe_auto; print(describe_auto())")


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
        self.refresh_backbones()
        self._probe: QProcess | None = None
        self._probed = False

    def showEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().showEvent(event)
        if not self._probed:  # torch loads slowly: look only once the form is on screen
            self._probed = True
            QTimer.singleShot(3000, self.probe)

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

    def configs(self, num_classes: int) -> tuple[StudentConfig, TrainConfig]:
        size = max(14, round(self.input_size.value() / 14) * 14)
        student = StudentConfig(num_classes=num_classes, mode=self.mode.currentText(),
                                input_size=size,
                                backbone_weights=self.backbone.currentData())
        cfg = TrainConfig(epochs=self.epochs.value(),
                          device=self.device.currentText().split(" ")[0],
                          box_loss=float(self.box_loss.value()))
        return student, cfg
