"""The robustness studies' reports: results.json (``rows``), results.md, results.csv and PNG plots."""

from __future__ import annotations

from pathlib import Path

from gatedrec.io import write_json, write_text_atomic
from gatedrec.report import plt, save_figure

CSV_COLUMNS = ("model", "modality", "share", "level", "recall@20_mean", "recall@20_std", "ndcg@20_mean",
               "ndcg@20_std", "relative_loss")


def write_study_reports(out: Path, meta: dict, rows: list[dict], x_axis: str) -> list[Path]:
    """``x_axis``: what the plots put along x, "share" (missing) or "level" (noise)."""
    write_json(out / "results.json", {"meta": meta, "rows": rows})
    write_text_atomic(out / "results.md", markdown(meta, rows))
    write_text_atomic(out / "results.csv", csv(rows))
    paths = [out / name for name in ("results.json", "results.md", "results.csv")]
    paths.append(plot_recall(out / "recall.png", rows, x_axis))
    if any("modality_share" in row for row in rows):
        paths.append(plot_shares(out / "shares.png", rows, x_axis))
    return paths


def condition_label(row: dict) -> str:
    if row["modality"] == "clean":
        return "clean"
    level = {"sweep": "", "replace": " replaced"}.get(row["level"], f" +{row['level']}σ")
    return f"{row['modality']} {row['share']:.0%}{level}" if row["level"] != "dgmrec" else "DGMRec"


def cell(stats: dict) -> str:
    return f"{stats['mean']:.4f} ± {stats['std']:.4f}"


def markdown(meta: dict, rows: list[dict]) -> str:
    conditions = list(dict.fromkeys(condition_label(row) for row in rows))
    models = list(dict.fromkeys(row["model"] for row in rows))
    by_key = {(row["model"], condition_label(row)): row for row in rows}
    seeds = ", ".join(map(str, meta["seeds"]))
    lines = [f"# Study {meta['study']} on {meta['data_name']}", "",
             f"Test Recall@20 (mean ± std over seeds {seeds}; corruption seed {meta['corruption_seed']}); "
             f"in brackets the change against the model's clean figure. Machine: {meta['machine']['cpu']} "
             f"({meta['machine']['cpu_model']}), {meta['machine']['cores']} cores; {meta['wall_seconds']:.0f} s.",
             "", "| model | " + " | ".join(conditions) + " |", "|---" * (len(conditions) + 1) + "|"]
    for model in models:
        cells = []
        for condition in conditions:
            row = by_key[(model, condition)]
            loss = "" if condition == "clean" else f" ({-row['relative_loss']:+.1%})"
            cells.append(cell(row["test"]["recall@20"]) + loss)
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    lines += group_lines(rows) + share_lines(rows)
    unread = [model for model in models if not by_key[(model, conditions[0])]["features_read"]]
    if unread:
        lines += ["", f"{', '.join(unread)} read no item features: their clean figure stands for every condition."]
    return "\n".join(lines) + "\n"


def group_lines(rows: list[dict]) -> list[str]:
    """Test Recall@20 by item group, for the damaged conditions."""
    damaged = [row for row in rows if row["modality"] != "clean" and row["features_read"]]
    groups = list(dict.fromkeys(name for row in damaged for name in row["groups"] if name != "all"))
    if not groups:
        return []
    lines = ["", "By item group (test Recall@20 over each group's held-out items, ranked among all items):", "",
             "| model | condition | " + " | ".join(groups) + " |", "|---" * (len(groups) + 2) + "|"]
    for row in damaged:
        cells = [cell(row["groups"][name]["recall@20"]) if name in row["groups"] else "–" for name in groups]
        lines.append(f"| {row['model']} | {condition_label(row)} | " + " | ".join(cells) + " |")
    return lines


