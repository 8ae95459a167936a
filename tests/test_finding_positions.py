"""Each finding's radius and zone in the findings list, b2p findings and findings.csv."""

from __future__ import annotations

import csv
import io

import pytest

from app.cli import main
from bench.history import build_project
from ml.datasets.synthetic_history import make_history
from ml.findings.locate import UNPLACED
from ml.findings.placement import place_findings
from ml.findings.report import write_report
from ml.findings.review import findings_csv, list_findings
from ml.metadata.position import BEYOND, ZONES, set_turbine
from ml.metadata.values import set_values


@pytest.fixture
def blade(tmp_path):
    hs = make_history(seed=1, blades=("A",), stations=(6.0, 22.0))
    return hs, build_project(tmp_path, hs)


def _csv(text: str) -> dict[tuple[str, str], dict]:
    return {(r["image"], r["region_id"]): r for r in csv.DictReader(io.StringIO(text))}


def test_the_list_places_each_finding_by_the_blade_maps_rule(blade):
    hs, proj = blade
    rows = list_findings(proj, source="teacher").rows
    placed = {(p.key, p.row.region_id): p.position
              for p in place_findings(proj, None, "teacher").found}
    assert rows and {(r.key, r.region_id): r.position for r in rows} == placed
    assert all(r.position.radius_m is not None and r.position.uncertainty_m is not None
               and r.zone in ZONES for r in rows)
    assert {r.zone for r in rows} == {"root", "tip"}  # 6 m and 22 m of a 30 m blade
    truth = {p.key: p.radius_m for p in hs.photos}
    assert all(abs(r.position.radius_m - truth[r.key]) < 3.0 for r in rows)  # photo +- offset
    rows_csv = _csv(findings_csv(rows))
    r = rows[0]
    cells = rows_csv[(r.key, r.region_id)]
    assert cells["radius_m"] == f"{r.position.radius_m:.1f}" and cells["zone"] == r.zone
    assert cells["radius_uncertainty_m"] == f"{r.position.uncertainty_m:.1f}"
    assert cells["position_note"] == ""


def test_a_photo_without_turbine_or_blade_is_listed_as_unplaced(blade, capsys):
    hs, proj = blade
    key = hs.photos[0].key
    set_values(proj, [key], blade="")
    rows = [r for r in list_findings(proj, source="teacher").rows if r.key == key]
    assert rows and all(r.zone == UNPLACED and r.position.radius_m is None for r in rows)
    cells = _csv(findings_csv(rows))
    assert {(c["radius_m"], c["zone"]) for c in cells.values()} == {("", UNPLACED)}
    assert "no turbine or blade" in next(iter(cells.values()))["position_note"]
    assert main(["findings", str(proj.root), "--source", "teacher"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith(key))
    assert " unplaced " in line and " m " not in line
    assert "1 photo(s) with findings have no turbine or blade: unplaced" in out


def test_a_radius_beyond_the_blade_is_flagged_never_clamped(blade, capsys):
    hs, proj = blade
    set_turbine(proj, "WTG01", blade_length_m=10.0)  # the 22 m station lies beyond it
    rows = list_findings(proj, source="teacher").rows
    far = [r for r in rows if r.position.radius_m > 10.0]
    assert far and all(r.zone == BEYOND and "beyond the blade length" in r.position.problem
                       for r in far)
    cells = _csv(findings_csv(far))
    assert all(float(c["radius_m"]) > 10.0 and c["zone"] == BEYOND
               and "beyond the blade length 10 m" in c["position_note"] for c in cells.values())
    assert main(["findings", str(proj.root), "--source", "teacher"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[12:14] == ["RADIUS", "ZONE"]
    warned = [ln for ln in out.splitlines() if ln.startswith("warning:")]
    assert len(warned) == len(far) and "beyond the blade length" in warned[0]


def test_the_reports_findings_csv_carries_the_same_places(blade, tmp_path):
    _, proj = blade
    set_values(proj, [proj.keys()[1]], turbine="")
    paths = write_report(proj, tmp_path / "rep", source="teacher")
    report = _csv(paths["csv"].read_text(encoding="utf-8"))
    listed = _csv(findings_csv(list_findings(proj, source="teacher").rows))
    cols = ("radius_m", "radius_uncertainty_m", "zone", "position_note")
    assert report.keys() == listed.keys()
    assert {k: [r[c] for c in cols] for k, r in report.items()} == \
        {k: [r[c] for c in cols] for k, r in listed.items()}
    assert {r["zone"] for r in report.values()} >= {UNPLACED}


def test_b2p_findings_csv_writes_radius_and_zone(blade, tmp_path):
    _, proj = blade
    out = tmp_path / "f.csv"
    assert main(["findings", str(proj.root), "--source", "teacher", "--csv", str(out)]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert rows and all(r["radius_m"] and r["zone"] in ZONES for r in rows)
    assert all(len(r["radius_m"].split(".")[1]) == 1 for r in rows)  # to 0.1 m
