"""Benchmark reports: results.json, results.md, results.csv and PNG plots."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gatedrec.io import write_atomic, write_json, write_text_atomic  # noqa: E402

TABLE_METRICS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")
PLOT_ONLY = ("curves", "item_shares")


def write_reports(out: Path, results: dict, meta: dict) -> list[Path]:
    """Write every report file into ``out``; returns their paths."""
    public = {label: {k: v for k, v in result.items() if k not in PLOT_ONLY} for label, result in results.items()}
    write_json(out / "results.json", {"meta": meta, "models": public})
    write_text_atomic(out / "results.md", markdown(results, meta))
    write_text_atomic(out / "results.csv", csv(results))
    paths = [out / name for name in ("results.json", "results.md", "results.csv")]
    trained = {label: result for label, result in results.items() if "skipped" not in result}
    if trained:
        paths += [plot_bars(out / "recall_ndcg.png", trained), plot_curves(out / "validation_curves.png", trained)]
        shares = {label: result["item_shares"] for label, result in trained.items() if result.get("item_shares")}
        if shares:
            paths.append(plot_shares(out / "modality_shares.png", shares))
    return paths


def markdown(results: dict, meta: dict) -> str:
    header = "| model | " + " | ".join(m.replace("recall", "R").replace("ndcg", "N") for m in TABLE_METRICS)
    lines = [
        f"# Benchmark on {meta['data']}",
        "",
        f"Grid `{meta['grid']}` searched on valid Recall@20 (first seed); the chosen point re-run for seeds "
        f"{', '.join(map(str, meta['seeds']))}; test mean ± std. Machine: {meta['machine']}.",
        "",
        header + " | s/epoch | total s | chosen |",
        "|---" * (len(TABLE_METRICS) + 4) + "|",
    ]
    for label, result in results.items():
        if "skipped" in result:
            lines.append(f"| {label} | skipped: {result['skipped']} |" + " |" * (len(TABLE_METRICS) + 2))
            continue
        cells = [f"{result['test'][m]['mean']:.4f}±{result['test'][m]['std']:.4f}" for m in TABLE_METRICS]
        chosen = ", ".join(f"{k}={v}" for k, v in result["chosen"].items()) or "defaults"
        lines.append(f"| {label} | {' | '.join(cells)} | {result['seconds_per_epoch']:.3f} | "
                     f"{result['wall_seconds']:.0f} | {chosen} |")
    return "\n".join(lines + cold_warm_lines(results)) + "\n"


def cold_warm_lines(results: dict) -> list[str]:
    """Test metrics on held-out cold items (no training interaction) and on warm ones, when there are any."""
    labels = [label for label, result in results.items() if "test_cold" in result]
    if not labels:
        return []
    columns = [(split, metric) for split in ("test_cold", "test_warm") for metric in ("recall@20", "ndcg@20")]
    lines = [
        "",
        "Cold items (no training interaction) and warm items, each ranked among all items:",
        "",
        "| model | " + " | ".join(f"{split[5:]} {metric}" for split, metric in columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for label in labels:
        cells = [f"{results[label][s][m]['mean']:.4f}±{results[label][s][m]['std']:.4f}" for s, m in columns]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return lines


def csv(results: dict) -> str:
    columns = [f"{m}_{s}" for m in TABLE_METRICS for s in ("mean", "std")]
    lines = ["model," + ",".join(columns) + ",seconds_per_epoch,wall_seconds,skipped"]
    for label, result in results.items():
        if "skipped" in result:
            lines.append(f"\"{label}\"," + "," * (len(columns) + 1) + f"\"{result['skipped']}\"")
            continue
        values = [f"{result['test'][m][s]:.6f}" for m in TABLE_METRICS for s in ("mean", "std")]
        times = f",{result['seconds_per_epoch']:.4f},{result['wall_seconds']:.1f},"
        lines.append(f"\"{label}\"," + ",".join(values) + times)
    return "\n".join(lines) + "\n"


def save_figure(figure, path: Path) -> Path:
    write_atomic(path, lambda tmp: figure.savefig(tmp, format="png", dpi=120, bbox_inches="tight"))
    plt.close(figure)
    return path


def plot_bars(path: Path, results: dict) -> Path:
    labels = list(results)
    positions = np.arange(len(labels))
    figure, axis = plt.subplots(figsize=(max(6, 1.1 * len(labels)), 4))
    for offset, metric in ((-0.2, "recall@20"), (0.2, "ndcg@20")):
        means = [results[label]["test"][metric]["mean"] for label in labels]
        stds = [results[label]["test"][metric]["std"] for label in labels]
        axis.bar(positions + offset, means, width=0.4, yerr=stds, capsize=3, label=metric)
    axis.set_xticks(positions, labels, rotation=30, ha="right")
    axis.set_ylabel("test (mean ± std over seeds)")
    axis.legend()
    return save_figure(figure, path)


def plot_curves(path: Path, results: dict) -> Path:
    figure, axis = plt.subplots(figsize=(7, 4))
    for label, result in results.items():
        curve = np.asarray(result["curves"])
        if len(curve):
            axis.plot(curve[:, 0], curve[:, 1], label=label)
    axis.set_xlabel("epoch")
    axis.set_ylabel("valid Recall@20")
    axis.legend(fontsize=8)
    return save_figure(figure, path)


def plot_shares(path: Path, shares: dict) -> Path:
    figure, axis = plt.subplots(figsize=(7, 4))
    for label, by_modality in shares.items():
        first = next(iter(by_modality))
        axis.hist(by_modality[first], bins=40, range=(0, 1), alpha=0.6, label=f"{label}: {first} share")
    axis.set_xlabel("item's share of its first modality (mean gate)")
    axis.set_ylabel("items")
    axis.legend(fontsize=8)
    return save_figure(figure, path)
