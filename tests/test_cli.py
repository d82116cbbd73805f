import json
import subprocess
import sys

import pytest

from gatedrec.cli import main


def test_generate_train_evaluate(tmp_path, capsys):
    data = tmp_path / "gen"
    assert main(["generate", "--users", "200", "--items", "80", "--interactions", "2500",
                 "--modality", "visual:8", "--modality", "text:6", "--seed", "2", "--out", str(data)]) == 0
    assert (data / "gen.inter").exists() and (data / "image_feat.npy").exists()
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--model", "rlmultimodalrec", "--epochs", "3", "--seed", "1",
                 "--set", "n_layers=1", "--out", str(run), "--quiet"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["params"]["n_layers"] == 1 and metrics["epochs_run"] == 3
    out_json = tmp_path / "eval.json"
    assert main(["evaluate", "--run", str(run), "--split", "test", "--json", str(out_json)]) == 0
    evaluated = json.loads(out_json.read_text())
    assert evaluated["recall@20"] == pytest.approx(metrics["test"]["recall@20"])
    assert "recall" in capsys.readouterr().out  # results on stdout


def test_existing_run_is_not_overwritten_and_resume_continues(tmp_path, small_folder, capsys):
    run = tmp_path / "run"
    args = ["train", "--data", str(small_folder), "--model", "lightgcn", "--epochs", "2", "--out", str(run), "--quiet"]
    assert main(args) == 0
    before = (run / "metrics.json").read_text()
    assert main(args) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (run / "metrics.json").read_text() == before
    assert main(args[:-3] + ["--epochs", "4", "--out", str(run), "--resume", "--quiet"]) == 0
    assert json.loads((run / "metrics.json").read_text())["epochs_run"] == 4


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--data", "{data}", "--model", "nope", "--out", "{out}"], "unknown model 'nope'"),
        (["train", "--data", "{data}", "--set", "colour=red", "--out", "{out}"], "unknown config key 'colour'"),
        (["train", "--data", "{missing}", "--out", "{out}"], "does not exist"),
        (["train", "--data", "{data}", "--modality", "visual", "--out", "{out}"], "must look like NAME=FILE"),
        (["evaluate", "--run", "{missing}"], "not a finished run folder"),
        (["generate", "--users", "10", "--items", "50", "--interactions", "20", "--out", "{out}"], "too few"),
    ],
)
def test_bad_input_gives_one_clear_error_without_traceback(tmp_path, small_folder, capsys, argv, message):
    filled = [a.format(data=small_folder, out=tmp_path / "out", missing=tmp_path / "missing") for a in argv]
    assert main(filled) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_models_lists_the_registry(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "rlmultimodalrec" in out and "lightgcn" in out and "bpr" in out
    assert "training settings" in out and "batch_size" in out and "learning_rate" in out and "> 0" in out


def test_the_command_line_offers_every_registered_model():
    from gatedrec.models import MODELS
    from gatedrec.options import MODEL_NAMES

    assert tuple(MODELS) == MODEL_NAMES


def test_help_imports_no_heavy_library():
    """The parser is built from light modules: --help must not wait for PyTorch, pandas or matplotlib."""
    code = ("import sys; from gatedrec.cli import build_parser; build_parser(); "
            "print(sorted({'torch', 'pandas', 'matplotlib', 'scipy'} & set(sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_results_go_to_stdout_and_json_on_request(tmp_path, small_folder, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(small_folder), "--model", "lightgcn", "--epochs", "2", "--out", str(run),
                 "--json"]) == 0
    captured = capsys.readouterr()
    metrics = json.loads(captured.out)
    assert metrics["epochs_run"] == 2 and "test" in metrics and "training lightgcn" in captured.err
    assert main(["evaluate", "--run", str(run), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["recall@20"] == pytest.approx(metrics["test"]["recall@20"])
    assert main(["evaluate", "--run", str(run)]) == 0
    captured = capsys.readouterr()
    assert "recall" in captured.out and captured.err == ""


def test_demo_trains_and_reports_the_gate_by_planted_group(tmp_path, capsys, monkeypatch):
    import gatedrec.commands.demo as demo

    monkeypatch.setattr(demo, "DEMO_SIZE", {"n_users": 150, "n_items": 200, "n_interactions": 1500,
                                            "modality_dims": {"visual": 8, "text": 6}})
    assert main(["demo", "--out", str(tmp_path / "demo"), "--epochs", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "mean visual share" in out and "rlmultimodalrec" in out
    for label in demo.DEMO_RUNS:
        assert (tmp_path / "demo" / demo.demo_folder(label) / "metrics.json").exists()
