"""``gatedrec study gates``: what a trained run's gate learned.

From the run's serving files (the items' modality shares read off the gate, their training popularity, titles)
and, where the run's data folder is at hand, its raw features, item texts and planted groups: the distribution of
the shares; the share against popularity and against each modality's feature norm (Spearman's rank correlation,
and the mean share by popularity quintile); the mean share by category (the second sentence of an Amazon item
text, "title. categories. brand.", cut to its first words) and by planted group (generated data); the most and
the least visual items with their titles. Writes results.json, results.md and PNG plots to ``--out``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from gatedrec.config import RunConfig
from gatedrec.data import load_mmrec
from gatedrec.errors import GatedRecError
from gatedrec.io import write_json, write_text_atomic
from gatedrec.report import plt, save_figure
from gatedrec.serving.artifact import FOLDER, load_array, load_document, load_item_info, read_manifest

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
EXTREMES = 10
CATEGORY_WORDS = 4
MIN_CATEGORY_ITEMS = 5
TOP_CATEGORIES = 12


def study_gates(run: Path, out: Path) -> dict:
    manifest = read_manifest(run)
    if not (run / FOLDER / "item_shares.npy").exists():
        raise GatedRecError(f"'{run}' was trained with {manifest.model}, which has no gate to study; "
                            "study a run of rlmultimodalrec with fusion=gate")
    names = list(manifest.modalities)
    shares = load_array(run, "item_shares")
    degrees = load_array(run, "item_degrees")
    titles = load_item_info(run).titles
    item_ids = load_document(run, "item_ids.json")
    first = names[0]
    result = {
        "run": str(run), "model": manifest.model, "items": len(shares), "modalities": names,
        "distribution": {name: distribution(shares[:, index]) for index, name in enumerate(names)},
        "popularity": popularity(shares[:, 0], degrees),
        "extremes": extremes(shares[:, 0], item_ids, titles, first),
    }
    data = data_folder(run)
    norms = feature_norms(data) if data is not None else {}
    if data is not None:
        result |= content_views(data, shares[:, 0], norms)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", result)
    write_text_atomic(out / "results.md", markdown(result))
    plot_distribution(out / "shares.png", shares, names)
    plot_against(out / "share_vs_popularity.png", np.log1p(degrees), shares[:, 0],
                 "training interactions (log(1 + count))", f"{first} share")
    if first in norms:
        plot_against(out / "share_vs_feature_norm.png", norms[first], shares[:, 0], f"{first} feature norm",
                     f"{first} share")
    return result


def data_folder(run: Path) -> Path | None:
    config = RunConfig.load(run / "config.yaml") if (run / "config.yaml").exists() else None
    folder = Path(config.data.path) if config is not None and config.data.path else None
    return folder if folder is not None and folder.is_dir() else None


def distribution(values: np.ndarray) -> dict:
    return {"mean": float(values.mean()), "std": float(values.std()), "min": float(values.min()),
            "max": float(values.max()),
            **{f"q{int(q * 100):02d}": float(np.quantile(values, q)) for q in QUANTILES}}


def popularity(share: np.ndarray, degrees: np.ndarray) -> dict:
    warm = degrees > 0
    quintile = pd.qcut(pd.Series(degrees[warm]).rank(method="first"), 5, labels=False)
    by_quintile = pd.Series(share[warm]).groupby(quintile.to_numpy()).mean()
    return {"spearman": rank_correlation(share[warm], degrees[warm]),
            "mean_share_by_quintile": [float(value) for value in by_quintile.to_numpy()]}


def rank_correlation(first: np.ndarray, second: np.ndarray) -> float | None:
    if np.ptp(first) == 0 or np.ptp(second) == 0:
        return None  # a constant has no rank order
    return float(spearmanr(first, second).statistic)


def extremes(share: np.ndarray, item_ids: list[str], titles: dict[str, str], name: str) -> dict:
    order = np.argsort(share, kind="stable")

    def rows(indices) -> list[dict]:
        return [{"item": item_ids[index], "title": titles.get(str(index)), f"{name}_share": float(share[index])}
                for index in indices]

    return {"most": rows(order[::-1][:EXTREMES]), "least": rows(order[:EXTREMES])}


def feature_norms(folder: Path) -> dict[str, np.ndarray]:
    """Each modality's raw feature norm per item (NaN where the item lacks it); none where the folder does not
    load."""
    try:
        dataset = load_mmrec(folder)
    except GatedRecError:
        return {}
    return {name: np.where(modality.present, np.linalg.norm(modality.features, axis=1), np.nan)
            for name, modality in dataset.modalities.items()}


def content_views(folder: Path, share: np.ndarray, norms: dict[str, np.ndarray]) -> dict:
    """Correlations with the feature norms, and the mean share by text category and by planted group."""
    views = {}
    views["feature_norms"] = {name: rank_correlation(share[~np.isnan(norm)], norm[~np.isnan(norm)])
                              for name, norm in norms.items() if len(norm) == len(share)}
    categories = text_categories(folder / "item_text.tsv", len(share))
    if categories is not None:
        views["categories"] = mean_by_label(share, categories, TOP_CATEGORIES)
    groups_file = folder / "item_groups.tsv"
    if groups_file.exists():
        groups = pd.read_csv(groups_file, sep="\t")
        labels = np.full(len(share), None, dtype=object)
        labels[groups["itemID"].to_numpy()] = groups["informative"].astype(str).to_numpy()
        views["planted_groups"] = mean_by_label(share, labels, None)
    return views


def text_categories(path: Path, n_items: int) -> np.ndarray | None:
    """Each item's category from its text: the second sentence's first CATEGORY_WORDS words after the words
    nearly every item's category starts with (Amazon's root category)."""
    if not path.exists():
        return None
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if not {"itemID", "text"} <= set(table.columns):
        return None
    paths = {}
    for item, text in zip(pd.to_numeric(table["itemID"], errors="coerce"), table["text"]):
        parts = text.split(". ")
        if item == item and 0 <= int(item) < n_items and len(parts) > 1:
            paths[int(item)] = parts[1].split()
    root = root_words(list(paths.values()))
    labels = np.full(n_items, None, dtype=object)
    for item, words in paths.items():
        start = len(root) if words[: len(root)] == root else 0
        labels[item] = " ".join(words[start : start + CATEGORY_WORDS]) or None
    return labels


def root_words(word_lists: list[list[str]], share: float = 0.9) -> list[str]:
    """The leading words that at least ``share`` of the lists begin with (the root category)."""
    root: list[str] = []
    while True:
        followers = Counter(words[len(root)] for words in word_lists
                            if len(words) > len(root) and words[: len(root)] == root)
        if not followers:
            return root
        word, count = followers.most_common(1)[0]
        if count < share * len(word_lists):
            return root
        root.append(word)


def mean_by_label(share: np.ndarray, labels: np.ndarray, top: int | None) -> list[dict]:
    counts = Counter(label for label in labels if label)
    kept = [label for label, count in counts.most_common(top) if count >= MIN_CATEGORY_ITEMS or top is None]
    return [{"label": label, "items": counts[label], "mean_share": float(share[labels == label].mean())}
            for label in kept]


def markdown(result: dict) -> str:
    first = result["modalities"][0]
    lines = [f"# What the gate learned: {result['run']}", "",
             f"{result['model']}, {result['items']:,} items; the share of a modality is the item's mean gate weight "
             "on it (over dimensions).", "",
             "| modality | mean | std | min | 5 % | 25 % | median | 75 % | 95 % | max |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, stats in result["distribution"].items():
        cells = [stats[key] for key in ("mean", "std", "min", "q05", "q25", "q50", "q75", "q95", "max")]
        lines.append(f"| {name} | " + " | ".join(f"{value:.4f}" for value in cells) + " |")
    popularity_result = result["popularity"]
    quintiles = ", ".join(f"{value:.4f}" for value in popularity_result["mean_share_by_quintile"])
    correlation = format_correlation(popularity_result["spearman"])
    lines += ["", f"{first} share against training popularity: Spearman {correlation}; "
              f"mean share by popularity quintile (least to most popular): {quintiles}."]
    for name, correlation in result.get("feature_norms", {}).items():
        lines.append(f"{first} share against the {name} feature norm: Spearman {format_correlation(correlation)}.")
    for key, title in (("planted_groups", "planted group (informative modality)"),
                       ("categories", "category (from the item text)")):
        if result.get(key):
            lines += ["", f"| {title} | items | mean {first} share |", "|---|---|---|"]
            lines += [f"| {row['label']} | {row['items']} | {row['mean_share']:.4f} |" for row in result[key]]
    for side in ("most", "least"):
        lines += ["", f"The {EXTREMES} items with the {side} {first} share:", "", "| item | title | share |",
                  "|---|---|---|"]
        lines += [f"| {row['item']} | {row['title'] or ''} | {row[f'{first}_share']:.4f} |"
                  for row in result["extremes"][side]]
    return "\n".join(lines) + "\n"


def format_correlation(value: float | None) -> str:
    return "undefined (the shares are all equal)" if value is None else f"{value:+.3f}"


def plot_distribution(path: Path, shares: np.ndarray, names: list[str]) -> Path:
    figure, axis = plt.subplots(figsize=(7, 4))
    for index, name in enumerate(names):
        axis.hist(shares[:, index], bins=50, range=(0, 1), alpha=0.6, label=name)
    axis.set_xlabel("item's share of the modality (mean gate weight)")
    axis.set_ylabel("items")
    axis.legend()
    return save_figure(figure, path)


def plot_against(path: Path, values: np.ndarray, share: np.ndarray, x_label: str, y_label: str) -> Path:
    figure, axis = plt.subplots(figsize=(7, 4))
    axis.scatter(values, share, s=4, alpha=0.4)
    axis.set_xlabel(x_label)
    axis.set_ylabel(y_label)
    return save_figure(figure, path)
