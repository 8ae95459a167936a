"""psygnal is compiled with mypyc: its extension modules import a shared top-level helper
module (``<hash>__mypyc``) from C, which static analysis cannot see (hooks-contrib adds the same
for charset_normalizer); without it ``import psygnal``, and so napari, fails in the bundle.
"""

from importlib import metadata as _md

from PyInstaller.utils.hooks import copy_metadata

hiddenimports = [str(f).split(".")[0] for f in (_md.distribution("psygnal").files or [])
                 if "__mypyc" in str(f) and "/" not in str(f)]
datas = copy_metadata("psygnal")
