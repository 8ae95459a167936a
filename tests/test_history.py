"""Each defect's history across inspections, on the synthetic two-year blades."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from app.cli import main
from bench.history import build_project, score
from ml.datasets.synthetic_history import make_history
from ml.findings.history import project_history
from ml.findings.inspections import all_inspections, inspections, set_inspection
from ml.findings.registration import register
from ml.metadata.values import set_values
from ml.project.store import ProjectError


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    hs = make_history(seed=0)
    proj = build_project(tmp_path_factory.mktemp("hist"), hs)
    return hs, proj, project_history(proj, source="teacher")


@pytest.fixture
def small(tmp_path):
    hs = make_history(seed=1, blades=("A",), stations=(6.0, 14.0))
    return hs, build_project(tmp_path, hs)


def test_every_defect_status_growth_and_radius_on_the_synthetic_pair(pair):
    hs, _, hist = pair
    s = score(hist, hs)
    assert s["wrong"] == [] and s["status_accuracy"] == 1.0
    assert {d.status for d in hs.defects} == {"grown", "stable", "shrunk", "new", "gone"}
    assert s["growth_error_max"] < 0.10
    assert s["findings_placed"] == sum(d.radius_m[0] is not None for d in hs.defects) + sum(
        d.radius_m[1] is not None for d in hs.defects)
    assert s["radius_error_max_m"] < 0.5
    assert s["registered_pairs"] == s["pairs"] == len(hs.photos) // 2


def test_matches_keep_one_identity_and_say_how_they_were_made(pair):
    _, _, hist = pair
    changes = hist.latest.changes
    idents = [c.ident for c in changes]
    assert len(set(idents)) == len(idents) and all(i.startswith("WTG01/") for i in idents)
    grown = [c for c in changes if c.status == "grown"]
    assert grown and all(c.certain and c.how.startswith("registered") for c in grown)
    g = grown[0]
    assert g.area_change_mm2 > 0 and g.growth_mm2_per_year > 0 and g.years == pytest.approx(
        1.02, abs=0.01)
    assert g.growth_pct_per_year == pytest.approx(100 * (g.area_ratio - 1) / g.years)
    gone = [c for c in changes if c.status == "gone"]
    assert gone and all(c.current is None and c.certain for c in gone)


def test_inspections_from_capture_dates_or_set_by_a_person(small):
    _, proj = small
    found, undated = inspections(proj)
    assert [i.date for i in found] == ["2024-06-10", "2025-06-18"] and not undated
    assert all(i.guessed for i in found)
    late = [k for k in proj.keys() if k.startswith("2025")]
    set_inspection(proj, "2025-07-01", late)
    found, _ = inspections(proj)
    assert [(i.date, i.guessed) for i in found] == [("2024-06-10", True), ("2025-07-01", False)]


def test_two_inspections_on_one_date_are_refused(small, tmp_path):
    hs, proj = small
    other = build_project(tmp_path / "again", make_history(seed=2, blades=("B",),
                                                            stations=(6.0,)))
    with pytest.raises(ProjectError, match="two inspections dated 2024-06-10"):
        all_inspections(proj, [other])


def test_an_older_inspection_in_a_linked_project(small, tmp_path):
    hs, proj = small
    old = [k for k in proj.keys() if k.startswith("2024")]
    proj.remove_images(old)  # this project now holds the second year only
    older = build_project(tmp_path / "older", hs)
    older.remove_images([k for k in older.keys() if k.startswith("2025")])
    hist = project_history(proj, previous=[older], source="teacher")
    assert [i.project for i in hist.inspections] == [older, proj]
    assert score(hist, hs)["status_accuracy"] == 1.0


def test_a_photo_without_blade_is_unplaced_never_guessed(small):
    hs, proj = small
    key = hs.photos[0].key
    set_values(proj, [key], blade="")
    hist = project_history(proj, source="teacher")
    assert hist.unplaced == [key]
    assert all(key not in (c.current and c.current.key, c.earlier and c.earlier.key)
               for c in hist.latest.changes)
    assert "without turbine or blade" in hist.summary()


def test_registration_fails_on_another_blade():
    a = make_history(seed=3, blades=("A",), stations=(6.0,)).photos[0].image
    b = make_history(seed=4, blades=("B",), stations=(6.0,)).photos[1].image
    reg = register(a, b)
    assert not reg.ok and reg.homography is None and reg.reason


def test_earlier_photos_gone_still_compare_by_position_only(small):
    hs, proj = small
    for k in proj.keys():
        if k.startswith("2024"):
            proj.image_path(k).unlink()
    hist = project_history(proj, source="teacher")
    comp = hist.latest
    assert sorted(comp.missing_photos) == sorted(k for k in proj.keys() if k.startswith("2024"))
    matched = [c for c in comp.changes if c.earlier is not None and c.current is not None]
    assert matched and all(not c.certain and "by position only" in c.how
                           and "earlier photo missing" in c.how for c in matched)
    assert set(comp.failed_registrations().values()) == {"earlier photo missing"}


def test_sizes_without_gsd_are_not_compared(small):
    _, proj = small
    set_values(proj, [k for k in proj.keys() if k.startswith("2024")], gsd_mm="")
    comp = project_history(proj, source="teacher").latest
    matched = [c for c in comp.changes if c.earlier is not None and c.current is not None]
    assert matched and all(c.status == "matched" and c.area_ratio is None for c in matched)
    assert "no GSD in the earlier photo" in matched[0].note


def test_b2p_history_lists_and_writes_csv(pair, tmp_path, capsys):
    _, proj, hist = pair
    out = tmp_path / "h.csv"
    assert main(["history", str(proj.root), "--source", "teacher", "--csv", str(out)]) == 0
    text = capsys.readouterr().out
    assert "2025-06-18 since 2024-06-10" in text and "grown" in text
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == len(hist.latest.changes)
    assert {r["status"] for r in rows} == {"grown", "stable", "shrunk", "new", "gone"}
    assert all(r["identity"].startswith("WTG01/") for r in rows)


def test_the_reports_blade_section_places_each_photo_once(small, monkeypatch):
    """The history places the latest inspection's findings; the blade maps reuse them."""
    import ml.findings.placement as placement
    from ml.findings.report._blade import blade_section

    _, proj = small
    reads: list[str] = []
    real = placement.photo_regions
    monkeypatch.setattr(placement, "photo_regions",
                        lambda p, key, source: reads.append(key) or real(p, key, source))
    section = blade_section(proj, "teacher")
    assert section is not None and section.comparison is not None
    assert sorted(reads) == sorted(proj.keys())  # every photo's mask read once, not twice


