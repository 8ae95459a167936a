"""Architecture rules from STYLE.md that a test can hold."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUI_MODULES = {"PySide6", "PyQt5", "PyQt6", "qtpy", "napari", "superqt", "magicgui", "qtawesome"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def test_ml_never_imports_qt_or_napari():
    offenders = {str(p.relative_to(ROOT)): sorted(_imports(p) & GUI_MODULES)
                 for p in (ROOT / "ml").rglob("*.py") if _imports(p) & GUI_MODULES}
    assert offenders == {}


def test_ml_never_imports_app():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "ml").rglob("*.py")
                 if "app" in _imports(p)]
    assert offenders == []


def test_cli_help_does_not_load_torch_or_qt():
    code = ("import sys; from app.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'napari', 'PySide6', 'timm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True).stdout.strip()
    assert out == "[]"


def test_prediction_does_not_load_training_code():
    code = ("import sys, ml.predict; "
            "print(sorted(m for m in ('ml.train', 'ml.data', 'ml.losses', 'cv2') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True).stdout.strip()
    assert out == "[]"
