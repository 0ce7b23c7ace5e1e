"""Errors name the fix, and only explained ones are printed without a traceback: the CLI
catches `errors.RocknetError` alone (a bug such as numpy's ValueError keeps its traceback),
options are checked before any work, and `plan` fails on bad training options instead of
writing plans without training sections."""

from __future__ import annotations

import pytest
from rocknet_host import cli, data, errors
from rocknet_host.cli import datasets as datasets_cmd
from rocknet_host.planning import board as board_plan


@pytest.mark.parametrize("option,value,message", [
    ("--batch", "0", "argument --batch: must be at least 1, got 0"),
    ("--epochs", "0", "argument --epochs: must be at least 1, got 0"),
    ("--eval", "-1", "argument --eval: must be at least 0, got -1"),
    ("--nodes", "0", "argument --nodes: must be at least 1, got 0"),
    ("--features", "10", "argument --features: must be at least 84, got 10"),
    ("--batch", "two", "argument --batch: expected an integer, got 'two'"),
])
def test_plan_options_are_checked_first(tmp_path, capsys, option, value, message):
    with pytest.raises(SystemExit) as exc:
        cli.main(["plan", "GunPoint", "--out", str(tmp_path / "p"), option, value])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "p").exists()  # nothing written


@pytest.mark.parametrize("argv,message", [
    (["virtual-board", "--port", "70000"], "a TCP port is 0..65535"),
    (["deploy", "--port", "x", "--jobs", "0"], "argument --jobs: must be at least 1"),
    (["validate", "--limit", "-2"], "argument --limit: must be at least 0"),
])
def test_other_options_are_checked(capsys, argv, message):
    with pytest.raises(SystemExit):
        cli.main(argv)
    assert message in capsys.readouterr().err


def test_training_options_checked_by_the_library_too():
    for kw, name in [({"batch": 0}, "--batch"), ({"epochs": 0}, "--epochs"),
                     ({"mode": "lasso"}, "--mode"), ({"eval": -1}, "--eval"),
                     ({"keep": "counts"}, "--keep"), ({"pending": 5}, "--pending 5"),
                     ({"pending": 7, "window": 6}, "at least window \\+ 2 = 8")]:
        with pytest.raises(errors.UserError, match=name):
            board_plan.Training(**kw).check()
    board_plan.Training(pending=6).check()  # window + 2: the smallest ring


def test_a_one_class_dataset_is_refused(tmp_path):
    from rocknet_host.planning import features as plan

    ds = data.synthetic(n_train=10, n_test=4, length=32, n_classes=2, seed=0)
    ds.y_train[:] = 0
    ds.classes = ds.classes[:1]
    pl = plan.fit(ds, 1, n_features=84)
    with pytest.raises(errors.UserError, match="1 classes"):
        board_plan.node_plans(pl, ds, board_plan.Training())


def test_user_errors_print_without_traceback_bugs_keep_theirs(monkeypatch, capsys):
    def explained(args):
        raise errors.UserError("no such thing: do this instead")

    monkeypatch.setattr(datasets_cmd, "run", explained)
    assert cli.main(["datasets"]) == 2
    assert capsys.readouterr().err == "rocknet: error: no such thing: do this instead\n"

    def bug(args):
        raise ValueError("operands could not be broadcast together")  # numpy's kind

    monkeypatch.setattr(datasets_cmd, "run", bug)
    with pytest.raises(ValueError, match="broadcast"):
        cli.main(["datasets"])


def test_module_errors_belong_to_the_hierarchy():
    from rocknet_host import boards
    from rocknet_host.hardware import deploy, flash
    from rocknet_host.hardware import fleet_toml as fleet
    from rocknet_host.hardware.validate import BoardValidationError

    for cls in (data.DatasetError, boards.BoardError, fleet.FleetError, flash.FirmwareMismatch,
                board_plan.RoundsDoNotFit, errors.CorruptFile):
        assert issubclass(cls, errors.UserError) and issubclass(cls, ValueError)
    for cls in (deploy.DeployError, BoardValidationError):
        assert issubclass(cls, errors.ToolError)
