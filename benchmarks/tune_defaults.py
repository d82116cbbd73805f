"""How the default configurations were chosen: on validation only, never on test.

For each model, every point of the ``grid`` in its YAML is trained on each shared data set with
features (amazon-scientific-mm, lastfm-2k-multimodal) and each seed. A point's score is the mean over
data sets of its mean valid Recall@20 divided by the best point's on that data set, so the chosen
default serves both data sets well. Test metrics are not read. Runs go two at a time, one thread each;
finished runs are kept in results/tune_runs.json and not repeated.

Then each key of the YAML's ``sweep`` is varied alone around the chosen point, over ``--sweep-seeds``. Its
values are listed cheapest first, and the first whose score is within SWEEP_TOLERANCE of the best is chosen:
a difference that small is noise between seeds, and the cheaper model then serves as well.

    python benchmarks/tune_defaults.py [--models bpr,lightgcn,rlmultimodalrec] [--seeds 1,2] [--sweep-seeds 1,2,3]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from common import RESULTS, load_json, load_shared, machine, save_report, train_once  # noqa: E402

from gatedrec.io import write_json  # noqa: E402
from gatedrec.models import MODELS, model_spec  # noqa: E402
from gatedrec.progress import progress_bar  # noqa: E402

TUNING_DATASETS = ("amazon-scientific-mm", "lastfm-2k-multimodal")
RUNS_FILE = RESULTS / "tune_runs.json"
SWEEP_TOLERANCE = 0.005


def grid_points(model: str) -> list[dict]:
    grid = model_spec(model).get("grid", {})
    keys = sorted(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[key] for key in keys))]


def point_key(model: str, dataset: str, point: dict, seed: int) -> str:
    return f"{model}|{dataset}|{','.join(f'{k}={v}' for k, v in sorted(point.items()))}|{seed}"


def _valid_run(model: str, dataset: str, point: dict, seed: int) -> dict:
    torch.set_num_threads(1)
    metrics = train_once(model, dataset, load_shared(dataset), seed, point)
    return {"valid_recall@20": metrics["valid"]["recall@20"], "best_epoch": metrics["best_epoch"],
            "seconds_per_epoch": metrics["seconds_per_epoch"]}


def run_missing(jobs: list[tuple], runs: dict) -> None:
    missing = [job for job in jobs if point_key(*job) not in runs]
    with (ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn"), max_tasks_per_child=1) as pool,
          progress_bar() as bar):
        task = bar.add_task("runs", total=len(missing), unit="run")
        futures = {pool.submit(_valid_run, *job): job for job in missing}
        for done, future in enumerate(as_completed(futures), 1):
            key = point_key(*futures[future])
            runs[key] = future.result()
            write_json(RUNS_FILE, runs)
            print(f"[{done}/{len(missing)}] {key}: valid recall@20 {runs[key]['valid_recall@20']:.4f}", flush=True)
            bar.advance(task)


def sweep_points(model: str, centre: dict) -> dict[str, list[dict]]:
    """For each swept key, the centre point with that key set to each of its values (cheapest first)."""
    sweep = model_spec(model).get("sweep", {})
    return {key: [{**centre, key: value} for value in values] for key, values in sweep.items()}


def scored(model: str, points: list[dict], seeds: list[int], runs: dict) -> list[dict]:
    """Each point's mean valid Recall@20 per data set and its score, in the order given."""
    rows = []
    for point in points:
        means = {
            dataset: statistics.fmean(runs[point_key(model, dataset, point, seed)]["valid_recall@20"] for seed in seeds)
            for dataset in TUNING_DATASETS
        }
        rows.append({"point": point, "valid_recall@20": means})
    best = {dataset: max(row["valid_recall@20"][dataset] for row in rows) for dataset in TUNING_DATASETS}
    for row in rows:
        row["score"] = statistics.fmean(row["valid_recall@20"][d] / best[d] for d in TUNING_DATASETS)
    return rows


def choose(model: str, seeds: list[int], runs: dict) -> tuple[dict, list[dict]]:
    rows = sorted(scored(model, grid_points(model), seeds, runs), key=lambda row: -row["score"])
    return rows[0]["point"], rows


def choose_swept(model: str, points: list[dict], seeds: list[int], runs: dict) -> tuple[dict, list[dict]]:
    rows = scored(model, points, seeds, runs)
    top = max(row["score"] for row in rows)
    return next(row["point"] for row in rows if row["score"] >= top - SWEEP_TOLERANCE), rows


def markdown(chosen: dict, tables: dict) -> str:
    lines = []
    for name, rows in tables.items():
        lines += [f"## {name}: chosen {chosen[name]}", "",
                  "| point | " + " | ".join(f"valid R@20 {d}" for d in TUNING_DATASETS) + " | score |",
                  "|---|" + "---|" * (len(TUNING_DATASETS) + 1)]
        for row in rows:
            cells = " | ".join(f"{row['valid_recall@20'][d]:.4f}" for d in TUNING_DATASETS)
            lines.append(f"| {row['point']} | {cells} | {row['score']:.4f} |")
        lines.append("")
    return "\n".join(lines)


def provenance(jobs: list[tuple], runs: dict) -> str:
    """Runs kept from earlier code (their entry carries a note) are counted, not hidden."""
    notes: dict[str, int] = {}
    for job in jobs:
        note = runs[point_key(*job)].get("note")
        if note:
            notes[note] = notes.get(note, 0) + 1
    return "".join(f"\n{count} of the runs above: {note}.\n" for note, count in notes.items())


def seed_list(text: str) -> list[int]:
    return [int(seed) for seed in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="bpr,lightgcn,rlmultimodalrec")
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--sweep-seeds", default="1,2,3")
    args = parser.parse_args()
    seeds, sweep_seeds, models = seed_list(args.seeds), seed_list(args.sweep_seeds), args.models.split(",")
    runs = load_json(RUNS_FILE)
    jobs = [(m, d, p, s) for m in models for d in TUNING_DATASETS for p in grid_points(m) for s in seeds]
    run_missing(jobs, runs)
    chosen, tables = {}, {}
    for model in MODELS:
        if all(point_key(model, d, p, s) in runs for d in TUNING_DATASETS for p in grid_points(model) for s in seeds):
            chosen[model], tables[model] = choose(model, seeds, runs)
    sweeps = {(model, key): points for model in models if model in chosen
              for key, points in sweep_points(model, chosen[model]).items()}
    sweep_jobs = [(m, d, p, s) for (m, _), points in sweeps.items()
                  for d in TUNING_DATASETS for p in points for s in sweep_seeds]
    run_missing(sweep_jobs, runs)
    for (model, key), points in sweeps.items():
        name = f"{model}, {key} around that point (seeds {args.sweep_seeds}, cheapest first)"
        chosen[name], tables[name] = choose_swept(model, points, sweep_seeds, runs)
    intro = (f"Validation Recall@20, mean over seeds {args.seeds}; score = mean over data sets of the ratio to the "
             f"best point there. A swept key takes the first (cheapest) value within {SWEEP_TOLERANCE} of the best "
             f"score. Machine: {machine()}, two runs at a time, one thread each.\n\n")
    save_report("tune_defaults", {"chosen": chosen, "tables": tables, "seeds": seeds, "sweep_seeds": sweep_seeds},
                "# Choosing the defaults on validation\n\n" + intro + markdown(chosen, tables)
                + provenance(jobs + sweep_jobs, runs))


if __name__ == "__main__":
    main()
