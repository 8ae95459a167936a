"""napari-svg: its manifest and metadata (npe2 lists it; napari asks it for SVG export)."""

from _collect import package

hiddenimports, datas = package("napari_svg", "napari-svg")
