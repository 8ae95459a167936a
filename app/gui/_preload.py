"""Load torch in the GUI process safely, on the GUI thread, before a job needs it.

torchvision pulls in torch._dynamo, which imports triton when it is installed. In the GUI
process that segfaulted while loading triton's native library (it bundles its own LLVM, and the
OpenGL driver napari uses, Mesa llvmpipe, has already loaded another). The GUI never compiles
kernels (training runs in the worker process), so triton is hidden here: torch then reports
"no triton" and carries on. The first torch job pays a one-off import with a busy cursor.
"""

from __future__ import annotations

import sys

_MODULES = ("torch", "torchvision", "timm")


def torch_loaded() -> bool:
    return all(m in sys.modules for m in _MODULES)


def preload_torch(extra: tuple[str, ...] = ()) -> None:
    """Import torch and friends (and ``extra`` modules) now, on the calling thread."""
    import importlib

    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QApplication

    todo = [m for m in (*_MODULES, *extra) if m not in sys.modules]
    if not todo:
        return
    if "torch" not in sys.modules:
        sys.modules.setdefault("triton", None)  # type: ignore[assignment]  # see module doc
    QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
    try:
        for m in todo:
            importlib.import_module(m)
    finally:
        QApplication.restoreOverrideCursor()
