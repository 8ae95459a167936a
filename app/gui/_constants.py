"""Layer names, colours, timings and settings keys of the desktop app, in one place."""

from __future__ import annotations

from ml.evaluation.corrections import RECLASSIFIED, RECOVERED, REJECTED

# napari layer names (one of each; the app replaces their data when the image changes)
LAYER_IMAGE = "image"
LAYER_BOXES = "boxes"
LAYER_TEACHER = "pseudo-mask"
LAYER_STUDENT = "student"
LAYER_CORRECTIONS = "corrections"

# colours of the corrections map codes (codes and names: ml.evaluation.corrections)
CORRECTION_COLORS = {RECOVERED: "#00e5ff", REJECTED: "#ff2d55", RECLASSIFIED: "#ffd60a"}

# list colours per image status (ml.project.store.ImageRecord.status)
STATUS_COLORS = {"no boxes": "#8e8e93", "boxed": "#f0b400", "pseudo-labelled": "#64d2ff",
                 "edited": "#bf5af2", "predicted": "#30d158", "reviewed": "#34c759"}

TEACHER_OPACITY = 0.45
STUDENT_OPACITY = 0.45
CORRECTIONS_OPACITY = 0.8
BOX_EDGE_WIDTH = 3

ZOOM_MIN_PX = 48  # zooming to a finding shows at least this many image pixels across
THUMB_PX = 56  # thumbnail edge in the project list
# Progress bars, labels and the training plot update at most this often (superqt's qthrottled):
# each visible change of a dock re-composes the whole napari window (an OpenGL canvas), 15-60 ms
# of the GUI thread with software OpenGL, and a job can report many steps a second.
PROGRESS_UI_MS = 200
SAVE_DEBOUNCE_MS = 500  # a paint stroke is saved this long after the last change
STOP_GRACE_MS = 8000  # training: after "stop", wait this long before terminate()
KILL_GRACE_MS = 3000  # ... and this long after terminate() before kill()
STDERR_TAIL_CHARS = 2000  # what a crashed worker's report shows
WORKER_NICE = 10  # the training worker runs this much below the GUI's CPU priority
HELPER_THREAD_NICE = 5  # threads that read photos ahead or write decisions run this much below

# QSettings
SETTINGS_ORG = "Boxes2Pixels"
SETTINGS_APP = "Inspector"
RECENT_KEY = "recent_projects"
GEOMETRY_KEY = "window_geometry"
MAX_RECENT = 10

APP_TITLE = "Boxes2Pixels Inspector"
