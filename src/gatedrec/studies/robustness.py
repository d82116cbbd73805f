"""What ``gatedrec study missing`` and ``gatedrec study noise`` share: conditions run for every model and seed (in
parallel worker processes where the data set is small), each run kept on disk so that a study resumes where it
stopped, and the rows, tables and plots the two report.

A model is written ``name[:key=value...]`` as in ``gatedrec benchmark``, plus ``missing=mask|mean|zero``: how the
model sees a missing modality (masked out of the fusion: RLMultimodalRec's default; the modality's mean
vector: MMRec's preprocessing; zeros marked present). Models that read no item features (LightGCN, BPR) run the
clean condition only: the same figure holds under every condition.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from gatedrec.benchmark import mean_std, parse_models
from gatedrec.config import DataConfig, RunConfig
from gatedrec.data import Dataset, load_data
from gatedrec.data.mmrec import mean_filled
from gatedrec.errors import GatedRecError
from gatedrec.io import write_json
from gatedrec.models import model_class
from gatedrec.progress import console, progress_bar
from gatedrec.runtime import SMALL_PROBLEM_PAIRS, usable_cores
from gatedrec.studies.corruption import with_modalities, zero_filled
from gatedrec.system import machine

IMPUTATIONS = ("mask", "mean", "zero")
METRICS = ("recall@20", "ndcg@20")
CLEAN = "clean"


@dataclass(frozen=True)
class Condition:
    """One way of damaging the features: ``modality`` taken away or corrupted (``CLEAN`` for none; "both" for
    the DGMRec protocol) for a ``share`` of the items, at ``level`` (noise: standard deviations or "replace";
    missing: the protocol)."""

    modality: str
    share: float
    level: str

    @property
    def key(self) -> str:
        return CLEAN if self.is_clean else f"{self.modality}-{self.share:g}-{self.level}"

    @property
    def is_clean(self) -> bool:
        return self.modality == CLEAN


CLEAN_CONDITION = Condition(CLEAN, 0.0, "0")


@dataclass(frozen=True)
class StudyModel:
    label: str
    name: str
    fixed: dict = field(default_factory=dict)
    imputation: str = "mask"

    @property
    def reads_features(self) -> bool:
        return model_class(self.name).needs_modalities


def parse_study_models(text: str) -> list[StudyModel]:
    """``--models``: a comma-separated list of ``name[:key=value...]``, ``missing=mask|mean|zero`` among them."""
    models = []
    for label in [part.strip() for part in text.split(",") if part.strip()]:
        name, *assignments = label.split(":")
        imputations = [item.partition("=")[2] for item in assignments if item.startswith("missing=")]
        imputation = imputations[-1] if imputations else "mask"
        if imputation not in IMPUTATIONS:
            raise GatedRecError(f"--models '{label}': missing={imputation} is unknown; choose one of "
                                f"{', '.join(IMPUTATIONS)}")
        rest = ":".join([name] + [item for item in assignments if not item.startswith("missing=")])
        (entry,) = parse_models(rest, {})
        models.append(StudyModel(label, entry.name, entry.fixed, imputation))
    if not models:
        raise GatedRecError("--models is empty; give a list such as 'rlmultimodalrec,freedom:missing=mean'")
    return models


def imputed(dataset: Dataset, imputation: str) -> Dataset:
    """How a model sees the missing modalities: masked (as loaded), mean-filled or zero-filled."""
    if imputation == "mean":
        return with_modalities(dataset, {name: mean_filled(m) for name, m in dataset.modalities.items()})
    return zero_filled(dataset) if imputation == "zero" else dataset


@dataclass(frozen=True, eq=False)
class Task:
    """One training run of a study, everything a worker process needs."""

    study: str  # the module that damages the data: missing | noise
    data: DataConfig
    condition: Condition
    model: StudyModel
    seed: int
    threads: int
    corruption_seed: int
    path: Path


def run_key(model: StudyModel, condition: Condition, seed: int, corruption_seed: int) -> str:
    config = RunConfig.for_model(model.name)
    config.apply(model.fixed)
    identity = [model.name, config.params, model.imputation, asdict(condition), seed, corruption_seed]
    digest = hashlib.sha1(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{model.name}-{condition.key}-s{seed}-{digest}"


_LOADED: dict[str, Dataset] = {}


def base_dataset(data: DataConfig) -> Dataset:
    """The study's data set, loaded once per worker process."""
    key = json.dumps(asdict(data), sort_keys=True)
    if key not in _LOADED:
        _LOADED[key] = load_data(data)
    return _LOADED[key]


