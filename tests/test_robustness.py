"""`gatedrec study missing` and `gatedrec study noise`: the damage they do to features, and the studies end to end
on small generated data."""

import json

import numpy as np
import pytest

from gatedrec.cli import main
from gatedrec.data import load_mmrec
from gatedrec.data.synthetic import generate, save_mmrec
from gatedrec.errors import GatedRecError
from gatedrec.studies import missing, noise
from gatedrec.studies.corruption import check_level, dgmrec_missing, random_like
from gatedrec.studies.robustness import CLEAN_CONDITION, Condition, parse_study_models


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_mmrec(generate(300, 240, 6000, {"visual": 16, "text": 8}, seed=3),
                      tmp_path_factory.mktemp("data") / "small")


@pytest.fixture(scope="module")
def dataset(folder):
    return load_mmrec(folder)


def test_dgmrec_protocol_takes_two_thirds_of_each_popularity_stratum(dataset):
    lost = dgmrec_missing(dataset, "visual", "text", np.random.default_rng(0))
    degrees = np.asarray(dataset.train.sum(axis=0)).ravel()
    order = np.argsort(degrees, kind="stable")
    n_cold = round(0.7 * dataset.n_items)
    for stratum in (order[:n_cold], order[n_cold:]):
        any_lost = lost[stratum].any(axis=1)
        assert any_lost.sum() == round(2 / 3 * len(stratum))
        both = lost[stratum].all(axis=1).sum()
        text_only = (lost[stratum, 1] & ~lost[stratum, 0]).sum()
        image_only = (lost[stratum, 0] & ~lost[stratum, 1]).sum()
        assert text_only == image_only == round(0.25 * any_lost.sum())
        assert both == any_lost.sum() - 2 * text_only


def test_missing_masks_are_the_same_for_every_call_and_groups_follow_them(dataset):
    condition = Condition("visual", 0.4, "sweep")
    first, groups = missing.damaged(dataset, condition, 0)
    second, _ = missing.damaged(dataset, condition, 0)
    assert np.array_equal(first.modalities["visual"].present, second.modalities["visual"].present)
    assert (~first.modalities["visual"].present).sum() == round(0.4 * dataset.n_items)
    assert not first.modalities["visual"].features[~first.modalities["visual"].present].any()
    assert np.array_equal(groups["text only"], ~first.modalities["visual"].present)
    assert groups["every modality"].sum() + groups["text only"].sum() == dataset.n_items


def test_noise_corrupts_the_chosen_items_only_at_the_asked_scale(dataset):
    condition = Condition("visual", 0.5, "2")
    damaged, groups = noise.damaged(dataset, condition, 0)
    before, after = dataset.modalities["visual"].features, damaged.modalities["visual"].features
    changed = np.any(before != after, axis=1)
    assert np.array_equal(changed, groups["corrupted"]) and changed.sum() == dataset.n_items // 2
    added = (after - before)[changed]
    np.testing.assert_allclose(added.std(axis=0), 2 * before.std(axis=0), rtol=0.35)
    replaced, replaced_groups = noise.damaged(dataset, Condition("visual", 0.5, "replace"), 0)
    assert np.array_equal(replaced_groups["corrupted"], groups["corrupted"])  # the same items at every level


def test_random_vectors_have_the_features_mean_and_covariance():
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((3000, 4)) @ np.array([[2, 0, 0, 0], [1, 1, 0, 0], [0, 0, 3, 0], [0, 0, 1, 0.5]])
    rows += np.array([5, -1, 0, 2])
    drawn = random_like(rows.astype(np.float32), 20000, rng)
    np.testing.assert_allclose(drawn.mean(axis=0), rows.mean(axis=0), atol=0.1)
    np.testing.assert_allclose(np.cov(drawn.T), np.cov(rows.T), atol=0.25)


def test_bad_levels_models_and_protocols_are_refused():
    assert check_level("replace") == "replace" and check_level("0.50") == "0.5"
    for text in ("-1", "loud", "nan"):
        with pytest.raises(GatedRecError, match="--levels"):
            check_level(text)
    with pytest.raises(GatedRecError, match="missing=fill is unknown"):
        parse_study_models("freedom:missing=fill")
    with pytest.raises(GatedRecError, match="unknown"):
        missing.conditions("other", "visual", [0.5])
    assert missing.conditions("dgmrec", "visual", [])[0] == CLEAN_CONDITION


def test_noise_study_end_to_end_with_resume(folder, tmp_path, capsys):
    out = tmp_path / "noise"
    command = ["study", "noise", "--data", str(folder), "--models", "rlmultimodalrec,lightgcn", "--seeds", "1",
               "--shares", "0.5", "--levels", "1,replace", "--jobs", "1", "--out", str(out)]
    assert main(command + ["--models", "rlmultimodalrec,rlmultimodalrec:fusion=mean,lightgcn"]) == 0
    result = json.loads((out / "results.json").read_text())
    rows = {(row["model"], row["level"]): row for row in result["rows"]}
    assert len(result["rows"]) == 3 * 3
    gated = rows[("rlmultimodalrec", "replace")]
    assert set(gated["modality_share"]) == {"all", "corrupted", "clean"}
    assert set(gated["test"]) == {"recall@20", "ndcg@20"} and "mean" in gated["test"]["recall@20"]
    assert "modality_share" not in rows[("rlmultimodalrec:fusion=mean", "replace")]
    floor = rows[("lightgcn", "replace")]
    assert floor["test"] == rows[("lightgcn", "0")]["test"] and floor["relative_loss"] == 0.0
    assert len(list((out / "runs").glob("*.json"))) == 2 * 3 + 1  # LightGCN runs the clean data only
    for name in ("results.md", "results.csv", "recall.png", "shares.png", "masks/visual-0.5-1.npy"):
        assert (out / name).stat().st_size > 0
    capsys.readouterr()
    assert main(command + ["--models", "rlmultimodalrec,rlmultimodalrec:fusion=mean,lightgcn"]) == 0
    assert "7 runs (7 already done)" in capsys.readouterr().err


def test_missing_study_reports_item_groups(folder, tmp_path):
    out = tmp_path / "missing"
    assert main(["study", "missing", "--data", str(folder), "--models", "rlmultimodalrec,vbpr:missing=mean",
                 "--seeds", "1", "--out", str(out)]) == 0
    result = json.loads((out / "results.json").read_text())
    damaged = [row for row in result["rows"] if row["level"] == "dgmrec"]
    assert len(damaged) == 2
    assert {"every modality", "visual only", "text only", "none"} <= set(damaged[0]["groups"])
    assert damaged[0]["modality_share"]["text only"] == 0.0  # no image: the gate gives it no weight
    assert np.load(out / "masks" / "both-0.666667-dgmrec.npy").any()


def test_a_study_names_what_to_fix(folder, tmp_path, capsys):
    assert main(["study", "noise", "--data", str(folder), "--modality", "audio", "--out", str(tmp_path)]) == 2
    assert "no such modality; it has visual, text" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["study", "noise", "--data", str(folder), "--shares", "1.5", "--out", str(tmp_path)])
    assert "at most 1" in capsys.readouterr().err
    assert main(["study", "missing", "--data", str(folder), "--features", "visual", "--out", str(tmp_path)]) == 2
    assert "--features 'visual' must look like NAME=FILE" in capsys.readouterr().err
