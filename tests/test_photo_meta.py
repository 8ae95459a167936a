"""Capture facts from EXIF and drone XMP, the GSD estimate, guessed vs confirmed metadata."""

from __future__ import annotations

import math

import pytest
from PIL import Image, PngImagePlugin

from ml.common.images import ImageError
from ml.metadata.autofill import auto_fill
from ml.metadata.gsd import estimate_gsd, gsd_mm, sensor_width
from ml.metadata.photo_meta import PhotoMeta, parse_xmp, read_photo_meta
from ml.metadata.values import confirm, guessed, set_values
from ml.project.store import Project, ProjectError
from tests._drone_photo import dji_xmp, write_drone_photo
from tests.conftest import write_photo

DRONE_KEY = "WTG07/B/LE/DJI_0042.JPG"
EXPECTED_GSD = 45.2 * 1000 * 13.2 / (8.8 * 120)  # altitude as distance, FC6310 table, 120 px


@pytest.fixture
def drone_project(tmp_path) -> Project:
    """One DJI-like photo in the folder convention, one plain photo without any metadata."""
    photos = tmp_path / "photos"
    write_drone_photo(photos / DRONE_KEY, dji_xmp())
    write_photo(photos / "plain.png")
    return Project.create(tmp_path / "proj", photos)


def test_exif_and_dji_xmp_are_read(tmp_path):
    m = read_photo_meta(write_drone_photo(tmp_path / "a.jpg", dji_xmp()))
    assert (m.taken, m.date) == ("2024-05-17T10:21:33+02:00", "2024-05-17")
    assert (m.make, m.model, m.camera) == ("DJI", "FC6310", "DJI FC6310")
    assert (m.focal_mm, m.focal35_mm) == (pytest.approx(8.8), 24)
    assert m.lat == pytest.approx(55 + 40 / 60 + 12.5 / 3600)
    assert m.lon == pytest.approx(-(12 + 34 / 60 + 56.7 / 3600))  # west is negative
    assert m.alt_m == pytest.approx(45.2)
    assert (m.relative_alt_m, m.gimbal_pitch_deg, m.gimbal_yaw_deg) == (45.2, -12.3, 101.5)
    assert (m.gimbal_roll_deg, m.flight_yaw_deg, m.flight_pitch_deg) == (0.0, 99.8, -2.1)
    assert m.laser_distance_m is None and (m.width, m.height) == (120, 80)
    assert m.xmp["drone-dji:RelativeAltitude"] == "+45.20" and m.xmp["tiff:Make"] == "DJI"
    cap = m.capture()
    assert cap["camera"] == "DJI FC6310" and cap["gimbal_roll_deg"] == 0.0  # a zero is kept
    assert "xmp" not in cap and "laser_distance_m" not in cap


def test_xmp_as_elements_under_another_namespace_in_a_png(tmp_path):
    packet = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
        'xmlns:drone="http://example.com/drone/1.0/" xmlns:xmp="http://ns.adobe.com/xap/1.0/">'
        "<drone:RelativeAltitude>30.5</drone:RelativeAltitude>"
        "<drone:LRFTargetDistance>7.25</drone:LRFTargetDistance>"
        "<xmp:CreateDate>2023-09-01T08:00:00</xmp:CreateDate>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>")
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", packet)
    path = tmp_path / "p.png"
    Image.new("RGB", (40, 30)).save(path, pnginfo=info)
    m = read_photo_meta(path)
    assert m.xmp["drone:RelativeAltitude"] == "30.5"
    assert (m.relative_alt_m, m.laser_distance_m, m.date) == (30.5, 7.25, "2023-09-01")


def test_a_rangefinder_without_an_echo_gives_no_distance(tmp_path):
    xmp = dji_xmp('drone-dji:LRFTargetDistance="0.0" drone-dji:LRFStatus="NoSignal"')
    assert read_photo_meta(write_drone_photo(tmp_path / "a.jpg", xmp)).laser_distance_m is None


@pytest.mark.parametrize("packet", [
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
    b"<x>&b;</x>",  # entity expansion is never attempted
    b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><unclosed>",  # not well-formed
    b"<a>" + b" " * (1 << 20) + b"</a>",  # over the size limit
    b"",
])
def test_hostile_or_broken_xmp_is_ignored(tmp_path, packet):
    assert parse_xmp(packet) == {}
    if len(packet) > 60000:
        return  # does not fit in one JPEG segment
    m = read_photo_meta(write_drone_photo(tmp_path / "a.jpg", packet or None))
    assert m.xmp == {} and m.relative_alt_m is None and m.model == "FC6310"  # EXIF still read


