"""Shared helper of our hooks: a package's modules, data files and metadata, without tests."""

from PyInstaller.utils.hooks import collect_data_files, collect_submodules, copy_metadata


def _not_test(name: str) -> bool:
    parts = name.split(".")
    return not any(p in ("_tests", "tests", "testing", "benchmarks") for p in parts) \
        and not name.endswith("_testsupport")


def package(name: str, dist: str | None = None, modules: bool = True):
    """(hiddenimports, datas) for package ``name`` and the metadata of distribution ``dist``."""
    hidden = collect_submodules(name, filter=_not_test) if modules else []
    datas = collect_data_files(name, excludes=["**/_tests/**", "**/tests/**", "**/*.pyc"])
    if dist:
        datas += copy_metadata(dist)
    return hidden, datas
