"""The README's screenshots, made from real drone photos (the ILIAD wind-turbine set, CC BY 4.0).

    .venv/bin/python docs/screenshots.py ../shared/data/iliad_wind_turbine --out docs/img \\
        [--n 8] [--epochs 3]

Builds a throw-away project outside the repository from the first ``n`` photos and their YOLO
boxes, pseudo-labels them with GrabCut, trains a small frozen-backbone student on the CPU,
predicts, then starts the app on it once per screen size (:data:`SIZES`), each in its own Xvfb
screen of that size (``xvfb-run``; openbox as the window manager when installed), as a person
starts it the first time: maximised, the docks as placed for that size. It opens the photo with
the most boxes and saves the main window (``main_window.png`` at 1920 × 1080,
``main_window_1366x768.png`` at 1366 × 768) and, at the large size, the Findings and Metadata
docks, and prints each size's canvas share and Findings rows. Every step is the same ``ml``
call the CLI makes; the photos are linked, never copied into the repository.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = {"1920x1080": "main_window.png", "1366x768": "main_window_1366x768.png"}
PANELS_AT = "1920x1080"  # the docks' own pictures are taken at this size


def linked_project(data: Path, work: Path, n: int):
    """A project over the first ``n`` boxed ILIAD photos (linked, not copied) and their boxes."""
    from ml.common.classes import make_classes
    from ml.datasets.importers import import_yolo
    from ml.project.store import Project

    photos, labels = work / "photos", work / "labels"
    photos.mkdir(parents=True)
    labels.mkdir()
    boxed = [p for p in sorted((data / "labels").glob("*.txt")) if p.read_text().strip()]
    for lab in boxed[:n]:
        img = next((data / "images").glob(lab.stem + ".*"))
        (photos / img.name).symlink_to(img.resolve())
        (labels / lab.name).symlink_to(lab.resolve())
    project = Project.create(work / "project", photos, make_classes(["damage"]))
    import_yolo(project, labels)
    return project


def build_project(data: Path, work: Path, n: int, epochs: int) -> tuple[object, str]:
    """A project over ``n`` linked photos with boxes, teacher and student masks, and its model."""
    from ml.metadata.values import set_values
    from ml.prediction.batch_predict import predict_project
    from ml.student.config import StudentConfig, TrainConfig
    from ml.teachers import make_teacher
    from ml.teachers.pseudo_label import pseudo_label_project
    from ml.training.trainer import train

    project = linked_project(data, work, n)
    # what a person would type in the Metadata dock; the set names the DTU Nordtank turbine
    set_values(project, project.keys(), turbine="Nordtank")
    pseudo_label_project(project, make_teacher("grabcut"))
    model = project.models_dir() / "readme"
    train(project, model, StudentConfig(num_classes=project.num_classes, mode="frozen"),
          TrainConfig(epochs=epochs, batch_size=4, patience=epochs))
    predict_project(project, model)
    return project, str(model)


def grab(widget, path: Path) -> None:
    from qtpy.QtWidgets import QApplication

    QApplication.processEvents()
    widget.grab().save(str(path))
    print(f"  {path}")


def shoot(project_root: Path, out: Path, size: str) -> int:
    """In an Xvfb screen of ``size``: start the app on the project as on a first start, show the
    photo with the most boxes and save the window (and, at :data:`PANELS_AT`, two docks)."""
    from qtpy.QtWidgets import QApplication

    from app.gui import Startup
    from app.gui._layout_report import layout_report

    wm = None
    if shutil.which("openbox"):
        wm = subprocess.Popen(["openbox"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
    try:
        ins = Startup(project_root).finish()
        ins.quiet = True
        project = ins.project
        key = max(project.keys(), key=lambda k: len(project.record(k).boxes))
        ins.show_key(key)
        for _ in range(40):
            QApplication.processEvents()
            time.sleep(0.05)
        rep = layout_report(ins)  # brings each dock to the front once, then the first tabs back
        for _ in range(10):
            QApplication.processEvents()
        grab(ins.viewer.window._qt_window, out / SIZES[size])
        print(f"  {size}: {rep.summary()}")
        if size == PANELS_AT:
            for name, attr in (("findings", "findings"), ("metadata", "metadata")):
                grab(getattr(ins, attr), out / f"{name}_panel.png")
        ins.shutdown()
        ins.viewer.close()
    finally:
        if wm is not None:
            wm.terminate()
    return 0


def shoot_in_xvfb(project_root: Path, out: Path, size: str, config: Path) -> None:
    """:func:`shoot` in a child process on its own Xvfb screen, with fresh settings (a first
    start: maximised, the docks as placed for the screen's size)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CONFIG_HOME": str(config / size)}
    env.pop("DISPLAY", None)
    cmd = ["xvfb-run", "-a", "-s", f"-screen 0 {size}x24", sys.executable, __file__,
           "--shoot", str(project_root), "--size", size, "--out", str(out.resolve())]
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, nargs="?",
                    help="the iliad_wind_turbine folder (images/, labels/)")
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--shoot", type=Path, help=argparse.SUPPRESS)  # the child: a project folder
    ap.add_argument("--size", default="1920x1080", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    if a.shoot is not None:
        return shoot(a.shoot, a.out, a.size)
    if a.data is None:
        ap.error("the iliad_wind_turbine folder is needed")
    if shutil.which("xvfb-run") is None:
        ap.error("xvfb-run is needed (apt-get install xvfb); openbox is used when installed")
    with tempfile.TemporaryDirectory(prefix="b2p-shots-") as tmp:
        project, _ = build_project(a.data, Path(tmp), a.n, a.epochs)
        for size in SIZES:
            shoot_in_xvfb(project.root, a.out, size, Path(tmp) / "config")
    return 0


if __name__ == "__main__":
    sys.exit(main())