def share_lines(rows: list[dict]) -> list[str]:
    gated = [row for row in rows if "modality_share" in row]
    if not gated:
        return []
    groups = list(dict.fromkeys(name for row in gated for name in row["modality_share"]))
    lines = ["", "The gate's mean share of the damaged modality, by item group:",
             "", "| model | condition | " + " | ".join(groups) + " |", "|---" * (len(groups) + 2) + "|"]
    for row in gated:
        cells = [f"{row['modality_share'][name]:.3f}" if name in row["modality_share"] else "–" for name in groups]
        lines.append(f"| {row['model']} | {condition_label(row)} | " + " | ".join(cells) + " |")
    return lines


def csv(rows: list[dict]) -> str:
    lines = [",".join(CSV_COLUMNS)]
    for row in rows:
        values = [row["model"], row["modality"], f"{row['share']:g}", row["level"],
                  *(f"{row['test'][metric][part]:.6f}" for metric in ("recall@20", "ndcg@20")
                    for part in ("mean", "std")), f"{row['relative_loss']:.6f}"]
        lines.append(",".join(f'"{value}"' if "," in str(value) else str(value) for value in values))
    return "\n".join(lines) + "\n"


def series(rows: list[dict], x_axis: str) -> dict[tuple[str, float | None], list[dict]]:
    """Each model's rows along x, the clean row included; for noise one line per model and corrupted share."""
    panels = sorted({row["share"] for row in rows if row["modality"] != "clean"}) if x_axis == "level" else [None]
    lines: dict[tuple[str, float | None], list[dict]] = {}
    for row in rows:
        for panel in panels:
            if row["modality"] == "clean" or panel is None or row["share"] == panel:
                lines.setdefault((row["model"], panel), []).append(row)
    return lines


def x_value(row: dict, x_axis: str, positions: dict[str, int]) -> float:
    if x_axis == "share":
        return 0.0 if row["modality"] == "clean" else row["share"]
    return positions["0" if row["modality"] == "clean" else row["level"]]


def plot_recall(path: Path, rows: list[dict], x_axis: str) -> Path:
    return plot_lines(path, rows, x_axis, lambda row: (row["test"]["recall@20"]["mean"],
                                                       row["test"]["recall@20"]["std"]), "test Recall@20")


def plot_shares(path: Path, rows: list[dict], x_axis: str) -> Path:
    gated = [row for row in rows if "modality_share" in row]
    first_group = "corrupted" if any("corrupted" in row["modality_share"] for row in gated) else "all"

    def share(row: dict) -> tuple[float, float]:
        return row["modality_share"].get(first_group, row["modality_share"].get("all", 0.0)), 0.0

    return plot_lines(path, gated, x_axis, share, f"gate's share of the damaged modality ({first_group} items)")


def plot_lines(path: Path, rows: list[dict], x_axis: str, value, label: str) -> Path:
    levels = ["0"] + sorted({row["level"] for row in rows if row["modality"] != "clean"},
                            key=lambda level: float("inf") if level == "replace" else float(level)
                            ) if x_axis == "level" else []
    positions = {level: index for index, level in enumerate(levels)}
    lines = series(rows, x_axis)
    shares = sorted({share for _, share in lines})
    figure, axes = plt.subplots(1, len(shares), figsize=(5.5 * len(shares), 4), squeeze=False)
    for axis, share in zip(axes[0], shares):
        for (model, line_share), line in lines.items():
            if line_share != share:
                continue
            line = sorted(line, key=lambda row: x_value(row, x_axis, positions))
            points = [value(row) for row in line]
            axis.errorbar([x_value(row, x_axis, positions) for row in line], [p[0] for p in points],
                          yerr=[p[1] for p in points], marker="o", capsize=3, label=model)
        if x_axis == "level":
            axis.set_xticks(range(len(levels)), ["clean" if level == "0" else level for level in levels])
            axis.set_xlabel("noise (standard deviations) or replacement")
            axis.set_title(f"{share:.0%} of the items corrupted")
        else:
            axis.set_xlabel("share of items without the modality")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
    return save_figure(figure, path)
