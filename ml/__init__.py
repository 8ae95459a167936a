"""Boxes2Pixels library: everything that computes. Never imports Qt or napari.

Public modules: ``store`` (projects), ``images``, ``importers``, ``teachers``, ``weights``,
``synthetic``, ``models``, ``checkpoint`` (model folders), ``losses``, ``train``, ``predict``,
``metrics``, ``regions``, ``severity``, ``metadata``, ``export``, ``report``. Heavy dependencies
(torch, timm, segment-anything) load only in the modules that need them.
"""

__version__ = "0.1.0"
