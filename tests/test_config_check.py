"""``StudentConfig.check`` and ``TrainConfig.check``: one line naming each setting out of range."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ml.student.config import ConfigError, StudentConfig, TrainConfig, nearest_input_size


def test_defaults_and_the_papers_settings_pass():
    assert StudentConfig().check() == StudentConfig()
    assert TrainConfig().check() == TrainConfig()
    assert StudentConfig(arch="unet", input_size=100).check().input_size == 100  # no patches


def test_each_setting_out_of_range_is_named_in_one_line():
    with pytest.raises(ConfigError) as e:
        StudentConfig(input_size=50, members=0, mode="half").check()
    text = str(e.value)
    assert "\n" not in text and text.startswith("student settings: ")
    assert "input size 50 must be a multiple of 14, the backbone's patch (nearest: 56)" in text
    assert "members 0 must be at least 1" in text and "mode 'half' must be one of" in text
    with pytest.raises(ConfigError, match="epochs 0 must be at least 1; batch size -1 must"):
        TrainConfig(epochs=0, batch_size=-1).check()
    with pytest.raises(ConfigError, match="box loss -0.5 must be 0"):
        TrainConfig(box_loss=-0.5).check()
    with pytest.raises(ConfigError, match="crop -2"):
        TrainConfig(crop=-2).check()
    assert isinstance(ConfigError("x"), ValueError)  # the CLI's one-line error path


@pytest.mark.parametrize("typed,size", [(50, 56), (224, 224), (230, 224), (1, 14), (0, 14)])
def test_the_gui_rounds_by_the_same_rule_the_check_holds(typed, size):
    assert nearest_input_size(typed) == size
    replace(StudentConfig(), input_size=nearest_input_size(typed)).check()


def test_building_a_student_checks_its_config():
    from ml.student.models import build_model

    with pytest.raises(ConfigError, match="members 0"):
        build_model(StudentConfig(input_size=28, backbone_weights="none", taps=(0,), members=0))