def test_a_photo_without_metadata_and_a_broken_one(tmp_path):
    m = read_photo_meta(write_photo(tmp_path / "plain.png", 64, 48))
    assert m == PhotoMeta(width=64, height=48) and m.camera is None and m.date is None
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(ImageError, match="bad.jpg"):
        read_photo_meta(tmp_path / "bad.jpg")


def test_gsd_arithmetic():
    # Phantom 4 Pro at 10 m: 13.2 mm sensor, 8.8 mm lens, 5472 px wide -> 2.74 mm/px
    assert gsd_mm(10, 8.8, 13.2, 5472) == pytest.approx(2.7412, abs=1e-4)
    assert gsd_mm(20, 8.8, 13.2, 5472) == pytest.approx(2 * gsd_mm(10, 8.8, 13.2, 5472))
    for bad in ((0, 8.8, 13.2, 5472), (10, -1, 13.2, 5472), (10, 8.8, math.nan, 5472)):
        with pytest.raises(ValueError, match="positive"):
            gsd_mm(*bad)
    # the table wins; else the 35 mm equivalent, split by the image's aspect ratio
    p4 = PhotoMeta(model="FC6310", focal_mm=8.8, focal35_mm=24)
    assert sensor_width(p4, 5472, 3648)[0] == 13.2
    other = PhotoMeta(model="Unknown X", focal_mm=8.8, focal35_mm=24)
    assert sensor_width(other, 5472, 3648)[0] == pytest.approx(13.2)  # 3:2: 36 mm x f / f35
    assert sensor_width(other, 4000, 3000)[0] == pytest.approx(
        math.hypot(36, 24) * 8.8 / 24 * 0.8)  # 4:3: 80 % of the diagonal
    assert sensor_width(PhotoMeta(model="Unknown X", focal_mm=8.8), 400, 300) is None
    est = estimate_gsd(PhotoMeta(model="FC6310", focal_mm=8.8, width=3648, height=5472), 10)
    assert est.gsd_mm == pytest.approx(2.7412, abs=1e-4)  # portrait: the long side counts
    assert "10 m" in est.how and "FC6310" in est.how
    assert estimate_gsd(PhotoMeta(width=100, height=100), 10) is None  # no lens
    assert estimate_gsd(p4, None) is None


def test_auto_fill_guesses_and_a_person_confirms(drone_project):
    p = drone_project
    r = auto_fill(p)
    assert r.done == (DRONE_KEY,) and r.skipped == {"plain.png": "no metadata in the photo or "
                                                                 "its folders"}
    meta = p.record(DRONE_KEY).meta
    assert (meta["turbine"], meta["blade"], meta["side"], meta["date"]) == (
        "WTG07", "B", "leading_edge", "2024-05-17")
    assert meta["distance_m"] == 45.2 and meta["gsd_mm"] == pytest.approx(EXPECTED_GSD, rel=1e-3)
    g = guessed(meta)
    assert set(g) == {"turbine", "blade", "side", "date", "distance_m", "gsd_mm"}
    assert "not the distance to the blade" in g["distance_m"]  # altitude is a poor stand-in
    assert meta["capture"]["camera"] == "DJI FC6310" and meta["capture"]["lat"] > 55
    assert r.filled["gsd_mm"] == 1 and r.guessed_now["side"] == 1 and not r.kept
    # a person sets the turbine and confirms the side; both stop being guesses
    set_values(p, [DRONE_KEY], turbine="WTG08")
    assert confirm(p, [DRONE_KEY], ["side", "turbine"]) == 1  # the turbine is already theirs
    # a second run with an entered distance keeps the person's values and recomputes the GSD
    r = auto_fill(Project.open(p.root), distance_m=5)
    meta = Project.open(p.root).record(DRONE_KEY).meta
    assert (meta["turbine"], meta["side"], meta["distance_m"]) == ("WTG08", "leading_edge", 5)
    assert set(guessed(meta)) == {"blade", "date", "gsd_mm"}
    assert meta["gsd_mm"] == pytest.approx(EXPECTED_GSD * 5 / 45.2, rel=1e-3)
    assert r.kept == {"turbine": 1, "side": 1}
    # once confirmed, the GSD is never recomputed
    confirm(p := Project.open(p.root), [DRONE_KEY], ["gsd_mm"])
    set_values(p, [DRONE_KEY], distance_m=20)
    auto_fill(p)
    assert p.record(DRONE_KEY).meta["gsd_mm"] == pytest.approx(EXPECTED_GSD * 5 / 45.2, rel=1e-3)


