import numpy as np
import pandas as pd
import pytest
import yaml

from gatedrec.cli import main
from gatedrec.config import DataConfig
from gatedrec.data import load_data, load_mmrec
from gatedrec.features import encode_cached, image_encoder, text_encoder
from raw_samples import COLOURS, SHAPES, draw


def test_image_encoder_puts_same_shapes_closer(tmp_path):
    paths, shapes = [], []
    for shape in SHAPES:
        for colour in COLOURS:
            paths.append(tmp_path / f"{shape}-{colour}.png")
            draw(shape, colour, size=160).save(paths[-1])
            shapes.append(shape)
    features = image_encoder().encode(paths, quiet=True)
    assert features.shape == (6, 1280)
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    similarity = unit @ unit.T
    same = np.equal.outer(shapes, shapes) & ~np.eye(6, dtype=bool)
    different = ~np.equal.outer(shapes, shapes)
    assert similarity[same].min() > similarity[different].max()


def test_undecodable_image_gets_a_nan_row(tmp_path):
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    draw("circle", "red").save(good)
    bad.write_bytes(b"not an image")
    features = image_encoder().encode([good, bad], quiet=True)
    assert np.isfinite(features[0]).all() and np.isnan(features[1]).all()


def test_text_encoder_is_offline_and_cached():
    encoder = text_encoder()
    texts = ["red lamp with a round shade", "red lamp with a round base", "box of laboratory gloves"]
    features, from_cache = encode_cached(encoder, texts, quiet=True)
    assert features.shape == (3, 384) and not from_cache
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    assert unit[0] @ unit[1] > unit[0] @ unit[2]
    again, from_cache = encode_cached(encoder, texts, quiet=True)
    assert from_cache and np.array_equal(again, features)


def test_features_text_builds_a_new_folder_and_leaves_the_source_alone(small_folder, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for path in small_folder.iterdir():
        (source / path.name).write_bytes(path.read_bytes())
    n_items = load_mmrec(source).n_items
    texts = pd.DataFrame({"itemID": range(n_items), "title": [f"item {i}" if i % 4 else "" for i in range(n_items)]})
    texts.to_csv(source / "texts.tsv", sep="\t", index=False)
    before = {path.name: path.read_bytes() for path in source.iterdir()}
    out = tmp_path / "with-text"
    assert main(["features", "text", "--data", str(source), "--text-file", "texts.tsv", "--column", "title",
                 "--name", "title", "--out", str(out), "--quiet"]) == 0
    assert {path.name: path.read_bytes() for path in source.iterdir()} == before
    dataset = load_mmrec(out)
    assert set(dataset.modalities) == {"visual", "text", "title"}
    title = dataset.modalities["title"]
    assert title.dim == 384 and not title.present[0] and title.present[1:4].all()
    description = yaml.safe_load((out / "dataset.yaml").read_text())
    assert description["modalities"]["title"] == "title_feat.npy@title_items.tsv"
    assert main(["train", "--data", str(out), "--epochs", "1", "--out", str(tmp_path / "run"), "--quiet"]) == 0


def test_features_text_names_a_bad_item_id(small_folder, tmp_path, capsys):
    (tmp_path / "texts.tsv").write_text("itemID\ttext\n0\tfine\n99999\tnot an item\n")
    assert main(["features", "text", "--data", str(small_folder), "--text-file", str(tmp_path / "texts.tsv"),
                 "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "texts.tsv, line 3: itemID '99999' is not an item id" in capsys.readouterr().err


def test_features_text_refuses_to_write_into_the_source(small_folder, capsys):
    assert main(["features", "text", "--data", str(small_folder), "--text-file", "x.tsv", "--out",
                 str(small_folder), "--quiet"]) == 2
    assert "is the source folder" in capsys.readouterr().err


def test_cold_item_split_holds_out_whole_items(small_folder):
    dataset = load_data(DataConfig(str(small_folder), split="cold-items:0.2"))
    train_items = np.flatnonzero(np.diff(dataset.train.tocsc().indptr) > 0)
    valid_items = np.unique(dataset.valid.indices)
    test_items = np.unique(dataset.test.indices)
    cold = np.setdiff1d(np.arange(dataset.n_items), train_items)
    assert len(cold) == round(0.2 * dataset.n_items)
    assert not np.intersect1d(np.intersect1d(valid_items, cold), np.intersect1d(test_items, cold)).size
    assert dataset.train.nnz + dataset.valid.nnz + dataset.test.nnz == load_mmrec(small_folder).train.nnz + \
        load_mmrec(small_folder).valid.nnz + load_mmrec(small_folder).test.nnz


@pytest.mark.parametrize("spec", ["cold-items", "cold-items:1.5", "warm:0.2", "cold-items:x"])
def test_bad_split_spec_is_explained(small_folder, spec, capsys):
    assert main(["train", "--data", str(small_folder), "--split", spec, "--out", "/tmp/unused-run", "--quiet"]) == 2
    assert "must look like cold-items:SHARE[:SEED]" in capsys.readouterr().err


def test_cold_items_are_ranked_from_content(small_folder, tmp_path):
    """On a cold split the metrics hold test_cold and test_warm; LightGCN can only guess on cold items
    (20 of 120 items: about 0.17 by chance), RLMultimodalRec and the content kNN rank them from content."""
    cold_recall = {}
    for model in ("lightgcn", "rlmultimodalrec", "content_knn"):
        out = tmp_path / model
        assert main(["train", "--data", str(small_folder), "--model", model, "--split", "cold-items:0.2",
                     "--epochs", "20", "--out", str(out), "--quiet"]) == 0
        metrics = yaml.safe_load((out / "metrics.json").read_text())
        assert {"test_cold", "test_warm"} <= set(metrics)
        cold_recall[model] = metrics["test_cold"]["recall@20"]
    assert cold_recall["lightgcn"] < 0.17
    assert cold_recall["rlmultimodalrec"] > cold_recall["lightgcn"] + 0.15
    assert cold_recall["content_knn"] > cold_recall["lightgcn"] + 0.15


def test_loading_the_text_model_shows_no_bar_of_its_own(capsys):
    text_encoder().encode(["a red bucket"], quiet=True)
    assert "Loading weights" not in capsys.readouterr().err
