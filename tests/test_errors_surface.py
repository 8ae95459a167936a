"""Failures surface where they happen: no subcommand, teacher or status quietly goes missing."""

from __future__ import annotations

import importlib

import pytest

import app.cli as cli


def test_cli_registers_every_subcommand_module(monkeypatch):
    registered = []
    for name in cli._MODULES:
        mod = importlib.import_module(f"app.cli.{name}")
        monkeypatch.setattr(mod, "register",
                            lambda sub, name=name, real=mod.register: (registered.append(name),
                                                                       real(sub)))
    cli.build_parser()
    assert registered == cli._MODULES


def test_cli_subcommand_that_fails_to_import_raises(monkeypatch):
    monkeypatch.setattr(cli, "_MODULES", [*cli._MODULES, "_no_such_part"])
    with pytest.raises(ModuleNotFoundError, match="_no_such_part"):
        cli.build_parser()


def _broken_registry(*_args, **_kw):
    raise KeyError("sam_vit_b")


def test_sam_checkpoint_lookup_does_not_hide_a_registry_bug(monkeypatch):
    import ml.weights
    from ml.teachers.sam import resolve_checkpoint

    monkeypatch.setattr(ml.weights, "find", _broken_registry)
    with pytest.raises(KeyError, match="sam_vit_b"):
        resolve_checkpoint("vit_b")


def test_sam_without_its_checkpoint_says_how_to_get_it(monkeypatch):
    import ml.weights
    from ml.teachers.sam import resolve_checkpoint

    monkeypatch.setattr(ml.weights, "find", lambda name: None)
    with pytest.raises(RuntimeError, match="b2p weights download sam_vit_b"):
        resolve_checkpoint("vit_b")


def test_teacher_list_raises_when_the_weights_registry_fails(monkeypatch):
    pytest.importorskip("qtpy")  # the GUI is an optional extra
    import ml.weights
    from app.gui._batch_panel import teacher_choices

    monkeypatch.setattr(ml.weights, "list_status", _broken_registry)
    with pytest.raises(KeyError):
        teacher_choices()


def test_backbone_status_raises_when_the_weights_registry_fails(monkeypatch):
    pytest.importorskip("qtpy")
    import ml.weights
    from app.gui.training.settings import installed_backbones

    monkeypatch.setattr(ml.weights, "list_status", _broken_registry)
    with pytest.raises(KeyError):
        installed_backbones()


def test_teacher_list_names_installed_sam_and_the_fallbacks(monkeypatch, tmp_path):
    pytest.importorskip("qtpy")
    from app.gui._batch_panel import teacher_choices

    monkeypatch.setenv("B2P_WEIGHTS_DIR", str(tmp_path))  # an empty cache: no SAM installed
    assert [name for _label, name, _opts in teacher_choices()] == ["auto", "grabcut", "ridge",
                                                                   "box"]


def _subcommands() -> list[str]:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sorted(sub.choices)  # the hidden workers included


@pytest.mark.parametrize("command", _subcommands())
def test_every_subcommand_help_exits_zero(command, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([command, "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and out.startswith("usage:") and command in out.split("\n")[0]


def test_a_worker_gets_its_arguments_as_typed_and_other_commands_refuse_unknown_ones(
        monkeypatch, capsys):
    import app.workers.train as train

    seen = []
    monkeypatch.setattr(train, "main", lambda argv: seen.append(argv) or 0)
    argv = ["proj", "--out", "m", "--student", '{"a": -1}', "--resume"]
    assert cli.main(["worker", *argv]) == 0 and seen == [argv]
    with pytest.raises(SystemExit) as done:
        cli.main(["status", "proj", "--no-such-option"])
    assert done.value.code == 2 and "--no-such-option" in capsys.readouterr().err
