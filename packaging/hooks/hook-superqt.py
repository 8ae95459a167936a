"""superqt: icon-font data files and metadata (napari's widgets read both)."""

from _collect import package

hiddenimports, datas = package("superqt", "superqt")
