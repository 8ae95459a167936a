"""magicgui: its Qt backend module is imported by name (``magicgui.backends._qtpy``)."""

from _collect import package

hiddenimports, datas = package("magicgui", "magicgui")
hiddenimports = [m for m in hiddenimports if "_ipynb" not in m]  # no Jupyter in the bundle
