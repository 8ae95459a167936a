"""The training plot draws long runs through each pixel column's extremes."""

from __future__ import annotations

import numpy as np
import pytest

from app.gui.training.plot import TrainingPlot, decimate

pytestmark = pytest.mark.gui


def test_decimate_keeps_every_columns_lowest_and_highest_point():
    xs = np.linspace(0, 10, 10001)
    ys = np.sin(xs * 7) + xs / 10
    dx, dy = decimate(xs, ys, 10.0, 100)
    assert len(dx) == len(dy) <= 2 * 101
    col = np.floor(xs / 10 * 100).astype(int)
    for c in (0, 37, 99, 100):
        assert ys[col == c].min() in dy and ys[col == c].max() in dy
    assert np.all(np.diff(dx) >= 0)  # still drawn left to right
    few_x, few_y = decimate(xs[:150], ys[:150], 10.0, 100)
    assert np.array_equal(few_x, xs[:150]) and np.array_equal(few_y, ys[:150])


def test_a_long_run_paints_and_keeps_every_point(qtbot):
    plot = TrainingPlot()
    qtbot.addWidget(plot)
    plot.resize(320, 150)
    for i in range(20000):
        plot.add_loss(i / 1000, 1 / (1 + i / 500), redraw=False)
    plot.add_miou(10.0, 0.5)
    assert not plot.grab().isNull()
    assert len(plot.loss) == 20000 and len(plot._loss_array()) == 20000
    plot.add_loss(20.0, 0.01)  # added after a paint: converted with the next one
    assert len(plot._loss_array()) == 20001
    plot.clear()
    assert len(plot._loss_array()) == 0 and not plot.grab().isNull()
