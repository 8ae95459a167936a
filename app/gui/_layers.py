"""The napari layers of the image on screen: photo, boxes, pseudo-mask, student, corrections.

The layers are made once and their data replaced when the image changes, so the user's layer
choices (visibility, opacity, tool) survive navigation. The photo and the student's mask are
pyramids (napari's multiscale layers, :mod:`app.gui._photo_cache`): napari draws only the part
on screen at full resolution, so changing a 12 MP photo costs a frame, not a 36 MB texture
upload. The pseudo-mask, which the person paints, stays one full-resolution layer.
``pyramid=False`` keeps single full-resolution layers, as before (the baseline of
``bench/review_latency.py``).
"""

from __future__ import annotations

import numpy as np
from napari.layers.base._base_constants import ActionType
from napari.utils.colormaps import DirectLabelColormap
from qtpy.QtCore import QObject, Signal

from app.gui import _constants as C
from app.gui._photo_cache import label_pyramid
from app.gui._photo_cache import pyramid as make_pyramid
from ml.common.classes import ClassInfo
from ml.evaluation.corrections import NAMES
from ml.project.records import box_problem
from ml.project.store import Box

FINISHED_ACTIONS = (ActionType.ADDED, ActionType.CHANGED, ActionType.REMOVED)


def box_to_rect(b: Box) -> np.ndarray:
    """A box as the 4 (row, col) corners napari uses for a rectangle."""
    return np.array([[b.y0, b.x0], [b.y0, b.x1], [b.y1, b.x1], [b.y1, b.x0]], dtype=float)


def rect_to_box(corners: np.ndarray, cls: int, width: int, height: int) -> Box | None:
    """The bounding box of a shape, clipped to the image; None when it has no area left."""
    pts = np.asarray(corners, dtype=float)[:, -2:]
    y0, x0 = np.clip(pts.min(0), 0, [height, width])
    y1, x1 = np.clip(pts.max(0), 0, [height, width])
    box = Box(float(x0), float(y0), float(x1), float(y1), int(cls))
    return box if box_problem(box) is None else None  # the store's rule (ml.project.records)


def _label_data(label: np.ndarray | None, size: tuple[int, int]) -> np.ndarray:
    """A writable uint8 label map for a Labels layer (masks read from PNG are read-only)."""
    if label is None:
        return np.zeros(size, np.uint8)
    return np.require(label, dtype=np.uint8, requirements=["W", "C"])


SMALL_PX = 1 << 21  # masks up to this many pixels are compared before they are sent again


def _set_visible(layer, visible: bool) -> None:
    if layer.visible != visible:
        layer.visible = visible


def class_colormap(classes: list[ClassInfo]) -> DirectLabelColormap:
    """Class id -> colour; background transparent."""
    d: dict = {None: np.zeros(4), 0: np.zeros(4)}
    for c in classes:
        if c.id:
            d[c.id] = np.array([*(v / 255 for v in c.rgb()), 1.0])
    return DirectLabelColormap(color_dict=d)


