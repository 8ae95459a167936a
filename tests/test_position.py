"""Position along the blade: radius fields, guesses, zones and each finding's radius."""

from __future__ import annotations

import math

import pytest

from ml.datasets.synthetic_history import make_history
from ml.metadata.blade_axis import axis_from_edges
from ml.metadata.position import (
    BEYOND,
    Axis,
    along,
    beyond_blade,
    fill_radius,
    finding_position,
    radius_from_altitude,
    radius_from_name,
    set_turbine,
    turbines,
    zone,
)
from ml.metadata.values import check_value, from_csv, guessed, meta_from_path, set_values
from ml.project.store import ProjectError


def test_radius_from_folder_or_file_names_and_folders_still_read():
    assert radius_from_name("WTG07/B/PS/12.5m/DJI_0042.JPG") == 12.5
    assert radius_from_name("WTG07/B/PS/DJI_0042_7m.JPG") == 7.0
    assert radius_from_name("WTG07/B/PS/DJI_0042.JPG") is None
    assert meta_from_path("WTG07/B/PS/12.5m/DJI_0042.JPG") == {
        "side": "pressure_side", "blade": "B", "turbine": "WTG07"}


def test_radius_values_are_checked():
    assert check_value("radius_m", "0") == 0.0
    assert check_value("inspection", "2025-06-01T10:00") == "2025-06-01"
    for name, bad in (("radius_m", "-1"), ("blade_length_m", "0"), ("hub_height_m", "x")):
        with pytest.raises(ValueError, match=name):
            check_value(name, bad)


def test_radius_from_drone_altitude_corrected_by_gimbal_pitch():
    cap = {"relative_alt_m": 70.0, "gimbal_pitch_deg": 10.0, "laser_distance_m": 12.0}
    r, how = radius_from_altitude(cap, hub_height_m=100.0)
    assert r == pytest.approx(100 - 70 - 12 * math.sin(math.radians(10)))
    assert "pitch" in how and "RelativeAltitude" in how
    r, how = radius_from_altitude({"alt_m": 180.0}, 100.0, takeoff_alt_m=110.0)
    assert r == pytest.approx(30.0) and "take-off" in how
    assert radius_from_altitude({"alt_m": 180.0}, 100.0) is None  # no take-off altitude
    assert radius_from_altitude(cap, None) is None  # no hub height
    from ml.metadata.position import radius_guesses
    above = {"capture": {"relative_alt_m": 120.0}, "hub_height_m": 100.0}
    assert radius_guesses("x.jpg", above) == {}  # the drone above the hub: no guess
    neg = finding_position({"radius_m": -2.0, "gsd_mm": 1.0}, (11, 11), (5, 5), Axis(), 60)
    assert "before the root" in neg.problem


def test_auto_fill_marks_radius_guessed_and_keeps_a_persons(project):
    keys = project.keys()
    set_values(project, keys, turbine="T1", blade="A", side="PS")
    set_turbine(project, "T1", hub_height_m=100.0, blade_length_m=60.0)
    for k in keys:
        project.update(k, meta={**project.record(k).meta,
                                "capture": {"relative_alt_m": 80.0}})
    set_values(project, keys[:1], radius_m=5.0)
    res = fill_radius(project)
    assert res.kept == keys[:1]
    assert project.record(keys[0]).meta["radius_m"] == 5.0
    other = project.record(keys[1]).meta
    assert other["radius_m"] == 20.0 and guessed(other)["radius_m"].startswith("altitude")


def test_along_numbers_a_sequence_in_capture_order(project):
    keys = sorted(project.keys())
    set_values(project, keys, turbine="T1", blade="B", side="PS")
    for n, k in enumerate(reversed(keys)):  # captured in the reverse of key order
        project.update(k, meta={**project.record(k).meta,
                                "capture": {"taken": f"2025-01-01T10:00:0{n}"}})
    res = along(project, "B/PS", 0.0, 1.5)
    radii = [project.record(k).meta["radius_m"] for k in reversed(keys)]
    assert radii == [0.0, 1.5, 3.0][:len(keys)] and len(res.filled) == len(keys)
    assert "sequence" in guessed(project.record(keys[0]).meta)["radius_m"]
    with pytest.raises(ProjectError, match="BLADE/SIDE"):
        along(project, "B", 0.0, 1.5)
    with pytest.raises(ProjectError, match="no photo of blade C"):
        along(project, "C/PS", 0.0, 1.5)


def test_csv_sets_radius_and_turbine_sizes(project, tmp_path):
    k = project.keys()[0]
    csv = tmp_path / "m.csv"
    csv.write_text("image,turbine,blade,side,distance_m,date,radius_m,blade_length_m\n"
                   f"{k},T9,A,LE,,,31.5,30\n")
    from_csv(project, csv)
    meta = project.record(k).meta
    assert meta["radius_m"] == 31.5 and meta["blade_length_m"] == 30.0
    assert turbines(project)["T9"].blade_length_m == 30.0
    assert "beyond the blade length" in beyond_blade(project)[0]


