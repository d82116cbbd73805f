"""``gatedrec train``, ``evaluate``, ``benchmark`` and ``models``."""

from __future__ import annotations

import time
from dataclasses import fields
from pathlib import Path

import torch
from rich.table import Table

from gatedrec.benchmark import Benchmark, parse_models
from gatedrec.commands.output import describe, print_json, results
from gatedrec.config import DataConfig, RunConfig, TrainConfig, parse_assignment
from gatedrec.data import Dataset, load_data
from gatedrec.errors import GatedRecError
from gatedrec.evaluation import METRICS, TOPKS, Evaluator
from gatedrec.io import write_json
from gatedrec.models import MODELS, RecommenderModel, default_params
from gatedrec.options import DEFAULT_MODEL
from gatedrec.progress import console
from gatedrec.report import write_reports
from gatedrec.settings import SETTINGS
from gatedrec.system import machine
from gatedrec.training import Trainer, build_model

RUN_FILES = ("metrics.json", "checkpoints/last.pt")


def parse_modality_files(texts: list[str], flag: str = "--modality") -> dict[str, str] | None:
    """``flag``'s NAME=FILE[@IDS] values as {name: file}; None when there are none."""
    if not texts:
        return None
    files = {}
    for text in texts:
        name, sep, file = text.partition("=")
        if not sep or not name or not file:
            raise GatedRecError(
                f"{flag} '{text}' must look like NAME=FILE or NAME=FILE@IDS, "
                "e.g. visual=image_feat.npy@image_items.tsv"
            )
        files[name] = file
    return files


def config_from_args(args) -> RunConfig:
    out = Path(args.out)
    if args.resume:
        config = RunConfig.load(out / "config.yaml") if (out / "config.yaml").exists() else None
        if config is None:
            raise GatedRecError(f"nothing to resume in '{out}': no config.yaml; start the run without --resume")
        conflicts = resume_conflicts(args, config)
        if conflicts:
            raise GatedRecError(f"--resume continues the run in '{out}' as it was configured, but "
                                f"{'; '.join(conflicts)}; drop those options, or start a new run with another --out")
    else:
        existing = [name for name in RUN_FILES if (out / name).exists()]
        if existing:
            raise GatedRecError(
                f"'{out}' already holds a run ({existing[0]}); continue it with --resume or pick another --out")
        config = RunConfig.for_model(args.model or DEFAULT_MODEL)
        config.data = data_config(args)
    config.apply_assignments(args.set)
    flags = {"seed": args.seed, "epochs": args.epochs, "patience": args.patience, "device": args.device}
    config.apply({key: value for key, value in flags.items() if value is not None})
    if args.mask_valid:
        config.train.mask_valid = True
    return config


def data_config(args) -> DataConfig:
    return DataConfig(args.data, args.inter, parse_modality_files(args.modality), args.missing or DataConfig.missing,
                      args.split)


def resume_conflicts(args, config: RunConfig) -> list[str]:
    """What the command line asks that differs from the run being resumed: its model, seed, data or model
    parameters (training settings such as --epochs may change)."""
    conflicts = []
    if args.model and args.model != config.model:
        conflicts.append(f"--model {args.model} differs from the run's model {config.model}")
    if args.seed is not None and args.seed != config.train.seed:
        conflicts.append(f"--seed {args.seed} differs from the run's seed {config.train.seed}")
    asked, run_data = data_config(args), config.data
    if Path(asked.path).resolve() != Path(run_data.path).resolve():
        conflicts.append(f"--data {asked.path} differs from the run's data {run_data.path}")
    for name in ("inter", "modalities", "split"):
        given, kept = getattr(asked, name), getattr(run_data, name)
        if given is not None and given != kept:
            conflicts.append(f"--{name.rstrip('s')} {given} differs from the run's {kept}")
    if args.missing and args.missing != run_data.missing:
        conflicts.append(f"--missing {args.missing} differs from the run's {run_data.missing}")
    for key, value in (parse_assignment(text) for text in args.set):
        if key in config.params:
            probe = RunConfig(config.model, dict(config.params))
            probe.apply({key: value})
            if probe.params[key] != config.params[key]:
                kept = config.params[key]
                conflicts.append(f"--set {key}={value} changes the model parameter (the run has {kept!r})")
    return conflicts


