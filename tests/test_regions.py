"""Region recall and precision (ml.evaluation.regions) and box-free speckle removal."""

from __future__ import annotations

import math

import numpy as np

from ml.common.classes import IGNORE
from ml.evaluation.regions import RegionCounts, region_counts
from ml.prediction.speckle import output_cell, remove_speckle


def test_a_region_is_found_within_the_tolerance_and_not_beyond():
    gt = np.zeros((40, 40), np.uint8)
    gt[10, 5:30] = 1  # a 1 px crack
    pred = np.zeros_like(gt)
    pred[13, 5:30] = 1  # 3 px off: found, and touching
    c = region_counts(pred, gt)
    assert c == RegionCounts(true=1, found=1, predicted=1, touching=1)
    pred2 = np.zeros_like(gt)
    pred2[14, 5:30] = 1  # 4 px off: missed, a false alarm
    assert region_counts(pred2, gt) == RegionCounts(1, 0, 1, 0)


def test_specks_lower_precision_only_and_counts_add_up():
    gt = np.zeros((50, 50), np.uint8)
    gt[5:10, 5:10] = 2
    gt[30:35, 30:35] = 1
    pred = np.zeros_like(gt)
    pred[6:9, 6:9] = 1  # finds the first region (any class counts)
    pred[45, 2] = pred[2, 45] = 1  # two specks far from any defect
    c = region_counts(pred, gt)
    assert (c.true, c.found, c.predicted, c.touching) == (2, 1, 3, 1)
    assert c.recall == 0.5 and math.isclose(c.precision, 1 / 3)
    total = c + region_counts(gt, gt)
    assert (total.true, total.found, total.predicted, total.touching) == (4, 3, 5, 3)
    assert total.as_dict()["region_recall"] == 0.75


def test_empty_masks_and_ignore_pixels():
    gt = np.full((8, 8), IGNORE, np.uint8)  # ignore is no defect
    c = region_counts(np.zeros((8, 8), np.uint8), gt)
    assert c == RegionCounts() and math.isnan(c.recall) and math.isnan(c.precision)


def test_speckle_removal_keeps_findings_and_merges_fragments():
    label = np.zeros((64, 64), np.uint8)
    label[10:20, 10:20] = 1  # a finding of 100 px
    label[40, 40] = 1  # a one-pixel speck
    label[50, 10:14] = label[50, 16:20] = 2  # two 4 px fragments 2 px apart: one finding of 8 px
    out = remove_speckle(label, cell=2.0, min_cells=2)  # bound: 8 px
    assert out[15, 15] == 1 and out[40, 40] == 0
    assert (out[50, 10:20] == label[50, 10:20]).all()  # merged for the decision, kept as drawn
    assert remove_speckle(label, cell=2.0, min_cells=0) is label
    assert out is not label and label[40, 40] == 1  # the input is left alone


def test_output_cell_follows_the_input_scale():
    assert output_cell(1.0) == 4.0  # native tiles: 4 photo px a cell
    assert output_cell(0.5) == 8.0  # a photo shrunk by 2 to fit the input
