"""The YOLO line format: writing and reading boxes and polygons gives back what went in."""

from __future__ import annotations

import pytest

from ml.datasets.yolo import box_line, boxes_text, from_yolo_class, parse_line, polygon_line
from ml.project.records import Box


def test_box_line_round_trip_in_pixels():
    line = box_line(3, (10, 20, 30, 60), 100, 200)
    assert line == "2 0.200000 0.200000 0.200000 0.200000"
    lab = parse_line(line)
    assert from_yolo_class(lab.cls) == 3 and lab.polygon == ()
    assert lab.xyxy(100, 200) == pytest.approx((10, 20, 30, 60))


def test_polygon_line_round_trip_keeps_vertices_and_encloses_them_in_a_box():
    pts = [(10, 20), (40, 20), (25, 80)]
    lab = parse_line(polygon_line(1, pts, 50, 100))
    assert lab.cls == 0
    assert lab.polygon == pytest.approx((0.2, 0.2, 0.8, 0.2, 0.5, 0.8))
    assert lab.xyxy(50, 100) == pytest.approx((10, 20, 40, 80))


def test_boxes_text_ends_every_line_and_reads_detector_confidence():
    text = boxes_text([Box(0, 0, 50, 100, 1), Box(25, 50, 50, 100, 2)], 50, 100)
    assert text.endswith("\n") and len(text.splitlines()) == 2
    assert [parse_line(t).cls for t in text.splitlines()] == [0, 1]
    assert parse_line("1 0.5 0.5 0.2 0.2 0.93").xyxy(10, 10) == pytest.approx((4, 4, 6, 6))
    assert boxes_text([], 10, 10) == ""


@pytest.mark.parametrize("line", ["", "1 0.5 0.5", "1 0.1 0.1 0.2 0.2 0.3 0.3 0.4", "x 1 1 1 1"])
def test_malformed_lines_raise(line):
    with pytest.raises(ValueError):
        parse_line(line)
