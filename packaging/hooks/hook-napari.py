"""napari: all its modules, data files (.pyi stubs, themes, icons) and metadata.

The trial freeze of issue 7 died on start without these: napari loads submodules lazily
through lazy_loader ``.pyi`` stubs and through module paths written as strings (app-model
actions, its builtins manifest), none of which static analysis sees; npe2 finds napari's
builtin reader/writer plugin (``napari_builtins``, same distribution) through the
distribution's entry points.
"""

from _collect import package

hiddenimports, datas = package("napari", "napari")
_h, _d = package("napari_builtins")
hiddenimports += _h + ["napari_resources"]
datas += _d
# napari_resources (icons and logos) is imported by napari.utils.logo; its files are data.
datas += package("napari_resources", "napari-resources", modules=False)[1]
