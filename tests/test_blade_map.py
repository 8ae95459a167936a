"""The blade map (SVG and PDF drawing) and the report's position and changes sections."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from bench.history import build_project
from ml.datasets.synthetic_history import make_history
from ml.findings.blade_map import blade_maps, shapes, to_svg
from ml.findings.placement import place_findings
from ml.findings.report import write_report
from ml.metadata.values import set_values


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    hs = make_history(seed=2, stations=(6.0,))
    return hs, build_project(tmp_path_factory.mktemp("map"), hs)


def test_one_map_per_blade_numbered_by_radius(pair):
    hs, proj = pair
    late = [p.key for p in hs.photos if p.year == 1]
    placed = place_findings(proj, late, "teacher").found
    maps = blade_maps(placed, {"WTG01": 30.0})
    assert [(m.turbine, m.blade) for m in maps] == [("WTG01", "A"), ("WTG01", "B")]
    for m in maps:
        radii = [mk.radius_m for mk in m.markers]
        assert radii == sorted(radii) and [mk.number for mk in m.markers] == list(
            range(1, len(radii) + 1))
        assert m.length_m == 30.0 and not m.problems
    svg = to_svg(maps[0], highlight=late[0])
    root = ET.fromstring(svg)  # well-formed
    circles = [c for c in root.findall("{http://www.w3.org/2000/svg}circle") if c.get("data-ref")]
    assert len(circles) == len(maps[0].markers)
    assert all(c.get("data-ref", "").count("#") >= 1 for c in circles)
    assert "xmlns" not in to_svg(maps[0], standalone=False)


def test_beyond_the_blade_and_unknown_length_are_shown(pair):
    hs, proj = pair
    late = [p.key for p in hs.photos if p.year == 1]
    placed = place_findings(proj, late, "teacher").found
    short = blade_maps(placed, {"WTG01": 6.0})[0]
    assert short.problems and all("outside the blade" in p for p in short.problems)
    ring = [s for s in shapes(short) if s.kind == "circle" and s.stroke == "#c62828"]
    assert len(ring) == len(short.problems)
    unknown = blade_maps(placed)[0]
    assert not unknown.length_known and unknown.length_m >= max(
        m.radius_m for m in unknown.markers)
    assert any("blade length unknown" in s.text for s in shapes(unknown))
    import dataclasses

    far = dataclasses.replace(unknown, length_m=5000.0)  # a wild radius: still drawn
    assert len([s for s in shapes(far) if s.kind == "text" and s.text.endswith(" m")]) <= 12


def test_report_shows_maps_and_changes_grown_and_new_first(pair, tmp_path):
    import pypdf

    _, proj = pair
    paths = write_report(proj, tmp_path / "r", source="teacher", pdf=True)
    text = paths["html"].read_text()
    assert "Where on the blade (2025-06-18 inspection)" in text
    assert "Changes since 2024-06-10" in text and text.count("<svg") == 2
    assert not re.search(r"https?://", text)
    for blade in ("A", "B"):
        part = text.split(f"<h3>WTG01 · blade {blade}</h3>")[1].split("<h3>WTG01 · blade")[0]
        statuses = re.findall(r'class="status st-(\w+)"', part)
        first = [s for s in statuses if s in ("grown", "new")]
        assert statuses[:len(first)] == first and statuses
    pdf = "".join(p.extract_text() for p in pypdf.PdfReader(paths["pdf"]).pages)
    assert "Where on the blade" in pdf and "Changes since 2024-06-10" in pdf


def test_unplaced_photos_are_named_not_mapped(pair, tmp_path):
    hs, proj = pair
    key = next(p.key for p in hs.photos if p.year == 1)
    set_values(proj, [key], turbine="")
    try:
        text = write_report(proj, tmp_path / "r", source="teacher")["html"].read_text()
    finally:
        set_values(proj, [key], turbine="WTG01")
    assert "Unplaced: 1 photo(s)" in text and key in text.split("Unplaced:")[1][:400]
