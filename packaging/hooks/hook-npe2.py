"""npe2 (napari's plugin engine): its manifest schema data and metadata."""

from _collect import package

hiddenimports, datas = package("npe2", "npe2")
