"""Every setting has a declared range; a value outside it stops with one message naming the key, the value and
what is allowed, from the library and from the command line alike (never a traceback)."""

from dataclasses import fields

import pytest

from gatedrec.cli import main
from gatedrec.config import RunConfig, TrainConfig
from gatedrec.errors import GatedRecError
from gatedrec.models import MODELS, default_params
from gatedrec.settings import SETTINGS, check_setting

TRAIN_KEYS = [field.name for field in fields(TrainConfig)]
MODEL_KEYS = [(model, key) for model in MODELS for key in default_params(model)]


def invalid_values(key: str, default) -> list:
    allowed = SETTINGS[key]
    if allowed.choices or allowed.pattern:
        return ["not-a-choice"]
    if isinstance(default, bool):
        return ["maybe"]
    step = 1 if isinstance(default, int) else 1.0
    values = [allowed.minimum if allowed.above_minimum else allowed.minimum - step]
    if allowed.maximum is not None:
        values.append(allowed.maximum if allowed.below_maximum else allowed.maximum + step)
    return values


def test_every_setting_has_a_declared_range_that_admits_its_default():
    for model, key in MODEL_KEYS:
        assert key in SETTINGS, f"{model}: {key}"
        check_setting(key, default_params(model)[key])
    for key in TRAIN_KEYS:
        assert key in SETTINGS, key
        check_setting(key, getattr(TrainConfig(), key))


@pytest.mark.parametrize("model, key", MODEL_KEYS)
def test_an_invalid_model_parameter_is_refused_on_the_command_line(model, key, tmp_path, capsys):
    for value in invalid_values(key, default_params(model)[key]):
        code = main(["train", "--data", str(tmp_path), "--model", model, "--set", f"{key}={value}",
                     "--out", str(tmp_path / "run")])
        err = capsys.readouterr().err
        assert code == 2 and f"'{key}'" in err and "Traceback" not in err
        assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("key", TRAIN_KEYS)
def test_an_invalid_training_setting_is_refused(key):
    config = RunConfig.for_model("lightgcn")
    for value in invalid_values(key, getattr(config.train, key)):
        with pytest.raises(GatedRecError, match=f"'{key}'"):
            config.apply({key: value})


@pytest.mark.parametrize("flags, message", [
    (["--epochs", "0"], "setting 'epochs' = 0 is not allowed: it must be >= 1"),
    (["--epochs", "-3"], "setting 'epochs' = -3"),
    (["--patience", "0"], "setting 'patience' = 0"),
    (["--seed", "-1"], "setting 'seed' = -1"),
    (["--device", "gpu"], "one of cpu, cuda, cuda:N"),
    (["--set", "batch_size=-5"], "setting 'batch_size' = -5 is not allowed: it must be >= 1"),
    (["--set", "learning_rate=-1"], "setting 'learning_rate' = -1.0 is not allowed: it must be > 0"),
    (["--set", "threads=-1"], "setting 'threads' = -1"),
])
def test_training_flags_out_of_range_stop_before_anything_runs(flags, message, small_folder, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "--data", str(small_folder), "--model", "lightgcn", *flags, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["generate", "--users", "1", "--out", "x"], "--users: 1 is out of range: it must be >= 2"),
    (["prepare", "generic", "--interactions", "x.csv", "--download-workers", "0", "--out", "x"],
     "--download-workers: 0 is out of range"),
    (["recommend", "--run", "r", "--user", "u", "--k", "0"], "--k: 0 is out of range"),
    (["serve", "--run", "r", "--port", "70000"], "--port: 70000 is out of range: it must be >= 1 and <= 65535"),
])
def test_command_line_numbers_are_checked(argv, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2 and message in capsys.readouterr().err


def test_resume_refuses_options_that_would_change_the_run(small_folder, tmp_path, capsys):
    run = tmp_path / "run"
    base = ["train", "--data", str(small_folder), "--out", str(run), "--quiet"]
    assert main([*base, "--model", "lightgcn", "--epochs", "1"]) == 0
    for extra, message in [
        (["--model", "bpr"], "--model bpr differs from the run's model lightgcn"),
        (["--seed", "9"], "--seed 9 differs from the run's seed 1"),
        (["--set", "n_layers=3"], "--set n_layers=3 changes the model parameter (the run has 1)"),
        (["--missing", "mean"], "--missing mean differs from the run's mask"),
    ]:
        assert main([*base, "--resume", *extra]) == 2
        assert message in capsys.readouterr().err
    assert main([*base, "--resume", "--model", "lightgcn", "--set", "n_layers=1", "--epochs", "2"]) == 0
