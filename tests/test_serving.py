"""The Recommender API on trained runs: ranking as the model ranks, fold-in, explanations that recover planted
structure, new items by the cold-item rule, persistence, and the run folder's checks."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from gatedrec import NewItem, Recommender
from gatedrec.cli import main
from gatedrec.config import RunConfig
from gatedrec.data import load_data, load_mmrec
from gatedrec.data.synthetic import generate, save_mmrec
from gatedrec.errors import GatedRecError
from gatedrec.serving import Conflict, UnknownId
from gatedrec.serving.artifact import FOLDER, export_run
from gatedrec.serving.recommender import ItemTable
from gatedrec.serving.topk import HnswIndex, top_k
from gatedrec.training import Trainer, build_model
from together import run_together


def train(folder, out, model="rlmultimodalrec", epochs=6, split=None, **overrides):
    config = RunConfig.for_model(model, epochs=epochs, seed=1, batch_size=512)
    config.apply(overrides)
    config.data.path, config.data.split = str(folder), split
    Trainer(config, load_data(config.data), out, quiet=True).fit()
    return out


@pytest.fixture(scope="module")
def gated_run(tmp_path_factory, small_folder):
    return train(small_folder, tmp_path_factory.mktemp("runs") / "gated")


@pytest.fixture
def fresh_run(tmp_path, gated_run):
    """A copy of the trained run that a test may add items to."""
    return shutil.copytree(gated_run, tmp_path / "run")


def model_of(run):
    config = RunConfig.load(run / "config.yaml")
    dataset = load_data(config.data)
    model = build_model(config, dataset)
    model.load_state_dict(torch.load(run / "checkpoints" / "best.pt", weights_only=False)["model"])
    return model.eval(), dataset


def test_recommendations_are_the_models_ranking_without_seen_items(gated_run):
    model, dataset = model_of(gated_run)
    users, items = (table.numpy() for table in model.embeddings())
    recommender = Recommender.load(gated_run)
    for user in range(0, dataset.n_users, 37):
        scores = items @ users[user]
        seen = dataset.train.indices[dataset.train.indptr[user] : dataset.train.indptr[user + 1]]
        scores[seen] = -np.inf
        expected = np.argsort(-scores, kind="stable")[:10]
        got = recommender.recommend(str(user), k=10)
        assert [int(item) for item, _ in got] == expected.tolist()
        assert [score for _, score in got] == pytest.approx(scores[expected].tolist(), rel=1e-5)
        assert not set(seen) & {int(item) for item, _ in got}
    batch = recommender.recommend_batch(["0", "5"], k=10)
    for user, ranked in zip(("0", "5"), batch):
        one_by_one = recommender.recommend(user, k=10)
        assert [item for item, _ in ranked] == [item for item, _ in one_by_one]
        assert [score for _, score in ranked] == pytest.approx([score for _, score in one_by_one], rel=1e-5)
    with_seen = recommender.recommend("0", k=200, exclude_seen=False)
    assert len(with_seen) == dataset.n_items


def test_graph_rule_rebuilds_every_score_from_the_history(gated_run):
    recommender = Recommender.load(gated_run)
    assert recommender.manifest.fold_in == "graph"
    for user in ("0", "17", "123"):
        for item, score in recommender.recommend(user, k=5):
            explanation = recommender.explain(user, item, top=10_000)
            total = explanation.own + sum(value for _, value in explanation.because)
            assert total == pytest.approx(score, rel=1e-4, abs=1e-6)
            assert len(explanation.because) == len(recommender.history(user))
            contributions = [value for _, value in explanation.because]
            assert contributions == sorted(contributions, reverse=True)
            assert set(explanation.shares) == {"visual", "text"}
            assert sum(explanation.shares.values()) == pytest.approx(1.0, abs=1e-5)


def test_models_without_the_graph_rule_fold_in_by_the_mean(tmp_path, small_folder):
    run = train(small_folder, tmp_path / "bpr", model="bpr", epochs=3)
    recommender = Recommender.load(run)
    assert recommender.manifest.fold_in == "mean" and recommender.content_model is None
    item, score = recommender.recommend("3", k=1)[0]
    explanation = recommender.explain("3", item, top=10_000)
    assert explanation.shares is None
    assert explanation.own + sum(value for _, value in explanation.because) == pytest.approx(score, rel=1e-4)
    history = recommender.history("3")
    folded = recommender.recommend_for_history(history, k=5)
    items = np.load(run / FOLDER / "item_embeddings.npy")
    mean_user = items[[int(item) for item in history]].mean(axis=0)
    expected = top_k(items @ mean_user, 5, np.array([int(item) for item in history]))[0]
    assert [int(item) for item, _ in folded] == expected.tolist()


def test_history_fold_in_excludes_the_history_and_checks_its_ids(gated_run):
    recommender = Recommender.load(gated_run)
    history = recommender.history("4")
    ranked = recommender.recommend_for_history(history + history[:1], k=10)
    assert len(ranked) == 10 and not set(history) & {item for item, _ in ranked}
    scores = [score for _, score in ranked]
    assert scores == sorted(scores, reverse=True)
    explanation = recommender.explain_for_history(history, ranked[0][0], top=10_000)
    assert explanation.own == 0.0
    assert sum(value for _, value in explanation.because) == pytest.approx(ranked[0][1], rel=1e-4)
    with pytest.raises(UnknownId, match="unknown item 'nope'"):
        recommender.recommend_for_history(["nope"])
    with pytest.raises(GatedRecError, match="history is empty"):
        recommender.recommend_for_history([])
    with pytest.raises(UnknownId, match="unknown user 'ghost'"):
        recommender.recommend("ghost")


def test_similar_items_are_the_closest_final_embeddings(gated_run):
    recommender = Recommender.load(gated_run)
    items = np.load(gated_run / FOLDER / "item_embeddings.npy")
    unit = items / np.linalg.norm(items, axis=1, keepdims=True)
    similar = recommender.similar_items("7", k=5)
    cosines = unit @ unit[7]
    cosines[7] = -np.inf
    assert [int(item) for item, _ in similar] == np.argsort(-cosines, kind="stable")[:5].tolist()


def test_explanations_recover_the_planted_structure(tmp_path):
    """Generated data plants which modality is informative for each item and the latent cluster of each item:
    the gate's shares must separate the groups, and the history item named first must share the recommended
    item's cluster far more often than a history item picked at random."""
    generated = generate(1500, 2000, 20000, {"visual": 64, "text": 48}, seed=1)  # the demo's long-tail data
    folder = save_mmrec(generated, tmp_path / "planted")
    run = train(folder, tmp_path / "run", epochs=40, gate="scalar", content_weight_decay=1e-4,
                gate_weight_decay=1e-4)
    recommender = Recommender.load(run)
    groups = pd.read_csv(folder / "item_groups.tsv", sep="\t")
    shares = np.load(run / FOLDER / "item_shares.npy")[:, 0]
    visual_informative = (groups["informative"] == "visual").to_numpy()
    assert shares[visual_informative].mean() - shares[~visual_informative].mean() > 0.2
    cluster = groups["cluster"].to_numpy()
    named_first, at_random = [], []
    for user in range(0, 1500, 5):
        history = [int(item) for item in recommender.history(str(user))]
        for item, _ in recommender.recommend(str(user), k=3):
            explanation = recommender.explain(str(user), item)
            named_first.append(cluster[int(explanation.because[0][0])] == cluster[int(item)])
            at_random.append(np.mean(cluster[history] == cluster[int(item)]))
    assert np.mean(named_first) > 2 * np.mean(at_random)