def run_task(task: Task) -> dict:
    """Train one model on one damaged data set; the test metrics overall and by item group, and the gate's mean
    shares by group. Runs in a worker process."""
    from gatedrec.studies import missing, noise
    from gatedrec.training import Trainer

    damage = {"missing": missing.damaged, "noise": noise.damaged}[task.study]
    dataset, groups = damage(base_dataset(task.data), task.condition, task.corruption_seed)
    config = RunConfig.for_model(task.model.name, seed=task.seed, threads=task.threads)
    config.apply(task.model.fixed)
    started = time.perf_counter()
    trainer = Trainer(config, imputed(dataset, task.model.imputation), quiet=True)
    metrics = trainer.fit()
    test_items = np.zeros(dataset.n_items, dtype=bool)
    test_items[dataset.test.indices] = True
    tables = trainer.model.embeddings()  # once for every group: each is a mask on the same ranking
    by_group = {name: trainer.evaluator.evaluate_embeddings(*tables, "test", items)
                for name, items in groups.items() if (items & test_items).any()}
    shares = trainer.model.explain() if config.params.get("fusion") == "gate" else {}
    record = {
        "model": task.model.label, "condition": asdict(task.condition), "seed": task.seed,
        "valid": {metric: metrics["valid"][metric] for metric in METRICS},
        "test": {metric: metrics["test"][metric] for metric in METRICS},
        "groups": {name: {metric: values[metric] for metric in METRICS} for name, values in by_group.items()},
        "group_sizes": {name: int(items.sum()) for name, items in groups.items()},
        "shares": {name: {modality: float(values[items].mean()) for modality, values in shares.items()}
                   for name, items in groups.items() if items.any()},
        "best_epoch": metrics["best_epoch"], "wall_seconds": time.perf_counter() - started,
    }
    write_json(task.path, record)
    return record


def parallel_jobs(dataset: Dataset, jobs: int) -> tuple[int, int]:
    """(worker processes, threads per run): jobs 0 is one single-threaded run per core for a small data set
    (below SMALL_PROBLEM_PAIRS training pairs one thread is fastest) and one run on every core otherwise."""
    if jobs < 0:
        raise GatedRecError(f"--jobs {jobs}: give 0 (automatic) or a number of parallel runs")
    if jobs == 0:
        jobs = usable_cores() if dataset.train.nnz < SMALL_PROBLEM_PAIRS else 1
    return jobs, max(1, usable_cores() // jobs) if dataset.train.nnz >= SMALL_PROBLEM_PAIRS or jobs > 1 else 1


def run_tasks(tasks: list[Task], jobs: int) -> dict[Task, dict]:
    """Every task's record: read back where a run already finished, trained otherwise, with a progress bar."""
    records = {task: json.loads(task.path.read_text()) for task in tasks if task.path.exists()}
    pending = [task for task in tasks if task not in records]
    with progress_bar() as progress:
        bar = progress.add_task("runs", total=len(tasks), completed=len(records), unit="run")
        if jobs <= 1:
            for task in pending:
                progress.update(bar, description=f"{task.model.label} · {task.condition.key} · seed {task.seed}")
                records[task] = run_task(task)
                progress.advance(bar)
            return records
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(run_task, task): task for task in pending}
            for future in as_completed(futures):
                task = futures[future]
                records[task] = future.result()
                progress.update(bar, description=f"{task.model.label} · {task.condition.key} · seed {task.seed}")
                progress.advance(bar)
    return records


