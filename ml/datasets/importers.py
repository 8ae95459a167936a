"""Bring boxes into a project from YOLO txt, COCO JSON, or a folder of ground-truth masks.

Only boxes enter the project: masks given to :func:`import_masks` are reduced to one box per
connected component and then forgotten, so every later result stays box-supervised.

Every importer first reads and checks everything (each bad line or annotation is skipped with
a warning naming it), then applies all boxes in one batch: a failure never leaves half an
import in the project, and a stop request imports nothing. One module each:
:mod:`ml.datasets.import_yolo`, :mod:`ml.datasets.import_coco` and
:mod:`ml.datasets.import_masks`, sharing :mod:`ml.datasets.import_common`.
"""

from ml.datasets.import_coco import import_coco
from ml.datasets.import_common import (
    NO_LABELS,
    ImportReport,
    ImportResult,
    clip_box,
    parse_class_map,
)
from ml.datasets.import_masks import import_masks, read_dataset_classes
from ml.datasets.import_yolo import import_yolo, yolo_label_file

__all__ = ["NO_LABELS", "ImportReport", "ImportResult", "clip_box", "import_coco",
           "import_masks", "import_yolo", "parse_class_map", "read_dataset_classes",
           "yolo_label_file"]
