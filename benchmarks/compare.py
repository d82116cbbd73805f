"""Every model on each shared data set with features, side by side and against ../shared/REFERENCE.md.

Reads what the other benchmarks saved, trains nothing: the default configurations of results/core.json
(benchmarks/core.py) and the validation-selected small-grid results of `gatedrec benchmark` in
results/all-small-sci (amazon-scientific-mm) and results/zoo/lastfm-2k-multimodal. Test mean ± std over
seeds 1-3; the best Recall@20 and NDCG@20 of each data set in bold; each model's Recall@20 over MMRec's
on the same split where REFERENCE.md has the model (MMGCN is set against MMRec's MMGCF, the nearest
model there).

    python benchmarks/compare.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, load_json, save_report  # noqa: E402

from core import REFERENCE_NAMES  # noqa: E402

GRID_RESULTS = {
    "amazon-scientific-mm": RESULTS / "all-small-sci" / "results.json",
    "lastfm-2k-multimodal": RESULTS / "zoo" / "lastfm-2k-multimodal" / "results.json",
}
REFERENCE_FOR = REFERENCE_NAMES | {"mmgcn": "MMGCF"}
METRICS = ("recall@20", "ndcg@20")


def rows_for(dataset: str, core: dict) -> list[dict]:
    """One row per model and source: the core defaults first, then the small-grid results."""
    rows = [{"model": model, "source": "default", "test": result["test"]}
            for model, result in core["results"].get(dataset, {}).items() if "test" in result]
    grid = load_json(GRID_RESULTS[dataset]).get("models", {})
    rows += [{"model": label, "source": "small grid", "test": result["test"]}
             for label, result in grid.items() if "test" in result]
    reference = core["reference"].get(dataset, {})
    for row in rows:
        name = REFERENCE_FOR.get(row["model"], "")
        mmrec = reference.get(name, {}).get("recall@20")
        row["mmrec_model"], row["mmrec_recall@20"] = name, mmrec
        row["ratio"] = row["test"]["recall@20"]["mean"] / mmrec if mmrec else None
    return rows


def markdown(tables: dict[str, list[dict]]) -> str:
    lines = []
    for dataset, rows in tables.items():
        best = {metric: max(row["test"][metric]["mean"] for row in rows) for metric in METRICS}
        lines += [f"## {dataset}", "", "| model | configuration | test R@20 | test N@20 | MMRec R@20 | ours / MMRec |",
                  "|---|---|---|---|---|---|"]
        for row in sorted(rows, key=lambda r: -r["test"]["recall@20"]["mean"]):
            cells = []
            for metric in METRICS:
                stats = row["test"][metric]
                cell = f"{stats['mean']:.4f} ± {stats['std']:.4f}"
                cells.append(f"**{cell}**" if stats["mean"] == best[metric] else cell)
            mmrec = f"{row['mmrec_recall@20']:.4f} ({row['mmrec_model']})" if row["mmrec_recall@20"] else "n/a"
            ratio = f"{row['ratio']:.3f}" if row["ratio"] else "n/a"
            lines.append(f"| {row['model']} | {row['source']} | {' | '.join(cells)} | {mmrec} | {ratio} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    core = load_json(RESULTS / "core.json")
    tables = {dataset: rows_for(dataset, core) for dataset in GRID_RESULTS}
    intro = ("Test mean ± std over seeds 1-3. default: the model's default configuration (benchmarks/core.py); "
             "small grid: `gatedrec benchmark --grid small`, the point chosen on valid Recall@20.\n\n")
    save_report("compare", tables, "# Every model against MMRec's figures\n\n" + intro + markdown(tables))


if __name__ == "__main__":
    main()