def test_two_inspections_of_one_day_are_compared_as_two(small):
    """Same date, told apart by 'DATE #2': compared in that order, no growth per year."""
    hs, proj = small
    set_inspection(proj, "2025-06-18", [k for k in proj.keys() if k.startswith("2024")])
    set_inspection(proj, "2025-06-18 #2", [k for k in proj.keys() if k.startswith("2025")])
    hist = project_history(proj, source="teacher")
    assert [i.name for i in hist.inspections] == ["2025-06-18", "2025-06-18 #2"]
    assert (hist.latest.earlier.name, hist.latest.current.name) == ("2025-06-18", "2025-06-18 #2")
    assert score(hist, hs)["status_accuracy"] == 1.0
    grown = [c for c in hist.latest.changes if c.status == "grown"]
    assert grown and all(c.years == 0 and c.growth_pct_per_year is None for c in grown)
    assert "2025-06-18 #2 since 2025-06-18" in hist.summary()
    assert set(hist.placements) == {"2025-06-18", "2025-06-18 #2"}


def test_earlier_photos_gone_the_report_and_the_crops_still_compare(small, tmp_path):
    """The report's changes still list every change; the crop keeps the earlier mask."""
    from ml.findings.history_crops import EARLIER, MISSING, spot_views
    from ml.findings.report import write_report

    _, proj = small
    for k in proj.keys():
        if k.startswith("2024"):
            proj.image_path(k).unlink()
    comp = project_history(proj, source="teacher").latest
    matched = next(c for c in comp.changes if c.earlier is not None and c.current is not None)
    views = spot_views(matched, comp)
    assert not views.registered and views.earlier_note == MISSING and not views.current_note
    drawn = np.all(np.abs(views.earlier.astype(int) - EARLIER) < 40, axis=2)
    assert drawn.sum() > 0  # the earlier region from its stored mask, on a grey panel
    html = write_report(proj, tmp_path / "r", source="teacher")["html"].read_text()
    assert "Changes since 2024-06-10" in html and "earlier photo missing" in html
    assert html.count('class="status st-') == len(comp.changes)