def test_a_new_item_is_placed_as_the_model_places_a_cold_item(tmp_path, small_folder):
    run = train(small_folder, tmp_path / "cold", split="cold-items:0.2:1", epochs=4)
    model, dataset = model_of(run)
    final_items = model.embeddings()[1].numpy()
    cold = np.flatnonzero(~dataset.warm_items)[:5]
    recommender = Recommender.load(run)
    new = [NewItem(f"copy-of-{item}", title=f"copy {item}", features={
        name: dataset.modalities[name].features[item].tolist() for name in dataset.modalities}) for item in cold]
    assert recommender.add_items(new) == [item.item for item in new]
    placed = np.stack([recommender.items.view["embeddings"][recommender.item_index[item.item]] for item in new])
    np.testing.assert_allclose(placed, final_items[cold], rtol=1e-4, atol=1e-6)
    for item, original in zip(new, cold):
        details = recommender.item_details(item.item)
        assert details["added"] and details["title"] == f"copy {original}"
        np.testing.assert_allclose(list(details["shares"].values()),
                                   np.load(run / FOLDER / "item_shares.npy")[original], atol=1e-5)
    scores = recommender.recommend("2", k=recommender.n_items)
    assert {item.item for item in new} <= {item for item, _ in scores}


def test_added_items_persist_across_restarts_and_bad_lines_are_skipped(fresh_run, small_folder, caplog):
    features = np.load(small_folder / "image_feat.npy")[0]
    recommender = Recommender.load(fresh_run)
    recommender.add_items([NewItem("fresh-1", title="Fresh", features={"visual": features.tolist()})])
    assert recommender.similar_items("fresh-1", k=3)
    with open(fresh_run / "added_items.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"item": "half-writ')
    restarted = Recommender.load(fresh_run)
    assert restarted.item_details("fresh-1")["added"] and restarted.n_items == recommender.n_items
    assert "not an added item" in caplog.text
    assert restarted.recommend_for_history(["fresh-1", "3"], k=5)
    with pytest.raises(Conflict, match="exists already"):
        restarted.add_items([NewItem("fresh-1", features={"visual": features.tolist()})])


@pytest.mark.parametrize("item, message", [
    (NewItem("x", features={"visual": [1.0, 2.0]}), "have 2 values; this run's visual features have 16"),
    (NewItem("x", features={"audio": [1.0]}), "unknown modality 'audio'"),
    (NewItem("x"), "has no content"),
    (NewItem("x", features={"visual": [float("nan")] * 16}), "must be finite"),
    (NewItem("x", text="a red bucket"), "does not record which encoder made its text features"),
    (NewItem("", features={"visual": [1.0] * 16}), "non-empty string"),
    (NewItem("3", features={"visual": [1.0] * 16}), "exists already"),
])
def test_bad_new_items_are_refused_and_nothing_is_added(fresh_run, item, message):
    recommender = Recommender.load(fresh_run)
    before = recommender.n_items
    with pytest.raises(GatedRecError, match=message):
        recommender.add_items([item])
    assert recommender.n_items == before and not (fresh_run / "added_items.jsonl").exists()


def test_new_item_text_is_encoded_by_the_runs_text_encoder(tmp_path):
    generated = generate(200, 100, 2500, {"visual": 8, "text": 384}, seed=4)
    run = train(save_mmrec(generated, tmp_path / "data"), tmp_path / "run", epochs=2)
    assert main(["export", "--run", str(run), "--text-encoder", "all-MiniLM-L6-v2"]) == 0
    recommender = Recommender.load(run)
    recommender.add_items([NewItem("bucket", title="A red bucket", text="A red plastic bucket, 10 litres")])
    details = recommender.item_details("bucket")
    assert details["shares"]["visual"] == 0.0 and details["shares"]["text"] == pytest.approx(1.0)
    assert recommender.similar_items("bucket", k=3)


def test_new_item_image_is_encoded_by_the_runs_image_encoder(tmp_path):
    from raw_samples import draw

    generated = generate(200, 100, 2500, {"visual": 1280, "text": 8}, seed=4)
    run = train(save_mmrec(generated, tmp_path / "data"), tmp_path / "run", epochs=2)
    assert main(["export", "--run", str(run), "--image-encoder", "efficientnet-lite0"]) == 0
    picture = tmp_path / "square.png"
    draw("square", "red", size=160).save(picture)
    recommender = Recommender.load(run)
    recommender.add_items([NewItem("square", image_file=str(picture), image=str(picture))])
    details = recommender.item_details("square")
    assert details["shares"]["visual"] == pytest.approx(1.0) and details["image"] == str(picture)


def test_the_hnsw_index_serves_the_same_lists_on_a_small_catalogue(fresh_run, small_folder):
    exact, approximate = Recommender.load(fresh_run), Recommender.load(fresh_run, index="hnsw")
    for user in ("0", "9", "33"):
        assert [item for item, _ in approximate.recommend(user, k=10)] == \
            [item for item, _ in exact.recommend(user, k=10)]
    features = np.load(small_folder / "text_feat.npy")[3]
    approximate.add_items([NewItem("indexed", features={"text": features.tolist()})])
    assert "indexed" in {item for item, _ in approximate.recommend("0", k=approximate.n_items)}
    with pytest.raises(GatedRecError, match="index 'annoy' is unknown"):
        Recommender.load(fresh_run, index="annoy")


def test_concurrent_additions_and_reads(fresh_run, small_folder):
    recommender = Recommender.load(fresh_run)
    features = np.load(small_folder / "text_feat.npy")
    problems = []

    def add(worker):
        for number in range(15):
            item = f"w{worker}-{number}"
            try:
                recommender.add_items([NewItem(item, features={"text": features[number].tolist()})])
                assert recommender.similar_items(item, k=5)
            except Exception as error:  # noqa: BLE001 -- collected and reported below
                problems.append(repr(error))

    def read():
        for number in range(60):
            try:
                ranked = recommender.recommend(str(number % 50), k=20)
                assert len(ranked) == 20 and all(item in recommender.item_index for item, _ in ranked)
            except Exception as error:  # noqa: BLE001
                problems.append(repr(error))

    run_together([(add, worker) for worker in range(3)] + [(read,)] * 3)
    assert problems == []
    assert len(recommender.added) == 45
    lines = (fresh_run / "added_items.jsonl").read_text().splitlines()
    assert len(lines) == 45 and len({json.loads(line)["item"] for line in lines}) == 45


def test_the_run_folder_is_checked_before_serving(fresh_run, tmp_path):
    (fresh_run / FOLDER / "user_own.npy").write_bytes(b"garbage")
    with pytest.raises(GatedRecError, match="user_own.npy is corrupt"):
        Recommender.load(fresh_run)
    (fresh_run / FOLDER / "user_own.npy").unlink()
    with pytest.raises(GatedRecError, match="user_own.npy is missing"):
        Recommender.load(fresh_run)
    manifest = json.loads((fresh_run / FOLDER / "manifest.json").read_text())
    (fresh_run / FOLDER / "manifest.json").write_text(json.dumps(manifest | {"format": 99}))
    with pytest.raises(GatedRecError, match="serving format 99"):
        Recommender.load(fresh_run)
    shutil.rmtree(fresh_run / FOLDER)
    with pytest.raises(GatedRecError, match="gatedrec export --run"):
        Recommender.load(fresh_run)
    with pytest.raises(GatedRecError, match="does not exist"):
        Recommender.load(tmp_path / "nowhere")


def test_serve_stops_with_one_message_on_a_broken_run(fresh_run, capsys):
    (fresh_run / FOLDER / "item_ids.json").write_text("[]")
    assert main(["serve", "--run", str(fresh_run), "--port", "1"]) == 2
    assert "item_ids.json is corrupt" in capsys.readouterr().err


def test_export_rebuilds_the_same_serving_files(fresh_run):
    before = (fresh_run / FOLDER / "item_embeddings.npy").read_bytes()
    shutil.rmtree(fresh_run / FOLDER)
    assert main(["export", "--run", str(fresh_run)]) == 0
    assert (fresh_run / FOLDER / "item_embeddings.npy").read_bytes() == before
    assert Recommender.load(fresh_run).recommend("1", k=3)


def test_a_run_copied_elsewhere_serves_without_its_data(tmp_path, small_folder):
    data = shutil.copytree(small_folder, tmp_path / "data")
    run = train(data, tmp_path / "run", epochs=2)
    expected = Recommender.load(run).recommend("6", k=5)
    moved = shutil.move(str(run), str(tmp_path / "elsewhere"))
    shutil.rmtree(data)
    assert Recommender.load(moved).recommend("6", k=5) == expected


def test_raw_ids_and_titles_come_from_the_data_folder(tmp_path, small_folder):
    data = shutil.copytree(small_folder, tmp_path / "data")
    dataset = load_mmrec(data)
    pd.DataFrame({"userID": range(dataset.n_users), "raw": [f"U{user:04d}" for user in range(dataset.n_users)]}) \
        .to_csv(data / "u_id_mapping.tsv", sep="\t", index=False)
    pd.DataFrame({"asin": [f"B{item:05d}" for item in range(dataset.n_items)], "itemID": range(dataset.n_items)}) \
        .to_csv(data / "i_id_mapping.tsv", sep="\t", index=False)
    pd.DataFrame({"itemID": range(dataset.n_items), "text": [f"Thing {item}. More words" for item in
                                                             range(dataset.n_items)]}) \
        .to_csv(data / "item_text.tsv", sep="\t", index=False)
    recommender = Recommender.load(train(data, tmp_path / "run", epochs=2))
    ranked = recommender.recommend("U0003", k=3)
    assert all(item.startswith("B") for item, _ in ranked)
    assert recommender.item_details("B00007")["title"] == "Thing 7"
    assert recommender.history("U0003")[0].startswith("B")


def test_export_writes_a_complete_folder_or_nothing(tmp_path, gated_run, monkeypatch):
    model, dataset = model_of(gated_run)
    target = shutil.copytree(gated_run, tmp_path / "run")
    before = sorted(path.name for path in (target / FOLDER).iterdir())

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("gatedrec.serving.artifact.save_npy", broken)
    with pytest.raises(OSError):
        export_run(model, dataset, {}, None, target)
    assert sorted(path.name for path in (target / FOLDER).iterdir()) == before
    assert [path.name for path in target.iterdir() if path.name.startswith(".")] == []


def test_item_table_views_do_not_change_when_it_grows():
    table = ItemTable({"embeddings": np.zeros((2, 3), np.float32)})
    view = table.view
    for number in range(5):
        table.append({"embeddings": np.full((1, 3), number + 1, np.float32)})
    assert len(view["embeddings"]) == 2 and not view["embeddings"].any()
    assert table.view["embeddings"][:, 0].tolist() == [0, 0, 1, 2, 3, 4, 5]


def test_hnsw_finds_nearly_the_exact_top_k_and_honours_exclusions():
    rng = np.random.default_rng(0)
    items = rng.standard_normal((5000, 16)).astype(np.float32) * rng.lognormal(0, 0.3, (5000, 1)).astype(np.float32)
    index = HnswIndex(items)
    recalls = []
    for query in rng.standard_normal((50, 16)).astype(np.float32):
        exact, _ = top_k(items @ query, 20)
        found, scores = index.search(query, items, 20)
        recalls.append(len(np.intersect1d(exact, found)) / 20)
        np.testing.assert_allclose(scores, items[found] @ query, rtol=1e-5)
        excluded = exact[:10]
        kept, _ = index.search(query, items, 20, excluded)
        assert len(kept) == 20 and not set(excluded) & set(kept)
    assert np.mean(recalls) > 0.9


def test_recommend_and_similar_commands(gated_run, capsys):
    assert main(["recommend", "--run", str(gated_run), "--user", "0", "--k", "4", "--json", "--explain"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert len(answer["items"]) == 4 and "because" in answer["items"][0]["explanation"]
    assert main(["recommend", "--run", str(gated_run), "--history", "1,2,3", "--k", "3"]) == 0
    assert "top 3 for a history of 3 item(s)" in capsys.readouterr().out
    assert main(["similar", "--run", str(gated_run), "--item", "5", "--k", "2", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["items"]) == 2
    assert main(["recommend", "--run", str(gated_run), "--user", "ghost"]) == 2
    assert "unknown user 'ghost'" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: "--k: 0 is out of range"
        main(["recommend", "--run", str(gated_run), "--user", "0", "--k", "0"])
