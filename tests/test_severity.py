"""Severity rule, settings overrides and reviewer overrides that survive re-prediction."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ml.findings.severity import assess, load_settings, overrides, set_override
from ml.project.regions import find_regions
from ml.project.store import ProjectError


def test_rule_steps_with_physical_size_and_caps_per_class():
    s = load_settings()
    # damage: base 2, +1 at 100 / 2500 / 40000 mm^2
    assert s.suggest("damage", 99, 10**6, gsd_mm=1.0) == 2
    assert s.suggest("damage", 100, 10**6, gsd_mm=1.0) == 3
    assert s.suggest("damage", 2500, 10**6, gsd_mm=1.0) == 4
    assert s.suggest("damage", 10_000, 10**6, gsd_mm=2.0) == 5  # 40000 mm^2
    assert s.suggest("dirt", 10**6, 10**6, gsd_mm=5.0) == 2  # dirt is capped at 2
    # without a GSD the size is relative to the image
    assert s.suggest("damage", 4, 10_000) == 2  # 0.04 %
    assert s.suggest("damage", 60, 10_000) == 4  # 0.6 %
    assert s.suggest("unknown-class", 60, 10_000) == s.rules["default"].level(0.6, None)
    assert s.category(5).name == "Critical" and "Stop the turbine" in s.category(5).action
    assert s.category(1).name == "Cosmetic"


def test_project_severity_json_overrides_rules_and_rejects_bad_files(project):
    (project.root / "severity.json").write_text(json.dumps(
        {"rules": {"dirt": {"base": 3, "max": 3, "percent": []}}}))
    s = load_settings(project)
    assert s.suggest("dirt", 1, 100) == 3 and "severity.json" in s.source
    assert s.suggest("damage", 60, 10_000) == 4  # untouched rule kept
    (project.root / "severity.json").write_text(json.dumps(
        {"rules": {"dirt": {"base": 1, "percent": [5, 2]}}}))
    with pytest.raises(ProjectError, match="ascending"):
        load_settings(project)
    (project.root / "severity.json").write_text(json.dumps({"categories": [{"level": 1}]}))
    with pytest.raises(ProjectError, match="level, name, action and time_frame"):
        load_settings(project)


def _mask(h: int, w: int) -> np.ndarray:
    lab = np.zeros((h, w), np.uint8)
    lab[5:15, 5:25] = 2  # 200 px of damage
    lab[30:33, 40:44] = 1
    return lab


def test_override_survives_re_prediction_of_the_same_mask(project):
    key = "a.png"
    rec = project.record(key)
    lab = _mask(rec.height, rec.width)
    project.save_student(key, lab, "model-1", confidence=np.full(lab.shape, 90, np.uint8))
    settings = load_settings(project)
    before = assess(project, key, find_regions(lab), settings)
    damage = next(f for f in before if f.class_name == "damage")
    assert not damage.overridden and damage.severity == damage.suggested
    set_override(project, key, damage.region.id, 1, by="inspector")

    # a new model predicts again; the same region elsewhere gains a neighbour
    lab2 = lab.copy()
    lab2[40:44, 2:6] = 2
    project.save_student(key, lab2, "model-2", confidence=np.full(lab.shape, 250, np.uint8))
    reopened = type(project).open(project.root)
    after = assess(reopened, key, find_regions(reopened.load_mask(key, "student")), settings)
    same = next(f for f in after if f.region.id == damage.region.id)
    assert same.overridden and same.severity == 1 and same.suggested == damage.suggested
    assert same.category.name == "Cosmetic"
    assert sum(f.overridden for f in after) == 1
    assert overrides(reopened.record(key)) == {damage.region.id: 1}


def test_region_ids_do_not_depend_on_order_or_resolution():
    lab = _mask(48, 64)
    ids = {r.id for r in find_regions(lab)}
    extra = lab.copy()
    extra[0:2, 60:64] = 2
    assert ids <= {r.id for r in find_regions(extra)}
    big = np.kron(lab, np.ones((4, 4), np.uint8))  # same photo, 4x the pixels
    assert {r.id for r in find_regions(big)} == ids


def test_clearing_an_override_restores_the_suggestion(project):
    key = "a.png"
    lab = _mask(48, 64)
    project.save_teacher_mask(key, lab, "box")
    rid = find_regions(lab).regions[0].id
    set_override(project, key, rid, 5)
    set_override(project, key, rid, None)
    assert overrides(project.record(key)) == {}
    with pytest.raises(ProjectError, match="1-5"):
        set_override(project, key, rid, 7)
