"""Weights dialog: what is installed, download with progress and cancel, import from a file."""

from __future__ import annotations

from qtpy.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui._jobs import Job
from app.gui._progress_panel import ProgressPanel
from app.gui._resources import icon


def _download(name: str, progress=None, should_stop=None):
    from ml.weights import download

    return download(name, progress, should_stop)


def _import(name: str, path: str, progress=None, should_stop=None):
    from ml.weights import import_file

    return import_file(name, path, progress=progress)


def _size(n: int) -> str:
    return f"{n / 1e6:.0f} MB" if n else ""


class WeightsDialog(QDialog):
    """Lists ml.weights.list_status(); one download or import at a time."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Pretrained weights")
        self.resize(720, 320)
        self.job: Job | None = None
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Name", "Status", "Description"])
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.download_btn = QPushButton(icon("fa5s.download"), "Download")
        self.download_btn.clicked.connect(lambda: self.download())
        self.import_btn = QPushButton(icon("fa5s.file-import"), "Import file…")
        self.import_btn.clicked.connect(lambda: self.import_file())
        self.progress = ProgressPanel()
        row = QHBoxLayout()
        row.addWidget(self.download_btn)
        row.addWidget(self.import_btn)
        row.addStretch(1)
        lay = QVBoxLayout(self)
        lay.addWidget(self.table)
        lay.addLayout(row)
        lay.addWidget(self.progress)
        self.refresh()

    def refresh(self) -> None:
        from ml.weights import list_status

        rows = list_status()
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            status = f"installed {_size(r.size)}" if r.present else "not installed"
            for j, text in enumerate((r.name, status, r.description)):
                item = QTableWidgetItem(text)
                item.setToolTip(str(r.path))
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()
        if rows and self.table.currentRow() < 0:
            self.table.selectRow(0)

    def selected(self) -> str | None:
        row = self.table.currentRow()
        return self.table.item(row, 0).text() if row >= 0 else None

    def status_of(self, name: str) -> str:
        for i in range(self.table.rowCount()):
            if self.table.item(i, 0).text() == name:
                return self.table.item(i, 1).text()
        return ""

    def download(self, name: str | None = None) -> Job | None:
        name = name or self.selected()
        return self._run(Job(f"download {name}", _download, name)) if name else None

    def import_file(self, name: str | None = None, path: str | None = None) -> Job | None:
        name = name or self.selected()
        if not name:
            return None
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, f"Weights file for {name}")
            if not path:
                return None
        return self._run(Job(f"import {name}", _import, name, path))

    def _run(self, job: Job) -> Job:
        if self.job is not None and self.job.is_running():
            raise RuntimeError("a download or import is already running")
        self.job = job
        self.progress.attach(job)
        job.finished.connect(self._finished)
        self.download_btn.setEnabled(False)
        self.import_btn.setEnabled(False)
        job.start()
        return job

    def _finished(self) -> None:
        self.download_btn.setEnabled(True)
        self.import_btn.setEnabled(True)
        self.refresh()

    def reject(self) -> None:  # closing the dialog cancels a running download
        if self.job is not None and self.job.is_running():
            self.job.cancel()
        super().reject()
