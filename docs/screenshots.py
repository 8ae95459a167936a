"""The README's screenshots, made from real drone photos (the ILIAD wind-turbine set, CC BY 4.0).

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python docs/screenshots.py \\
        ../shared/data/iliad_wind_turbine --out docs/img [--n 8] [--epochs 3]

Builds a throw-away project outside the repository from the first ``n`` photos and their YOLO
boxes, pseudo-labels them with GrabCut, trains a small frozen-backbone student on the CPU,
predicts, then opens the app on the photo with the most boxes and saves the main window and
the Findings and Metadata docks as PNGs. Every step is the same ``ml`` call the CLI makes;
the photos are linked, never copied into the repository.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build_project(data: Path, work: Path, n: int, epochs: int) -> tuple[object, str]:
    """A project over ``n`` linked photos with boxes, teacher and student masks, and its model."""
    from ml.prediction.batch_predict import predict_project
    from ml.common.classes import make_classes
    from ml.student.config import StudentConfig, TrainConfig
    from ml.datasets.importers import import_yolo
    from ml.metadata.values import set_values
    from ml.teachers.pseudo_label import pseudo_label_project
    from ml.project.store import Project
    from ml.teachers import make_teacher
    from ml.training.trainer import train

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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="the iliad_wind_turbine folder (images/, labels/)")
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=3)
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="b2p-shots-") as tmp:
        project, _ = build_project(a.data, Path(tmp), a.n, a.epochs)
        import napari
        from qtpy.QtWidgets import QApplication

        from app.gui import Inspector

        viewer = napari.Viewer(show=True)
        win = viewer.window._qt_window
        win.resize(1600, 1000)
        ins = Inspector(viewer)
        ins.quiet = True
        ins.open_project(project.root)
        key = max(project.keys(), key=lambda k: len(project.record(k).boxes))
        ins.show_key(key)
        for _ in range(20):
            QApplication.processEvents()
        grab(win, a.out / "main_window.png")
        for name, attr in (("findings", "findings"), ("metadata", "metadata")):
            panel = getattr(ins, attr, None)
            if panel is not None:
                grab(panel, a.out / f"{name}_panel.png")
        ins.shutdown()
        viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
