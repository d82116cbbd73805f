"""``gatedrec benchmark``: every model's grid searched on validation Recall@20, the chosen point re-run
for each seed, test reported as mean ± std; runs kept on disk so an interrupted benchmark resumes.

A model is written ``name`` or ``name:key=value[:key=value...]`` (fixed parameters, e.g. an ablation
``rlmultimodalrec:fusion=concat``); fixed parameters leave the grid.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from gatedrec.config import DataConfig, RunConfig, parse_assignment
from gatedrec.data import Dataset
from gatedrec.errors import GatedRecError
from gatedrec.io import write_json
from gatedrec.models import MODELS, model_class, model_spec
from gatedrec.options import GRIDS
from gatedrec.progress import console, progress_bar
from gatedrec.training import Trainer

SELECTION_METRIC = "recall@20"
RUN_SUMMARY_KEYS = ("best_epoch", "epochs_run", "train_seconds", "seconds_per_epoch", "eval_seconds_per_pass",
                    "peak_memory_mb", "valid", "test", "modality_shares", "history")
COLD_WARM = ("test_cold", "test_warm")  # present when some test items have no training interaction


@dataclass
class ModelEntry:
    """One row of the benchmark: a registry model with some parameters fixed."""

    label: str
    name: str
    fixed: dict = field(default_factory=dict)


def parse_models(text: str, shared: dict) -> list[ModelEntry]:
    """``all`` or a comma-separated list of ``name[:key=value...]``; ``shared`` parameters (``--set``) apply
    to every model that has the key."""
    labels = list(MODELS) if text.strip() == "all" else [part.strip() for part in text.split(",") if part.strip()]
    if not labels:
        raise GatedRecError("--models is empty; give 'all' or a list such as 'lightgcn,rlmultimodalrec'")
    entries = []
    for label in labels:
        name, *assignments = label.split(":")
        model_class(name)
        fixed = {key: value for key, value in shared.items() if key in model_spec(name)["params"]}
        fixed |= dict(parse_assignment(assignment) for assignment in assignments)
        entries.append(ModelEntry(label, name, fixed))
    unused = set(shared) - {key for entry in entries for key in entry.fixed}
    if unused:
        raise GatedRecError(f"--set {', '.join(sorted(unused))}: no benchmarked model has this parameter")
    return entries


def grid_points(entry: ModelEntry, grid: str) -> list[dict]:
    """The grid's points (the model YAML's ``grid``, or ``small_grid`` for --grid small), fixed keys removed."""
    if grid not in GRIDS:
        raise GatedRecError(f"--grid '{grid}' is unknown; choose one of {', '.join(GRIDS)}")
    spec = model_spec(entry.name)
    axes = spec.get("small_grid" if grid == "small" else "grid") or spec.get("grid") or {}
    axes = {key: values for key, values in axes.items() if key not in entry.fixed}
    return [dict(zip(axes, values)) | entry.fixed for values in itertools.product(*axes.values())]


SPEED_ONLY_SETTINGS = ("threads", "device")


def run_key(config: RunConfig) -> str:
    """Names a finished run by everything that decides its result: the model, all its parameters (defaults
    included, so a run made under older defaults is not taken for a current one) and the training settings
    (seed, learning rate, ...; not the thread count or device, which only change the speed)."""
    training = {key: value for key, value in asdict(config.train).items() if key not in SPEED_ONLY_SETTINGS}
    identity = [config.model, config.params, training]
    digest = hashlib.sha1(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
    return f"{config.model}-{digest[:12]}"


class Benchmark:
    def __init__(self, dataset: Dataset, data: DataConfig, entries: list[ModelEntry], seeds: list[int], grid: str,
                 out: Path, train_settings: dict, quiet: bool = False):
        if not seeds:
            raise GatedRecError("--seeds is empty; give e.g. 1,2,3")
        self.dataset, self.data, self.entries, self.seeds = dataset, data, entries, seeds
        self.grid, self.out, self.train_settings, self.quiet = grid, Path(out), train_settings, quiet
        self.plans = {entry.label: grid_points(entry, grid) for entry in entries if not self.skip_reason(entry)}

    def skip_reason(self, entry: ModelEntry) -> str | None:
        if model_class(entry.name).needs_modalities and not self.dataset.modalities:
            return f"{entry.name} needs item features and the data set has none"
        return None

    def run(self) -> dict:
        (self.out / "runs").mkdir(parents=True, exist_ok=True)
        results = {}
        total = sum(len(points) + len(self.seeds) - 1 for points in self.plans.values())
        with progress_bar(self.quiet) as progress:
            task = progress.add_task("benchmark", total=total, unit="run")
            for entry in self.entries:
                reason = self.skip_reason(entry)
                results[entry.label] = {"skipped": reason} if reason else self.run_model(entry, progress, task)
                if reason:
                    console.print(f"{entry.label}: skipped ({reason})")
        return results

    def run_model(self, entry: ModelEntry, progress, task) -> dict:
        points = self.plans[entry.label]
        first_seed, other_seeds = self.seeds[0], self.seeds[1:]
        searched = []
        for index, params in enumerate(points, start=1):
            progress.update(task, description=f"{entry.label} · grid point {index}/{len(points)} · seed {first_seed}")
            searched.append(self.run_once(entry, params, first_seed))
            progress.advance(task)
        best_index = max(range(len(points)), key=lambda i: searched[i]["valid"][SELECTION_METRIC])
        chosen = points[best_index]
        seed_runs = [searched[best_index]]
        for seed in other_seeds:
            progress.update(task, description=f"{entry.label} · chosen point · seed {seed}")
            seed_runs.append(self.run_once(entry, chosen, seed))
            progress.advance(task)
        console.print(f"{entry.label}: chose {chosen or 'the defaults'} on valid; test recall@20 "
                      f"{statistics.fmean(r['test']['recall@20'] for r in seed_runs):.4f}")
        return summarize(chosen, searched, points, seed_runs)

    def run_once(self, entry: ModelEntry, params: dict, seed: int) -> dict:
        config = RunConfig.for_model(entry.name, seed=seed)
        config.apply(params | self.train_settings)
        config.data = self.data
        path = self.out / "runs" / f"{run_key(config)}.json"
        if path.exists():
            return json.loads(path.read_text())
        started = time.perf_counter()
        trainer = Trainer(config, self.dataset, quiet=True)
        metrics = trainer.fit()
        record = {key: metrics[key] for key in RUN_SUMMARY_KEYS + COLD_WARM if key in metrics}
        record |= {"params": config.params, "seed": seed, "wall_seconds": time.perf_counter() - started}
        shares = trainer.model.explain()
        if shares:
            record["item_shares"] = {name: np.round(values, 4).tolist() for name, values in shares.items()}
        write_json(path, record)
        return record


def mean_std(values: list[float]) -> dict:
    """Mean and sample standard deviation (0 for a single value)."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def summarize(chosen: dict, searched: list[dict], points: list[dict], seed_runs: list[dict]) -> dict:
    splits = ("valid", "test") + tuple(split for split in COLD_WARM if split in seed_runs[0])
    return {
        "params": seed_runs[0]["params"],
        "chosen": chosen,
        **{
            split: {metric: mean_std([run[split][metric] for run in seed_runs]) for metric in seed_runs[0][split]}
            for split in splits
        },
        "seconds_per_epoch": statistics.fmean(run["seconds_per_epoch"] for run in seed_runs),
        "wall_seconds": sum(run["wall_seconds"] for run in searched + seed_runs[1:]),
        "seeds": [run["seed"] for run in seed_runs],
        "grid": [{"params": point, "valid_recall@20": run["valid"][SELECTION_METRIC]}
                 for point, run in zip(points, searched)],
        "curves": [[h["epoch"], h["recall@20"]] for h in seed_runs[0]["history"]],
        "item_shares": seed_runs[0].get("item_shares"),
    }
