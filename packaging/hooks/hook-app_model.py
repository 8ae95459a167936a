"""app-model (napari's menus and actions): metadata and its Qt backend modules."""

from _collect import package

hiddenimports, datas = package("app_model", "app-model")