def plan(study: str, data: DataConfig, models: list[StudyModel], conditions: list[Condition], seeds: list[int],
         out: Path, threads: int, corruption_seed: int) -> list[Task]:
    """One task per model, condition and seed; a model that reads no features runs the clean condition only."""
    if not seeds:
        raise GatedRecError("--seeds is empty; give e.g. 1,2,3")
    tasks = []
    for model in models:
        for condition in conditions if model.reads_features else [CLEAN_CONDITION]:
            for seed in seeds:
                path = out / "runs" / f"{run_key(model, condition, seed, corruption_seed)}.json"
                tasks.append(Task(study, data, condition, model, seed, threads, corruption_seed, path))
    return tasks


def rows(records: dict[Task, dict], models: list[StudyModel], conditions: list[Condition],
         share_modality: str) -> list[dict]:
    """One row per model and condition: test metrics (mean and std over seeds), by item group, the loss against
    the model's clean figure, and for gated models the mean share of ``share_modality`` by item group."""
    by_cell: dict[tuple[str, str], list[dict]] = {}
    for task, record in records.items():
        by_cell.setdefault((task.model.label, task.condition.key), []).append(record)
    table = []
    for model in models:
        clean = by_cell[(model.label, CLEAN)]
        clean_recall = statistics.fmean(run["test"]["recall@20"] for run in clean)
        for condition in conditions:
            runs = by_cell.get((model.label, condition.key), clean)
            table.append(row(model, condition, runs, clean_recall, share_modality))
    return table


def row(model: StudyModel, condition: Condition, runs: list[dict], clean_recall: float, share_modality: str) -> dict:
    test = {metric: mean_std([run["test"][metric] for run in runs]) for metric in METRICS}
    groups = list(dict.fromkeys(name for run in runs for name in run["groups"]))
    result = {
        "model": model.label, "modality": condition.modality, "share": condition.share, "level": condition.level,
        "test": test,
        "relative_loss": 1.0 - test["recall@20"]["mean"] / clean_recall if clean_recall > 0 else 0.0,
        "groups": {name: {metric: mean_std([run["groups"][name][metric] for run in runs if name in run["groups"]])
                          for metric in METRICS} for name in groups},
        "features_read": model.reads_features,
        "seeds": [run["seed"] for run in runs],
    }
    gated = [run["shares"] for run in runs if any(run["shares"].values())]
    if gated:
        names = list(dict.fromkeys(name for shares in gated for name in shares))
        result["modality_share"] = {name: statistics.fmean(shares[name][share_modality] for shares in gated
                                                           if name in shares) for name in names}
    return result


def run_study(study: str, data: DataConfig, dataset: Dataset, models: list[StudyModel], conditions: list[Condition],
              seeds: list[int], out: Path, jobs: int, corruption_seed: int, share_modality: str) -> dict:
    """Run (or resume) every task, then write the reports; returns results.json's content."""
    from gatedrec.studies.robustness_report import write_study_reports

    started = time.perf_counter()
    jobs, threads = parallel_jobs(dataset, jobs)
    tasks = plan(study, data, models, conditions, seeds, out, threads, corruption_seed)
    console.print(f"{len(tasks)} runs ({sum(task.path.exists() for task in tasks)} already done), {jobs} at a time")
    records = run_tasks(tasks, jobs)
    table = rows(records, models, conditions, share_modality)
    meta = {"study": study, "data": data.path, "data_name": dataset.name, "items": dataset.n_items,
            "users": dataset.n_users, "seeds": seeds, "corruption_seed": corruption_seed, "jobs": jobs,
            "threads_per_run": threads, "runs": len(tasks), "wall_seconds": time.perf_counter() - started,
            "machine": machine()}
    write_study_reports(out, meta, table, "level" if study == "noise" else "share")
    return {"meta": meta, "rows": table}
