"""How good are the served rules for users and items the model never trained on?

Unknown users (fold-in): 10 % of the users with test items (seeded) are left out of training entirely (their
train, valid and test interactions removed), RLMultimodalRec is trained with its defaults on the rest, and each
left-out user is recommended from its training items given at query time (Recommender.recommend_for_history).
Their test Recall@20 / NDCG@20 is set against the same users' figures from the model trained on everyone and
served normally (Recommender.recommend). Both rank all items with the user's training items excluded.

New items: RLMultimodalRec trained with 20 % of the items held out (cold-items:0.2); each cold item is then
added live under a new id from its raw features (Recommender.add_items) and the test Recall@20 on cold items is
computed with the copies standing in for the originals, against the evaluator's figure for the model's own cold
rule on the same run.

    python benchmarks/fold_in.py [--seeds 1,2,3] [--datasets amazon-scientific-mm,lastfm-2k-multimodal]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SERVING_DOC, data_config, load_shared, machine, mean_std, save_report, update_readme  # noqa: E402

from gatedrec.config import RunConfig  # noqa: E402
from gatedrec.data import Dataset, resplit  # noqa: E402
from gatedrec.evaluation.metrics import per_user_metrics  # noqa: E402
from gatedrec.progress import progress_bar  # noqa: E402
from gatedrec.serving import NewItem, Recommender  # noqa: E402
from gatedrec.training import Trainer  # noqa: E402

HELD_OUT_SHARE = 0.1
COLD_SPLIT = "cold-items:0.2"
K = 20


def held_out_users(dataset: Dataset, seed: int) -> np.ndarray:
    with_test = np.flatnonzero(np.diff(dataset.test.indptr) > 0)
    rng = np.random.default_rng([seed, 10])
    return np.sort(rng.choice(with_test, int(round(HELD_OUT_SHARE * len(with_test))), replace=False))


def without_users(dataset: Dataset, users: np.ndarray) -> Dataset:
    """The data set with every interaction of ``users`` removed (the users keep their index, untrained)."""
    all_users, items, labels = dataset.labelled_interactions()
    kept = ~np.isin(all_users, users)
    return Dataset.from_labels(f"{dataset.name} without {len(users)} users", all_users[kept], items[kept],
                               labels[kept], dataset.n_users, dataset.n_items, dataset.modalities)


def train_run(dataset: Dataset, name: str, seed: int, out: Path, split: str | None = None) -> dict:
    config = RunConfig.for_model("rlmultimodalrec", seed=seed)
    config.data.path, config.data.split = data_config(name)["path"], split
    return Trainer(config, dataset, out, quiet=True).fit()


def served_metrics(rankings: list[list[int]], relevant: list[np.ndarray]) -> dict[str, float]:
    hits = np.array([[item in set(wanted) for item in ranked] + [False] * (K - len(ranked))
                     for ranked, wanted in zip(rankings, relevant)])
    per_user = per_user_metrics(hits, np.array([len(wanted) for wanted in relevant]), topks=(K,))
    return {name: float(values.mean()) for name, values in per_user.items() if name in ("recall@20", "ndcg@20")}


def items_of(dataset: Dataset, split: str, user: int) -> np.ndarray:
    matrix = dataset.split(split)
    return matrix.indices[matrix.indptr[user] : matrix.indptr[user + 1]]


def fold_in_case(name: str, seed: int, scratch: Path) -> dict:
    dataset = load_shared(name)
    users = held_out_users(dataset, seed)
    relevant = [items_of(dataset, "test", user) for user in users]
    train_run(dataset, name, seed, scratch / "full")
    full = Recommender.load(scratch / "full")
    known = [[full.item_index[item] for item, _ in full.recommend(full.user_ids[user], K)] for user in users]
    partial_run = scratch / "partial"
    train_run(without_users(dataset, users), name, seed, partial_run)
    partial = Recommender.load(partial_run)
    folded = [[partial.item_index[item] for item, _ in partial.recommend_for_history(
        [partial.item_ids[item] for item in items_of(dataset, "train", user)], K)] for user in users]
    trained, unknown = served_metrics(known, relevant), served_metrics(folded, relevant)
    return {"dataset": name, "seed": seed, "held_out_users": len(users), "trained": trained, "folded_in": unknown,
            "ratio_recall@20": unknown["recall@20"] / trained["recall@20"]}


def new_items_case(name: str, seed: int, scratch: Path) -> dict:
    dataset = resplit(load_shared(name), f"{COLD_SPLIT}:{seed}")
    metrics = train_run(dataset, name, seed, scratch / "cold", f"{COLD_SPLIT}:{seed}")
    recommender = Recommender.load(scratch / "cold")
    cold = np.flatnonzero(~dataset.warm_items)
    recommender.add_items([NewItem(f"copy-{item}", features={
        modality: dataset.modalities[modality].features[item].tolist() for modality in dataset.modalities
        if dataset.modalities[modality].present[item]}) for item in cold])
    copy_row = {item: recommender.item_index[f"copy-{item}"] for item in cold}
    view = recommender.items.view["embeddings"]
    is_cold = ~dataset.warm_items
    test_users = [user for user in range(dataset.n_users) if is_cold[items_of(dataset, "test", user)].any()]
    rankings, relevant = [], []
    for user in test_users:
        excluded = np.concatenate([items_of(dataset, "train", user), cold])  # the originals: the copies stand in
        scores = view @ recommender.users[user]
        scores[excluded] = -np.inf
        rankings.append(np.argsort(-scores, kind="stable")[:K].tolist())
        relevant.append(np.array([copy_row[item] for item in items_of(dataset, "test", user) if is_cold[item]]))
    served = served_metrics(rankings, relevant)
    copies = set(copy_row.values())
    slots = np.mean([np.mean([item in copies for item in ranked]) for ranked in rankings])
    return {"dataset": name, "seed": seed, "cold_items": len(cold), "test_users_with_cold_items": len(test_users),
            "model_cold_rule": {key: metrics["test_cold"][key] for key in ("recall@20", "ndcg@20")},
            "added_live": served, "added_share_of_top20": float(slots),
            "added_share_of_catalogue": len(cold) / dataset.n_items}


def markdown(result: dict) -> str:
    lines = [f"Machine: {result['machine']}.", "",
             f"Unknown users: {HELD_OUT_SHARE:.0%} of the users with test items left out of training, recommended "
             "from their training items at query time (fold-in), against the same users served by the model "
             f"trained on everyone; RLMultimodalRec defaults, seeds {result['seeds']}, test, all items ranked, "
             "training items excluded.", "",
             "| data set | users | trained R@20 | fold-in R@20 | trained N@20 | fold-in N@20 "
             "| fold-in / trained R@20 |",
             "|---|---|---|---|---|---|---|"]
    for name, cases in group(result["fold_in"]).items():
        ratio = spread([case["ratio_recall@20"] for case in cases], digits=3)
        lines.append(f"| {name} | {cases[0]['held_out_users']} | {cell(cases, 'trained', 'recall@20')} | "
                     f"{cell(cases, 'folded_in', 'recall@20')} | {cell(cases, 'trained', 'ndcg@20')} | "
                     f"{cell(cases, 'folded_in', 'ndcg@20')} | {ratio} |")
    if result.get("new_items"):
        lines += ["", f"New items: {COLD_SPLIT} (the split's seed = the run's seed), each cold item added live from "
                  "its raw features under a new id; test Recall@20 / NDCG@20 on cold items, the copies standing in "
                  "for the originals, against the model's own cold rule (the evaluator's test_cold).", "",
                  "| data set | cold items | model's cold rule R@20 | added live R@20 | model N@20 | added live N@20 "
                  "| added items' share of top-20 slots (of the catalogue) |",
                  "|---|---|---|---|---|---|---|"]
        for name, cases in group(result["new_items"]).items():
            lines.append(f"| {name} | {cases[0]['cold_items']} | {cell(cases, 'model_cold_rule', 'recall@20')} | "
                         f"{cell(cases, 'added_live', 'recall@20')} | {cell(cases, 'model_cold_rule', 'ndcg@20')} | "
                         f"{cell(cases, 'added_live', 'ndcg@20')} | "
                         f"{spread([case['added_share_of_top20'] for case in cases], 3)} "
                         f"({cases[0]['added_share_of_catalogue']:.3f}) |")
    return "\n".join(lines) + "\n"


def cell(cases: list[dict], part: str, metric: str) -> str:
    return spread([case[part][metric] for case in cases])


def spread(values: list[float], digits: int = 4) -> str:
    stats = mean_std(values)
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"


def group(cases: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for case in cases:
        grouped.setdefault(case["dataset"], []).append(case)
    return grouped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--datasets", default="amazon-scientific-mm,lastfm-2k-multimodal")
    parser.add_argument("--new-items-datasets", default="amazon-scientific-mm")
    args = parser.parse_args()
    seeds = [int(seed) for seed in args.seeds.split(",")]
    names, new_item_names = args.datasets.split(","), [name for name in args.new_items_datasets.split(",") if name]
    result = {"machine": machine(), "seeds": seeds, "fold_in": [], "new_items": []}
    with progress_bar() as progress, tempfile.TemporaryDirectory() as scratch:
        task = progress.add_task("cases", total=len(seeds) * (len(names) + len(new_item_names)), unit="case")
        for name in names:
            for seed in seeds:
                result["fold_in"].append(fold_in_case(name, seed, Path(scratch) / f"{name}-{seed}"))
                print(json.dumps(result["fold_in"][-1]))
                progress.advance(task)
        for name in new_item_names:
            for seed in seeds:
                result["new_items"].append(new_items_case(name, seed, Path(scratch) / f"{name}-{seed}-new"))
                print(json.dumps(result["new_items"][-1]))
                progress.advance(task)
    save_report("fold_in", result, markdown(result))
    update_readme(markdown(result), "fold-in", SERVING_DOC)


if __name__ == "__main__":
    main()