def train(args) -> None:
    config = config_from_args(args)
    dataset = load_data(config.data)
    if not args.quiet:
        console.print(f"training {config.model} on {dataset.name}: {describe(dataset)}")
    metrics = Trainer(config, dataset, args.out, quiet=args.quiet).fit(resume=args.resume)
    if args.json:
        print_json(metrics)
    elif not args.quiet:
        results.print(metrics_table(metrics["test"], f"{config.model}: test at best epoch {metrics['best_epoch']}"))
        results.print(f"run folder: {args.out}")


def benchmark(args) -> None:
    assignments = dict(parse_assignment(text) for text in args.set)
    train_keys = set(TrainConfig.__dataclass_fields__)
    train_settings = {key: value for key, value in assignments.items() if key in train_keys}
    model_settings = {key: value for key, value in assignments.items() if key not in train_keys}
    flags = {"epochs": args.epochs, "patience": args.patience}
    train_settings |= {key: value for key, value in flags.items() if value is not None}
    entries = parse_models(args.models, model_settings)
    seeds = parse_seeds(args.seeds)
    data = data_config(args)
    dataset = load_data(data)
    console.print(f"benchmark on {dataset.name}: {describe(dataset)}")
    benchmark = Benchmark(dataset, data, entries, seeds, args.grid, Path(args.out), train_settings, args.quiet)
    started = time.perf_counter()
    outcome = benchmark.run()
    meta = {"data": dataset.name, "grid": args.grid, "seeds": seeds, "machine": machine(),
            "wall_seconds": time.perf_counter() - started}
    written = write_reports(Path(args.out), outcome, meta)
    if args.json:
        print_json({"meta": meta, "results": outcome})
        return
    for path in written:
        results.print(f"wrote {path}")


def parse_seeds(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise GatedRecError(f"--seeds '{text}' must be comma-separated integers, e.g. 1,2,3") from None


def evaluate(args) -> None:
    config, dataset, model = load_best_model(Path(args.run))
    mask_valid = args.mask_valid or config.train.mask_valid
    evaluator = Evaluator(dataset, mask_valid=mask_valid)
    metrics = evaluator.evaluate(model, args.split)
    masking = "train + valid items masked" if mask_valid and args.split == "test" else "train items masked"
    cold_warm = evaluator.evaluate_cold_warm(model) if args.split == "test" else {}
    report = {args.split: metrics, **cold_warm} if cold_warm else metrics
    if args.json == "-":
        print_json(report)
        return
    if args.json:
        write_json(args.json, report)
    results.print(metrics_table(metrics, f"{config.model} on {dataset.name}, {args.split} ({masking})"))
    for name, values in cold_warm.items():
        results.print(metrics_table(values, f"{name.replace('_', ' ')} items only (ranked among all items)"))


def load_best_model(run: Path) -> tuple[RunConfig, Dataset, RecommenderModel]:
    """A finished run's configuration, its data set (read from the run's data folder) and its best model, on
    the CPU, in eval mode."""
    best = run / "checkpoints" / "best.pt"
    if not (run / "config.yaml").exists() or not best.exists():
        raise GatedRecError(f"'{run}' is not a finished run folder (config.yaml and checkpoints/best.pt are needed)")
    config = RunConfig.load(run / "config.yaml")
    config.train.device = "cpu"
    dataset = load_data(config.data)
    model = build_model(config, dataset)
    model.load_state_dict(torch.load(best, map_location="cpu", weights_only=False)["model"])
    return config, dataset, model.eval()


def metrics_table(metrics: dict[str, float], title: str) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    for k in TOPKS:
        table.add_column(f"@{k}", justify="right")
    for name in METRICS:
        table.add_row(name, *(f"{metrics[f'{name}@{k}']:.4f}" for k in TOPKS))
    return table


def models_command(args) -> None:
    table = Table(title="models")
    table.add_column("name")
    table.add_column("needs features")
    table.add_column("default parameters")
    for name, cls in MODELS.items():
        params = ", ".join(f"{key}={value}" for key, value in default_params(name).items())
        table.add_row(name, "yes" if cls.needs_modalities else "no", params)
    results.print(table)
    results.print(training_settings_table())


def training_settings_table() -> Table:
    """The training settings every model takes (--set KEY=VALUE, or their flags), with defaults and ranges."""
    table = Table(title="training settings (--set KEY=VALUE)")
    for column in ("setting", "default", "allowed"):
        table.add_column(column)
    defaults = TrainConfig()
    for setting in fields(TrainConfig):
        table.add_row(setting.name, str(getattr(defaults, setting.name)), SETTINGS[setting.name].describe())
    return table
