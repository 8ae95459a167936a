"""torchvision's native ops live in ``_C_stable.so`` and ``image_stable.so``, loaded by file
name (torch.ops.load_library), not imported; the stock hook misses them and ``import timm``
then failed with "operator torchvision::nms does not exist".
"""

from PyInstaller.utils.hooks import get_package_paths

_, _pkg = get_package_paths("torchvision")
binaries = [(f"{_pkg}/{name}", "torchvision") for name in ("_C_stable.so", "image_stable.so")]
