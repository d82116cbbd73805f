"""`gatedrec study gates` on a run whose truth is known: generated data with a planted informative modality."""

import json

import numpy as np
import pytest

from gatedrec.cli import main
from gatedrec.data.synthetic import generate, save_mmrec


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    folder = save_mmrec(generate(1500, 2000, 20000, {"visual": 64, "text": 48}, seed=1),
                        tmp_path_factory.mktemp("data") / "planted")
    (folder / "item_text.tsv").write_text("itemID\ttext\n" + "".join(
        f"{item}\tThing {item}. Shop Root {'Lamps' if item % 2 else 'Chairs'} Indoor. Brand.\n" for item in range(2000)))
    run = tmp_path_factory.mktemp("runs") / "scalar"
    assert main(["train", "--data", str(folder), "--model", "rlmultimodalrec", "--epochs", "40", "--seed", "1",
                 "--set", "gate=scalar", "--set", "content_weight_decay=1e-4", "--set", "gate_weight_decay=1e-4",
                 "--set", "batch_size=512", "--out", str(run), "--quiet"]) == 0
    return run


def test_the_study_recovers_the_planted_groups(planted_run, tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["study", "gates", "--run", str(planted_run), "--out", str(out)]) == 0
    assert "visual share over" in capsys.readouterr().out
    result = json.loads((out / "results.json").read_text())
    by_group = {row["label"]: row["mean_share"] for row in result["planted_groups"]}
    assert by_group["visual"] - by_group["text"] > 0.2
    assert result["distribution"]["visual"]["std"] > 0.1
    assert {row["label"] for row in result["categories"]} == {"Lamps Indoor", "Chairs Indoor"}
    most, least = result["extremes"]["most"], result["extremes"]["least"]
    assert most[0]["visual_share"] > least[0]["visual_share"] and most[0]["title"].startswith("Thing ")
    assert set(result["feature_norms"]) == {"visual", "text"}
    for plot in ("shares.png", "share_vs_popularity.png", "share_vs_feature_norm.png"):
        assert (out / plot).stat().st_size > 1000
    assert "| visual |" in (out / "results.md").read_text()
    groups = np.array([row["mean_share"] for row in result["planted_groups"]])
    assert np.all((groups > 0) & (groups < 1))


def test_a_run_without_a_gate_is_refused(tmp_path, small_folder, capsys):
    run = tmp_path / "lightgcn"
    assert main(["train", "--data", str(small_folder), "--model", "lightgcn", "--epochs", "1", "--out", str(run),
                 "--quiet"]) == 0
    assert main(["study", "gates", "--run", str(run), "--out", str(tmp_path / "o")]) == 2
    assert "has no gate to study" in capsys.readouterr().err