def corrections_colormap(shown: set[int]) -> DirectLabelColormap:
    """Correction code -> colour, transparent for codes toggled off."""
    d: dict = {None: np.zeros(4), 0: np.zeros(4)}
    for code, hexc in C.CORRECTION_COLORS.items():
        rgb = [int(hexc[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        d[code] = np.array([*rgb, 1.0 if code in shown else 0.0])
    return DirectLabelColormap(color_dict=d)


class ImageLayers(QObject):
    """Owns the five layers; emits when the person changes boxes or paints the pseudo-mask."""

    boxes_edited = Signal()
    mask_painted = Signal()

    def __init__(self, viewer, pyramid: bool = True) -> None:
        super().__init__()
        self.viewer = viewer
        self.pyramid = pyramid
        self.classes: list[ClassInfo] = []
        self.size = (0, 0)  # (height, width)
        self._loading = False
        self._blank: set[str] = set()  # label layers holding an untouched "no mask" (zeros)
        self._given: dict[str, np.ndarray] = {}  # the label each layer was last given
        self.corrections_shown = set(NAMES)
        z = np.zeros((1, 1), np.uint8)
        blank = np.zeros((2, 2, 3), np.uint8)  # a pyramid needs two sizes
        self.image = viewer.add_image(list(make_pyramid(blank)) if pyramid else blank,
                                      name=C.LAYER_IMAGE,
                                      rgb=True, multiscale=pyramid)
        self.teacher = viewer.add_labels(z, name=C.LAYER_TEACHER, opacity=C.TEACHER_OPACITY)
        self.student = viewer.add_labels(list(label_pyramid(np.zeros((2, 2), np.uint8)))
                                         if pyramid else z.copy(),
                                         name=C.LAYER_STUDENT, multiscale=pyramid,
                                         opacity=C.STUDENT_OPACITY, visible=False)
        self.corrections = viewer.add_labels(z.copy(), name=C.LAYER_CORRECTIONS,
                                             opacity=C.CORRECTIONS_OPACITY, visible=False)
        self.corrections.colormap = corrections_colormap(self.corrections_shown)
        self.boxes = viewer.add_shapes(
            name=C.LAYER_BOXES, ndim=2, shape_type="rectangle", edge_width=C.BOX_EDGE_WIDTH,
            face_color="transparent", features={"cls": np.zeros(0, int)})
        self.boxes.events.data.connect(self._on_boxes_data)
        self.teacher.events.paint.connect(self._on_paint)
        self.teacher.events.labels_update.connect(self._on_paint)
        self._assigning = False
        for layer in (self.teacher, self.student, self.corrections):
            layer.events.data.connect(lambda _e, n=layer.name: self._on_data(n))
        self.boxes.mode = "add_rectangle"
        viewer.layers.selection.active = self.boxes

    # ------------------------------------------------------------------ showing
    def set_classes(self, classes: list[ClassInfo]) -> None:
        self.classes = list(classes)
        cmap = class_colormap(self.classes)
        self.teacher.colormap = cmap
        self.student.colormap = class_colormap(self.classes)
        self.recolor_boxes()

    def show(self, image: np.ndarray | tuple[np.ndarray, ...], boxes: list[Box],
             teacher: np.ndarray | None, student: np.ndarray | None,
             corrections: np.ndarray | None) -> None:
        """Replace every layer's data for a new image (no save events are emitted).

        ``image``: the photo, or its pyramid already built (read ahead off the GUI thread).
        """
        levels = image if isinstance(image, tuple) else None
        h, w = (levels[0] if levels else image).shape[:2]
        new_size = (h, w) != self.size
        self.size = (h, w)
        self._loading = True
        try:
            if self.pyramid:
                self.image.data = list(levels or make_pyramid(image))
                self._put(self.teacher, teacher)  # an empty one is not sent again (12 MP)
            else:
                self.image.data = levels[0] if levels else image
                self.teacher.data = _label_data(teacher, (h, w))
            self.teacher._undo_history.clear()  # undo must not cross into another image
            self.teacher._redo_history.clear()
            self.set_prediction(student, corrections)
            self.set_boxes(boxes)
        finally:
            self._loading = False
        if new_size:
            self.viewer.reset_view()

    def _put(self, layer, label: np.ndarray | None) -> None:
        """Give a Labels layer ``label`` (None: no mask) unless it holds that already: each
        assignment makes napari refresh the layer, its thumbnail and the canvas, tens of ms
        for a 12 MP layer. An untouched empty layer stays; a small mask is compared first."""
        name = layer.name
        if label is None:
            if name in self._blank and layer.data.shape == self.size:
                return
            self._assign(layer, np.zeros(self.size, np.uint8))
            self._blank.add(name)
            return
        data = _label_data(label, self.size)
        old = self._given.get(name)
        if old is data or (name not in self._blank and old is not None
                           and old.shape == data.shape and data.size <= SMALL_PX
                           and np.array_equal(old, data)):
            return
        self._assign(layer, data)

    def _assign(self, layer, data: np.ndarray) -> None:
        self._assigning = True
        try:
            layer.data = list(label_pyramid(data)) if layer.multiscale else data
        finally:
            self._assigning = False
        self._blank.discard(layer.name)
        self._given[layer.name] = data

    def _on_data(self, name: str) -> None:
        """Someone else gave the layer data: what it holds is no longer known here."""
        if not self._assigning:
            self._blank.discard(name)
            self._given.pop(name, None)

    def set_prediction(self, student: np.ndarray | None, corrections: np.ndarray | None) -> None:
        self._put(self.student, student)
        self._put(self.corrections, corrections)
        # assigned only on change: napari re-sorts and redraws its scene on every assignment
        _set_visible(self.student, student is not None and self.student.visible)
        _set_visible(self.corrections, corrections is not None)

    def set_teacher(self, label: np.ndarray | None) -> None:
        """Show a new pseudo-mask without emitting a paint (a job or an undo wrote it)."""
        self._loading = True
        try:
            self._put(self.teacher, label)
        finally:
            self._loading = False

    def set_boxes(self, boxes: list[Box]) -> None:
        if not boxes and not len(self.boxes.data):  # nothing to change (napari: ms per call)
            return
        was, self._loading = self._loading, True
        try:
            self.boxes.selected_data = set()
            self.boxes.data = [box_to_rect(b) for b in boxes]
            self.boxes.features = {"cls": np.array([b.cls for b in boxes], dtype=int)}
            self.recolor_boxes()
        finally:
            self._loading = was

    def zoom_to(self, bbox: tuple[int, int, int, int], context: float = 2.0) -> None:
        """Centre the view on a pixel box (x0, y0, x1, y1), about ``context`` times its size
        shown. The zoom goes in steps of a quarter octave and is set only when it changes:
        each camera change re-draws every layer's transform."""
        x0, y0, x1, y1 = bbox
        shown = max((x1 - x0) * context, (y1 - y0) * context, C.ZOOM_MIN_PX)
        zoom = 2.0 ** (np.floor(4 * np.log2(min(self.viewer.canvas.size) / shown)) / 4)
        cam = self.viewer.camera
        if abs(cam.zoom - zoom) > 1e-9 * zoom:
            cam.zoom = zoom
        center = ((y0 + y1) / 2, (x0 + x1) / 2)
        if tuple(cam.center[-2:]) != center:
            cam.center = center

    def set_corrections_shown(self, shown: set[int]) -> None:
        self.corrections_shown = set(shown)
        self.corrections.colormap = corrections_colormap(self.corrections_shown)

    # ------------------------------------------------------------------ boxes
    def color_of(self, cls: int) -> str:
        for c in self.classes:
            if c.id == cls:
                return c.color
        return "#ffffff"

    def recolor_boxes(self) -> None:
        n = len(self.boxes.data)
        if n:
            cls = self.boxes.features["cls"].to_numpy()
            self.boxes.edge_color = [self.color_of(int(c)) for c in cls[:n]]

    def set_draw_class(self, cls: int) -> None:
        """Class given to boxes drawn from now on; also the brush value of the pseudo-mask."""
        self.boxes.feature_defaults["cls"] = cls
        self.boxes.current_edge_color = self.color_of(cls)
        self.teacher.selected_label = cls

    def reclass_selected(self, cls: int) -> bool:
        """Give the selected boxes class ``cls``; True when something changed."""
        sel = sorted(i for i in self.boxes.selected_data if i < len(self.boxes.data))
        if not sel:
            return False
        feats = self.boxes.features.copy()
        feats.loc[sel, "cls"] = cls
        self.boxes.features = feats
        self.recolor_boxes()
        self.boxes_edited.emit()
        return True

    def current_boxes(self) -> list[Box]:
        h, w = self.size
        cls = self.boxes.features["cls"].to_numpy() if len(self.boxes.data) else []
        out = []
        for corners, c in zip(self.boxes.data, cls, strict=False):
            b = rect_to_box(corners, int(c), w, h)
            if b is not None:
                out.append(b)
        return out

    def _on_boxes_data(self, event) -> None:
        if self._loading or getattr(event, "action", None) not in FINISHED_ACTIONS:
            return
        self.recolor_boxes()
        self.boxes_edited.emit()

    def _on_paint(self, _event=None) -> None:
        self._blank.discard(self.teacher.name)
        if not self._loading:
            self.mask_painted.emit()
