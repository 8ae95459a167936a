"""vispy: GLSL shaders, fonts and colormaps are data files; the Qt backend is imported by name.

vispy reads ``vispy/glsl/*.glsl`` and its fonts from disk at run time, and ``vispy.app`` picks
its backend by importing ``vispy.app.backends._pyside6`` by name: without these napari's
canvas has no shaders and no backend.
"""

from _collect import package

hiddenimports, datas = package("vispy", "vispy", modules=False)
hiddenimports = ["vispy.app.backends._pyside6", "vispy.app.backends._qt",
                 "vispy.glsl", "vispy.visuals.shaders"]