def test_laser_distance_is_preferred_to_the_altitude(tmp_path):
    photos = tmp_path / "photos"
    write_drone_photo(photos / "a.jpg", dji_xmp('drone-dji:RelativeAltitude="+80" '
                                                'drone-dji:LRFTargetDistance="12.5" '
                                                'drone-dji:LRFStatus="Normal"'))
    p = Project.create(tmp_path / "proj", photos)
    auto_fill(p)
    meta = p.record("a.jpg").meta
    assert meta["distance_m"] == 12.5 and "laser rangefinder" in guessed(meta)["distance_m"]
    assert meta["gsd_mm"] == pytest.approx(12.5 * 1000 * 13.2 / (8.8 * 120), rel=1e-3)


def test_set_values_checks_every_value_before_storing(drone_project):
    p = drone_project
    auto_fill(p)
    before = dict(p.record(DRONE_KEY).meta)
    with pytest.raises(ProjectError, match="blade 'Q' is not A, B or C"):
        set_values(p, p.keys(), turbine="T1", blade="Q")
    with pytest.raises(ProjectError, match="gsd_mm must be a positive number"):
        set_values(p, p.keys(), gsd_mm="-1")
    assert p.record(DRONE_KEY).meta == before
    set_values(p, p.keys(), side="ps", date="")  # bulk over both photos; '' clears
    for key in p.keys():
        meta = p.record(key).meta
        assert meta["side"] == "pressure_side" and "date" not in meta
        assert "side" not in guessed(meta) and "date" not in guessed(meta)


def test_cli_auto_confirm_set_and_show(drone_project, capsys):
    from app.cli import main

    root = str(drone_project.root)
    assert main(["meta", root, "--auto"]) == 0
    out = capsys.readouterr().out
    assert "1 of 2 photos given metadata" in out
    assert "filled: turbine 1, blade 1, side 1, date 1, distance_m 1, gsd_mm 1" in out
    assert "guessed, to confirm: turbine 1" in out
    assert main(["meta", root]) == 0  # no action: the table
    out = capsys.readouterr().out
    assert "WTG07*" in out and "LE*" in out and "45.2*" in out and "* guessed" in out
    assert main(["meta", root, "--confirm", "turbine", "side", "--where", "WTG07/*"]) == 0
    assert "confirmed 2 guessed values on 1 images" in capsys.readouterr().out
    assert main(["meta", root, "--set", "blade=C", "--where", "*.png", "--show"]) == 0
    out = capsys.readouterr().out
    assert "set blade on 1 images" in out and "plain.png" in out and "WTG07" not in out
    meta = Project.open(root).record("plain.png").meta
    assert meta == {"blade": "C"}
    assert main(["meta", root, "--set", "blade=Q"]) == 1
    assert "blade 'Q' is not A, B or C" in capsys.readouterr().err
    assert main(["meta", root, "--distance", "5"]) == 1
    assert "--distance goes with --auto" in capsys.readouterr().err
    assert main(["meta", root, "--confirm", "colour"]) == 1
    assert "unknown field(s) colour" in capsys.readouterr().err
    assert main(["meta", root, "--auto", "--where", "nope/*"]) == 1


def test_a_broken_photo_is_named_and_the_rest_is_filled(drone_project, capsys):
    from app.cli import main

    bad = drone_project.image_root / "WTG07" / "B" / "TE" / "broken.jpg"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"\xff\xd8 truncated")
    p = Project.open(drone_project.root)
    p.scan()
    r = auto_fill(p)
    assert "WTG07/B/TE/broken.jpg" in r.failed and r.done == (DRONE_KEY,)
    assert main(["meta", str(p.root), "--auto"]) == 1  # named, the rest saved
    assert "error: WTG07/B/TE/broken.jpg" in capsys.readouterr().out