def test_turbine_sizes_conflicts_are_named(project):
    a, b = project.keys()[:2]
    set_values(project, [a, b], turbine="T1")
    set_values(project, [a], hub_height_m=100)
    set_values(project, [b], hub_height_m=105)
    t = turbines(project)["T1"]
    assert t.photos == 2 and t.conflicts and "hub_height_m" in t.conflicts[0]


def test_zones_are_thirds_and_beyond_the_blade_is_flagged():
    assert [zone(r, 60) for r in (0, 19.9, 20, 45, 60)] == ["root", "root", "mid", "tip", "tip"]
    assert zone(61, 60) == BEYOND and zone(10, None) == ""


def test_finding_radius_adds_the_offset_along_the_axis():
    meta = {"radius_m": 10.0, "gsd_mm": 2.0}
    down = Axis(90.0, 3.0, "test")
    # 200 px below the centre of a 401 x 401 photo: 0.4 m towards the tip
    p = finding_position(meta, (401, 401), (200.0, 400.0), down, 60.0)
    assert p.radius_m == pytest.approx(10.4) and p.zone == "root"
    assert p.uncertainty_m == pytest.approx(0.1) and "0.40 m" in p.how
    up = finding_position(meta, (401, 401), (200.0, 0.0), Axis(270.0, 3.0, "t"), 60.0)
    assert up.radius_m == pytest.approx(10.4)
    sideways = finding_position(meta, (401, 401), (400.0, 200.0), down, 60.0)
    assert sideways.radius_m == pytest.approx(10.0)
    far = finding_position({**meta, "radius_m": 59.9}, (401, 401), (200.0, 400.0), down, 60.0)
    assert far.zone == BEYOND and "beyond the blade length" in far.problem
    guessed_meta = {**meta, "_guessed": {"radius_m": "altitude: x", "gsd_mm": "estimate"}}
    assert finding_position(guessed_meta, (401, 401), (200, 400), down).uncertainty_m >= 2.0
    no_gsd = finding_position({"radius_m": 10.0}, (401, 401), (200, 400), down)
    assert no_gsd.radius_m == 10.0 and no_gsd.uncertainty_m is None and "no GSD" in no_gsd.problem
    assert finding_position({}, (10, 10), (1, 1), down).radius_m is None


def test_blade_axis_from_edges_within_a_degree_on_synthetic_photos():
    hs = make_history(seed=5, blades=("A",), stations=(10.0,))
    for photo in hs.photos:
        axis = axis_from_edges(photo.image)
        assert axis is not None and abs(axis.angle_deg - photo.axis_deg) < 1.0


def test_cli_meta_along_and_radius(project, capsys):
    from app.cli import main

    root = str(project.root)
    assert main(["meta", root, "--set", "turbine=T1", "--set", "blade=A", "--set",
                 "side=LE", "--set", "blade_length_m=40"]) == 0
    assert main(["meta", root, "--along", "A/LE", "--from", "2", "--step", "1.5"]) == 0
    assert "radius guessed on 3 photo(s)" in capsys.readouterr().out
    assert main(["meta", root]) == 0
    out = capsys.readouterr().out
    assert "radius_m" in out and "2*" in out
    assert main(["meta", root, "--along", "A/LE"]) == 1  # no --step
    assert "--step" in capsys.readouterr().err
    assert main(["meta", root, "--turbine", "T1", "--set", "hub_height_m=80"]) == 0
    assert {project.__class__.open(root).record(k).meta["hub_height_m"]
            for k in project.keys()} == {80.0}
    assert main(["meta", root, "--turbine", "T2", "--set", "hub_height_m=80"]) == 1


def test_auto_fill_reads_the_radius_from_dji_xmp(tmp_path):
    from ml.metadata.autofill import auto_fill
    from ml.project.store import Project
    from tests._drone_photo import dji_xmp, write_drone_photo

    attrs = ('drone-dji:RelativeAltitude="+45.20" drone-dji:GimbalPitchDegree="+10.00" '
             'drone-dji:LRFTargetDistance="12.0" drone-dji:GimbalRollDegree="+2.00"')
    write_drone_photo(tmp_path / "photos" / "T1" / "A" / "PS" / "d.jpg", dji_xmp(attrs))
    write_drone_photo(tmp_path / "photos" / "T1" / "A" / "PS" / "8.5m" / "e.jpg", dji_xmp(attrs))
    proj = Project.create(tmp_path / "p", tmp_path / "photos")
    set_values(proj, proj.keys(), hub_height_m=100)
    auto_fill(proj)
    drone = proj.record("T1/A/PS/d.jpg").meta
    assert drone["radius_m"] == pytest.approx(100 - 45.2 - 12 * math.sin(math.radians(10)),
                                              abs=0.01)
    assert guessed(drone)["radius_m"].startswith("altitude")
    folder = proj.record("T1/A/PS/8.5m/e.jpg").meta
    assert folder["radius_m"] == 8.5 and folder["side"] == "pressure_side"
    from ml.metadata.position import axis_from_meta
    assert axis_from_meta(drone).angle_deg == pytest.approx(88.0)


def test_blade_axis_of_a_photo_without_edges_is_none():
    import numpy as np

    rng = np.random.default_rng(0)
    assert axis_from_edges(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)) is None
    assert axis_from_edges(np.full((40, 40, 3), 128, np.uint8)) is None
