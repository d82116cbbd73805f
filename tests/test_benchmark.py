import json

import pytest

from gatedrec.benchmark import grid_points, parse_models, run_key
from gatedrec.cli import main
from gatedrec.config import RunConfig
from gatedrec.data.synthetic import generate, save_mmrec
from gatedrec.errors import GatedRecError
from gatedrec.training import Trainer


def test_model_labels_fix_parameters_and_leave_the_grid():
    entries = parse_models("lightgcn:n_layers=2,rlmultimodalrec:fusion=concat:gate=scalar", {"reg_weight": 0.01})
    assert [entry.label for entry in entries] == ["lightgcn:n_layers=2", "rlmultimodalrec:fusion=concat:gate=scalar"]
    assert entries[1].fixed == {"reg_weight": 0.01, "fusion": "concat", "gate": "scalar"}
    points = grid_points(entries[0], "default")
    assert points and all(point["n_layers"] == 2 and point["reg_weight"] == 0.01 for point in points)
    assert len(points) == 1  # both lightgcn grid axes are fixed


def test_unknown_model_or_grid_is_refused():
    with pytest.raises(GatedRecError, match="unknown model 'nope'"):
        parse_models("bpr,nope", {})
    with pytest.raises(GatedRecError, match="--grid 'huge'"):
        grid_points(parse_models("bpr", {})[0], "huge")
    with pytest.raises(GatedRecError, match="no benchmarked model has this parameter"):
        parse_models("bpr", {"n_layers": 2})


def test_benchmark_selects_on_validation_reports_and_resumes(tmp_path, small_folder, monkeypatch, capsys):
    out = tmp_path / "report"
    argv = ["benchmark", "--data", str(small_folder), "--models", "bpr,rlmultimodalrec:n_layers=1",
            "--seeds", "1,2", "--epochs", "3", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())["models"]
    bpr = results["bpr"]
    assert set(bpr) >= {"params", "valid", "test", "seconds_per_epoch", "wall_seconds"}
    assert bpr["seeds"] == [1, 2] and bpr["test"]["recall@20"]["std"] >= 0
    best = max(bpr["grid"], key=lambda point: point["valid_recall@20"])
    assert bpr["chosen"] == best["params"]
    assert results["rlmultimodalrec:n_layers=1"]["params"]["n_layers"] == 1
    for name in ("results.md", "results.csv", "recall_ndcg.png", "validation_curves.png", "modality_shares.png"):
        assert (out / name).stat().st_size > 0
    assert "rlmultimodalrec:n_layers=1" in (out / "results.md").read_text()

    def no_training(self, resume=False):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(Trainer, "fit", no_training)
    assert main(argv) == 0  # every run is on disk: nothing retrains
    assert json.loads((out / "results.json").read_text())["models"]["bpr"]["test"] == bpr["test"]


def test_a_run_under_other_defaults_is_not_taken_for_a_finished_one():
    current = RunConfig.for_model("lightgcn", seed=1)
    assert run_key(current) == run_key(RunConfig.for_model("lightgcn", seed=1))
    older_defaults = RunConfig.for_model("lightgcn", seed=1)
    older_defaults.params.pop("negative_candidates")
    assert run_key(older_defaults) != run_key(current)
    assert run_key(RunConfig.for_model("lightgcn", seed=2)) != run_key(current)
    assert run_key(RunConfig.for_model("lightgcn", seed=1, learning_rate=0.01)) != run_key(current)
    assert run_key(RunConfig.for_model("lightgcn", seed=1, threads=1)) == run_key(current)


def test_models_needing_features_are_skipped_with_a_reason(tmp_path):
    folder = save_mmrec(generate(120, 60, 1500, {}, seed=1), tmp_path / "plain")
    out = tmp_path / "report"
    assert main(["benchmark", "--data", str(folder), "--models", "bpr,vbpr", "--seeds", "1",
                 "--epochs", "2", "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())["models"]
    assert "needs item features" in results["vbpr"]["skipped"]
    assert "recall@20" in results["bpr"]["test"]
    assert "skipped" in (out / "results.md").read_text()
