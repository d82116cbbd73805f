"""Core benchmark: BPR-MF, LightGCN and RLMultimodalRec with their default configurations on the shared
data sets, seeds 1-3, compared with MMRec's figures in ../shared/REFERENCE.md.

Each run trains in a fresh process (so its peak memory is its own), stops early on valid Recall@20 and
reports test at the best valid epoch. Finished runs are kept in results/core_runs.json and not repeated.

    python benchmarks/core.py [--datasets amazon-scientific-mm,lastfm-2k-multimodal] [--seeds 1,2,3]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    DATASETS, REPO, RESULTS, in_fresh_process, load_json, load_shared, machine, mean_std, save_report, train_once,
    update_readme,
)

from gatedrec.io import write_json  # noqa: E402
from gatedrec.models import default_params, model_class  # noqa: E402
from gatedrec.progress import progress_bar  # noqa: E402

MODELS = ("bpr", "lightgcn", "rlmultimodalrec")
REFERENCE_NAMES = {"bpr": "BPR", "lightgcn": "LightGCN", "vbpr": "VBPR", "mmgcf": "MMGCF", "freedom": "FREEDOM",
                   "bm3": "BM3"}
RUNS_FILE = RESULTS / "core_runs.json"
SHOWN = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")


def _train(model: str, dataset_name: str, seed: int) -> dict:
    metrics = train_once(model, dataset_name, load_shared(dataset_name), seed)
    return {key: metrics[key] for key in ("best_epoch", "epochs_run", "seconds_per_epoch", "eval_seconds_per_pass",
                                          "peak_memory_mb", "valid", "test", "modality_shares", "params")}


def read_reference(path: Path) -> dict[str, dict[str, dict]]:
    """REFERENCE.md tables: {data set: {model: {"recall@20": ..}}} with the mean of 'mean±std' cells."""
    reference: dict[str, dict[str, dict]] = {}
    section = None
    for line in path.read_text().splitlines():
        heading = re.match(r"## (\S+)", line)
        if heading:
            section = heading.group(1)
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if section and len(cells) >= 6 and "±" in cells[3]:
            values = [float(cell.split("±")[0]) for cell in cells[2:6]]
            reference.setdefault(section, {})[cells[0]] = dict(zip(SHOWN, values))
    return reference


def summarize(runs: list[dict]) -> dict:
    return {
        "test": {metric: mean_std([run["test"][metric] for run in runs]) for metric in runs[0]["test"]},
        "valid": {"recall@20": mean_std([run["valid"]["recall@20"] for run in runs])},
        "seconds_per_epoch": mean_std([run["seconds_per_epoch"] for run in runs])["mean"],
        "eval_seconds_per_pass": mean_std([run["eval_seconds_per_pass"] for run in runs])["mean"],
        "peak_memory_mb": max(run["peak_memory_mb"] for run in runs),
        "epochs_run": [run["epochs_run"] for run in runs],
        "params": runs[0]["params"],
        "seeds": len(runs),
    }


def markdown(summary: dict, reference: dict) -> str:
    lines = [
        "| data | model | test R@10 | test R@20 | test N@10 | test N@20 | MMRec R@20 | ours / MMRec | epochs run "
        "| peak MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset, models in summary.items():
        for model, result in models.items():
            if "skipped" in result:
                lines.append(f"| {dataset} | {model} | skipped: {result['skipped']} |" + " |" * 7)
                continue
            test = result["test"]
            cells = [_cell(test[m], result["seeds"] > 1) for m in SHOWN]
            ref = reference.get(dataset, {}).get(REFERENCE_NAMES.get(model, model), {}).get("recall@20")
            ratio = f"{test['recall@20']['mean'] / ref:.3f}" if ref else "n/a"
            lines.append(
                f"| {dataset} | {model} | {' | '.join(cells)} | {ref if ref else 'n/a'} | {ratio} | "
                f"{'/'.join(map(str, result['epochs_run']))} | {result['peak_memory_mb']:.0f} |"
            )
    return "\n".join(lines) + "\n"


def _cell(stats: dict, with_std: bool) -> str:
    return f"{stats['mean']:.4f}±{stats['std']:.4f}" if with_std else f"{stats['mean']:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--report", default="core", help="name of the report files and of the README block")
    args = parser.parse_args()
    runs = load_json(RUNS_FILE)
    seeds = [int(seed) for seed in args.seeds.split(",")]
    plan = []  # (data set, model, whether it can train there), in the report's order
    for dataset in args.datasets.split(","):
        has_features = bool(load_shared(dataset).modalities)
        plan += [(dataset, model, has_features or not model_class(model).needs_modalities)
                 for model in args.models.split(",")]
    to_run = [(dataset, model, seed) for dataset, model, trains in plan if trains for seed in seeds
              if runs.get(f"{dataset}|{model}|{seed}", {}).get("params") != default_params(model)]
    with progress_bar() as bar:
        task = bar.add_task("runs", total=len(to_run), unit="run")
        for dataset, model, seed in to_run:
            key = f"{dataset}|{model}|{seed}"
            print(f"running {key}", flush=True)
            runs[key] = in_fresh_process(_train, model, dataset, seed)
            write_json(RUNS_FILE, runs)
            print(f"{key}: test recall@20 {runs[key]['test']['recall@20']:.4f}", flush=True)
            bar.advance(task)
    summary: dict[str, dict] = {}
    for dataset, model, trains in plan:
        summary.setdefault(dataset, {})[model] = (
            summarize([runs[f"{dataset}|{model}|{seed}"] for seed in seeds]) if trains
            else {"skipped": "the data set has no item features"})
    reference = read_reference(REPO.parent / "shared" / "REFERENCE.md")
    table = markdown(summary, reference)
    intro = (
        "Default configurations, seeds " + args.seeds + "; test at the best valid Recall@20 epoch, mean ± std. "
        "Times are in benchmarks/results/speed.md (measured alone; these runs may share the machine). "
        f"Machine: {machine()}.\n\n"
    )
    save_report(args.report, {"machine": machine(), "results": summary, "reference": reference},
                "# Core benchmark\n\n" + intro + table)
    update_readme(intro + table, args.report)


if __name__ == "__main__":
    main()
