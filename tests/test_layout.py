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
    code = ("import sys, ml.prediction.predict; "
            "print(sorted(m for m in ('ml.training.trainer', 'ml.training.data', "
            "'ml.training.losses', 'cv2') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True).stdout.strip()
    assert out == "[]"


def _module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _local_imports(path: Path, known: set[str], root: Path = ROOT) -> set[str]:
    """Our modules that ``path`` imports anywhere (functions too), less type-only imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = _module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    type_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                 and ast.unparse(node.test).endswith("TYPE_CHECKING")
                 for n in ast.walk(node)}
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only or not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([node.module] if node.module else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            # a module's own parent packages load anyway: not an edge of the import graph
            if name and name != me and not me.startswith(name + "."):
                out.add(name)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while (w := stack.pop()) != v:
                comp.append(w)
            if comp:
                found.append(sorted([v, *comp]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_even_through_imports_inside_functions():
    """An import moved into a function to break a cycle still shows up here as the cycle."""
    files = [p for pkg in ("ml", "app") for p in (ROOT / pkg).rglob("*.py")]
    known = {_module_name(p) for p in files}
    graph = {_module_name(p): _local_imports(p, known) for p in files}
    assert _cycles(graph) == []


# The rows of docs/ARCHITECTURE.md: a package of ml/ imports its own row or lower rows only, and
# two packages of one row never import each other. Imports under ``if TYPE_CHECKING:`` are left
# out (annotations only, never run); every other import counts, inside functions too.
ROWS = {
    "common": 1,
    "project": 2,
    "weights": 3, "student": 3, "teachers": 3, "datasets": 3, "metadata": 3, "evaluation": 3,
    "prediction": 4,
    "training": 5, "campaign": 5, "findings": 5,
}


def _package_edges(files: list[Path], root: Path = ROOT) -> set[tuple[str, str]]:
    """(importing package, imported package) of ml/ for every import between two packages."""
    known = {_module_name(p, root) for p in files}
    edges = set()
    for p in files:
        me = _module_name(p, root).split(".")
        for name in _local_imports(p, known, root):
            other = name.split(".")
            if len(me) > 2 and other[0] == "ml" and len(other) > 1 and other[1] != me[1]:
                edges.add((me[1], other[1]))
    return edges


def _row_offences(edges: set[tuple[str, str]]) -> list[str]:
    bad = [f"ml.{a} (row {ROWS.get(a)}) imports ml.{b} (row {ROWS.get(b)})"
           for a, b in sorted(edges) if a not in ROWS or b not in ROWS or ROWS[b] > ROWS[a]]
    bad += [f"ml.{a} and ml.{b} import each other" for a, b in sorted(edges)
            if a < b and (b, a) in edges]
    return bad


def test_ml_packages_import_only_their_row_or_lower():
    files = list((ROOT / "ml").rglob("*.py"))
    assert {p.parent.name for p in files if p.parent.parent == ROOT / "ml"} == set(ROWS)
    assert [p.name for p in (ROOT / "ml").glob("*.py")] == ["__init__.py"]  # no loose modules
    assert _row_offences(_package_edges(files)) == []


def test_row_check_catches_an_upward_import(tmp_path):
    """A planted import from a lower row up to training, and a mutual pair, are both caught."""
    pkg = tmp_path / "ml"
    for sub, text in {"common": "from ml.training import trainer\n",
                      "training": "from ml.common import progress\n",
                      "weights": "from ml.student import config\n",
                      "student": "import ml.weights\n"}.items():
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
        (pkg / sub / "mod.py").write_text(text)
    for name in ("training/trainer.py", "common/progress.py", "student/config.py"):
        (pkg / name).write_text("")
    (pkg / "__init__.py").write_text("")
    offences = _row_offences(_package_edges(list(pkg.rglob("*.py")), root=tmp_path))
    assert offences == ["ml.common (row 1) imports ml.training (row 5)",
                        "ml.common and ml.training import each other",
                        "ml.student and ml.weights import each other"]


def test_no_module_over_400_lines():
    """A module that grows past 400 lines is holding more than one job: split it."""
    long = {str(p.relative_to(ROOT)): n for pkg in ("ml", "app") for p in (ROOT / pkg).rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert long == {}
