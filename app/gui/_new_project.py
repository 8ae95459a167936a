"""Open folder: a folder of photos without a project is offered one, with its labels imported.

:func:`offer_project` says how many photos the folder holds and which box labels were found
beside them (``ml.datasets.project_start.find_labels``), and asks where the project goes: into the
photo folder (the default, as ``b2p init FOLDER`` and ``b2p gui FOLDER`` do) or another folder. The
Inspector then runs ``ml.datasets.project_start.start_project`` as a job and opens the new project
on its first photo.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qtpy.QtWidgets import QFileDialog, QMessageBox, QWidget

from app.gui import _constants as C
from ml.common.images import list_images
from ml.datasets.project_start import FoundLabels, find_labels
from ml.project.store import is_project

CREATE_HERE = "Create here"
CHOOSE_FOLDER = "Choose another folder…"


@dataclass(frozen=True)
class NewProject:
    """The person's answer: photos, where the project goes, the labels to import (or None)."""

    photos: Path
    root: Path
    labels: FoundLabels | None


def offer_project(parent: QWidget | None, photos: str | Path) -> NewProject | None:
    """Ask whether and where to start a project over ``photos``; None when not."""
    photos = Path(photos).resolve()
    n = len(list_images(photos))
    if n == 0:
        QMessageBox.information(parent, C.APP_TITLE, f"No photos found in {photos}.")
        return None
    found = find_labels(photos)
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle(f"New project — {C.APP_TITLE}")
    box.setText(f"“{photos.name}” holds {n} photo(s) and no project yet. Start one?")
    box.setInformativeText(_details(photos, found))
    here = box.addButton(CREATE_HERE, QMessageBox.ButtonRole.AcceptRole)
    elsewhere = box.addButton(CHOOSE_FOLDER, QMessageBox.ButtonRole.ActionRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(here)
    box.exec()
    clicked = box.clickedButton()
    if clicked is here:
        root = photos
    elif clicked is elsewhere:
        root = _ask_folder(parent, photos)
        if root is None:
            return None
    else:
        return None
    return NewProject(photos, root, found[0] if found else None)


def _details(photos: Path, found: list[FoundLabels]) -> str:
    lines = [f"The project's files (boxes, masks, models) go into {photos}, or into another "
             f"folder you choose."]
    if found:
        lines.append(f"Boxes will be imported from the {found[0].describe()}.")
        if len(found) > 1:
            lines.append("Also found, not imported (use b2p import): "
                         + "; ".join(f.describe() for f in found[1:]))
    else:
        lines.append("No YOLO or COCO labels were found beside the photos.")
    return "\n\n".join(lines)


def _ask_folder(parent: QWidget | None, photos: Path) -> Path | None:
    chosen = QFileDialog.getExistingDirectory(parent, "Folder for the new project",
                                              str(photos.parent))
    if not chosen:
        return None
    root = Path(chosen).resolve()
    if is_project(root):
        QMessageBox.warning(parent, C.APP_TITLE, f"{root} already holds a project; open it "
                            "with Open folder, or choose an empty folder.")
        return None
    return root
