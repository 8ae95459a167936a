"""What the wheel ships: every package of app/ and ml/, and resources/ as app.resources."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.gui._resources import resource_path, resources

tomllib = pytest.importorskip("tomllib")
ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed_and_resources_map_to_the_top_level_folder():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for top in ("app", "ml") for p in (ROOT / top).rglob("__init__.py")}
    listed = set(cfg["setuptools"]["packages"])
    assert listed - {"app.resources"} == found
    assert cfg["setuptools"]["package-dir"] == {"app.resources": "resources"}
    assert (ROOT / "resources" / "__init__.py").is_file()


def test_resource_path_finds_the_icon_and_names_where_it_looked():
    assert resource_path("b2p.svg").read_text(encoding="utf-8").lstrip().startswith("<")
    assert resource_path("b2p.svg").parent.name == "resources"
    with pytest.raises(FileNotFoundError, match=re.escape(str(resources()))):
        resource_path("nope.svg")
