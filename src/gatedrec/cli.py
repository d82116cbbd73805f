"""The ``gatedrec`` command: prepare, features, generate, train, evaluate, benchmark, demo, models, and serving:
export, recommend, similar, serve."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from rich.table import Table

from gatedrec import __version__
from gatedrec.benchmark import GRIDS, Benchmark, parse_models
from gatedrec.config import DataConfig, RunConfig, TrainConfig, parse_assignment
from gatedrec.data import load_data, load_mmrec
from gatedrec.data.mmrec import MISSING_MODES, resolve_path
from gatedrec.data.synthetic import generate, save_mmrec
from gatedrec.distributed import leave_group
from gatedrec.errors import GatedRecError
from gatedrec.evaluation import METRICS, TOPKS, Evaluator
from gatedrec.features.derived import TextColumn, derive_text_folder
from gatedrec.features.encoders import DEFAULT_IMAGE_ENCODER, DEFAULT_TEXT_ENCODER, text_encoder
from gatedrec.prepare.images import ImageFetch
from gatedrec.prepare.pipeline import (
    DEFAULT_TEXT_FIELDS, SPLIT_NAMES, GenericColumns, PrepareOptions, amazon_source, generic_source, prepare,
)
from gatedrec.io import write_json
from gatedrec.models import MODELS, default_params
from gatedrec.progress import console
from gatedrec.report import write_reports
from gatedrec.serving import commands as serving_commands
from gatedrec.serving.recommender import INDEXES
from gatedrec.system import machine
from gatedrec.training import Trainer, build_model

RUN_FILES = ("metrics.json", "checkpoints/last.pt")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(format="warning: %(message)s", level=logging.WARNING, stream=sys.stderr)
    try:
        args.handler(args)
    except GatedRecError as error:
        console.print(f"[bold red]error:[/] {error}", highlight=False, markup=True)
        return 2
    except KeyboardInterrupt:
        console.print("interrupted; a training run continues with --resume")
        return 130
    finally:
        leave_group()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gatedrec", description=__doc__)
    parser.add_argument("--version", action="version", version=f"gatedrec {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_generate(commands)
    _add_train(commands)
    _add_evaluate(commands)
    _add_benchmark(commands)
    _add_demo(commands)
    _add_features(commands)
    _add_prepare(commands)
    _add_serving(commands)
    models = commands.add_parser("models", help="list the models and their default parameters")
    models.set_defaults(handler=run_models)
    return parser


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="folder in MMRec layout (<name>.inter + feature .npy files)")
    parser.add_argument("--inter", help="interaction file, when the folder holds several")
    parser.add_argument(
        "--modality", action="append", default=[], metavar="NAME=FILE[@IDS]",
        help="a modality feature file (repeatable); FILE@IDS: FILE's rows are the items listed in the itemID "
             "column of the TSV file IDS, other items lack the modality; default: image_feat.npy as visual, "
             "text_feat.npy as text, or what the folder's dataset.yaml names",
    )


def _add_loading_options(parser: argparse.ArgumentParser) -> None:
    """How train and benchmark read the data: missing modalities, an optional cold-item re-split."""
    parser.add_argument("--missing", choices=MISSING_MODES, default="mask",
                        help="a missing modality is masked out of the fusion (default) or filled with the mean "
                             "vector (MMRec's preprocessing)")
    parser.add_argument("--split", metavar="cold-items:SHARE[:SEED]",
                        help="re-split: SHARE of the items (seeded, default seed 0) hold out all their interactions "
                             "in valid/test; metrics then also report test_cold and test_warm")


def _add_generate(commands) -> None:
    parser = commands.add_parser("generate", help="write a generated data set with planted structure")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--interactions", type=int, default=40000)
    parser.add_argument(
        "--modality", action="append", default=[], metavar="NAME:DIM",
        help="a modality and its dimension (repeatable); default visual:64 and text:32",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.set_defaults(handler=run_generate)


def _add_train(commands) -> None:
    parser = commands.add_parser("train", help="train a model, stop early on valid Recall@20, report test")
    _add_data_options(parser)
    _add_loading_options(parser)
    parser.add_argument("--model", default="rlmultimodalrec", help=f"one of {', '.join(MODELS)}")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a parameter")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--epochs", type=int, help="at most this many epochs (default 1000)")
    parser.add_argument("--patience", type=int, help="evaluations without improvement before stopping (default 20)")
    parser.add_argument("--device", help="cpu (default), cuda or cuda:N")
    parser.add_argument("--mask-valid", action="store_true", help="also mask valid items when ranking for test")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(handler=run_train)


def _add_evaluate(commands) -> None:
    parser = commands.add_parser("evaluate", help="evaluate a trained run's best checkpoint")
    parser.add_argument("--run", required=True, help="run folder written by 'gatedrec train'")
    parser.add_argument("--split", default="test", choices=("valid", "test"))
    parser.add_argument("--mask-valid", action="store_true", help="also mask valid items when ranking for test")
    parser.add_argument("--json", help="also write the metrics to this JSON file")
    parser.set_defaults(handler=run_evaluate)


def _add_benchmark(commands) -> None:
    parser = commands.add_parser(
        "benchmark", help="compare models: grid on valid Recall@20, seeds, test mean ± std, tables and plots"
    )
    _add_data_options(parser)
    _add_loading_options(parser)
    parser.add_argument("--models", default="all",
                        help="'all' or a comma-separated list; NAME:KEY=VALUE[:KEY=VALUE] fixes parameters (ablations)")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--grid", default="default", choices=GRIDS)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="fix a parameter for every model that has it, or a training setting")
    parser.add_argument("--epochs", type=int, help="at most this many epochs per run (default 1000)")
    parser.add_argument("--patience", type=int, help="evaluations without improvement before stopping (default 20)")
    parser.add_argument("--out", required=True, help="report folder; finished runs in it are not repeated")
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(handler=run_benchmark)


def _add_demo(commands) -> None:
    parser = commands.add_parser("demo", help="generate data, train LightGCN and RLMultimodalRec, show the gate")
    parser.add_argument("--out", default="runs/demo")
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(handler=run_demo)


def _add_features(commands) -> None:
    parser = commands.add_parser("features", help="encode item content into a modality of a new data folder")
    kinds = parser.add_subparsers(dest="kind", required=True)
    text = kinds.add_parser("text", help="encode a text column with a sentence-transformers model")
    _add_data_options(text)
    text.add_argument("--text-file", required=True,
                      help="TSV with an itemID column and a text column (relative to --data)")
    text.add_argument("--column", default="text", help="the text column (default: text)")
    text.add_argument("--encoder", default=DEFAULT_TEXT_ENCODER,
                      help="sentence-transformers model: the offline all-MiniLM-L6-v2 (default), a local folder "
                           "or a hub name")
    text.add_argument("--name", default="text", help="the modality's name (default: text)")
    text.add_argument("--device", default="cpu")
    text.add_argument("--out", required=True, help="the new data folder (links to the source's files)")
    text.add_argument("--quiet", action="store_true")
    text.set_defaults(handler=run_features_text)


def _add_prepare(commands) -> None:
    parser = commands.add_parser("prepare", help="raw interactions and item content -> a trainable data folder")
    kinds = parser.add_subparsers(dest="kind", required=True)
    amazon = kinds.add_parser("amazon",
                              help="McAuley Amazon reviews + metadata (2014, 2018 or 2023; .json or .json.gz)")
    amazon.add_argument("--reviews", required=True, help="reviews file (JSON lines, plain or gzipped)")
    amazon.add_argument("--meta", help="metadata file: titles, brands, categories, descriptions, image URLs")
    _add_prepare_options(amazon)
    amazon.set_defaults(handler=run_prepare)
    generic = kinds.add_parser("generic", help="an interactions CSV/TSV/Parquet table plus an item table")
    generic.add_argument("--interactions", required=True,
                         help="table with user and item columns (rating, timestamp optional)")
    generic.add_argument("--items", help="table with an item id column, text columns and an image path or URL column")
    generic.add_argument("--user-col", default="user")
    generic.add_argument("--item-col", default="item")
    generic.add_argument("--rating-col")
    generic.add_argument("--time-col")
    generic.add_argument("--item-id-col", default="item", help="the item id column of --items")
    generic.add_argument("--text-cols", default="title,description", help="comma-separated text columns of --items")
    generic.add_argument("--image-col", help="image file path (relative to --items' folder) or URL column of --items")
    _add_prepare_options(generic)
    generic.set_defaults(handler=run_prepare)


def _add_prepare_options(parser: argparse.ArgumentParser) -> None:
    images = parser.add_mutually_exclusive_group()
    images.add_argument("--images-dir", help="folder of item images named by raw item id (e.g. B00TNNWMXI.jpg)")
    images.add_argument("--download-images", action="store_true", help="download the image URLs of the metadata")
    parser.add_argument("--image-cache", help="where downloaded images are kept (default: images/ in the gatedrec "
                                              "cache, $GATEDREC_CACHE or ~/.cache/gatedrec)")
    parser.add_argument("--download-workers", type=int, default=8, help="concurrent downloads (default 8)")
    parser.add_argument("--download-timeout", type=float, default=10.0, help="seconds per request (default 10)")
    parser.add_argument("--download-retries", type=int, default=2, help="retries of a transient failure (default 2)")
    parser.add_argument("--min-user", type=int, default=5, help="k-core: interactions per user (default 5)")
    parser.add_argument("--min-item", type=int, default=5, help="k-core: interactions per item (default 5)")
    parser.add_argument("--min-rating", type=float, help="keep interactions rated at least this")
    parser.add_argument("--split", default="random-8-1-1",
                        help=f"one of {', '.join(SPLIT_NAMES)} (default random-8-1-1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    parser.add_argument("--text-fields", default=",".join(DEFAULT_TEXT_FIELDS),
                        help="item text: these content fields in order (amazon: title, brand, categories, features, "
                             "description; generic: the --text-cols)")
    parser.add_argument("--text-encoder", default=DEFAULT_TEXT_ENCODER, help="sentence-transformers model, or none")
    parser.add_argument("--image-encoder", default=DEFAULT_IMAGE_ENCODER,
                        help="efficientnet-lite0 (default), open_clip:ARCH:WEIGHTS, or none")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", required=True, help="the data folder to write")
    parser.add_argument("--quiet", action="store_true")


def _add_serving(commands) -> None:
    export = commands.add_parser("export", help="write a run's serving files (train does this; for older runs)")
    export.add_argument("--run", required=True, help="run folder written by 'gatedrec train'")
    export.add_argument("--text-encoder", help="the encoder that made the text features (to encode new items' text)")
    export.add_argument("--image-encoder", help="the encoder that made the visual features (for new items' images)")
    export.set_defaults(handler=serving_commands.export_command)
    recommend = commands.add_parser("recommend", help="top-K items for a user, or for a history of items")
    recommend.add_argument("--run", required=True, help="run folder written by 'gatedrec train'")
    who = recommend.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="a known user's raw id")
    who.add_argument("--history", help="comma-separated raw item ids of a user the model never saw")
    recommend.add_argument("--k", type=int, default=10, help="how many items (default 10)")
    recommend.add_argument("--include-seen", action="store_true", help="keep the user's training items")
    recommend.add_argument("--explain", action="store_true", help="modality shares and the items behind each score")
    recommend.add_argument("--json", action="store_true", help="print JSON instead of a table")
    recommend.set_defaults(handler=serving_commands.recommend)
    similar = commands.add_parser("similar", help="the items most similar to an item")
    similar.add_argument("--run", required=True, help="run folder written by 'gatedrec train'")
    similar.add_argument("--item", required=True, help="an item's raw id")
    similar.add_argument("--k", type=int, default=10, help="how many items (default 10)")
    similar.add_argument("--json", action="store_true", help="print JSON instead of a table")
    similar.set_defaults(handler=serving_commands.similar)
    serve = commands.add_parser("serve", help="serve a run over HTTP (JSON API, /metrics, a web page at /)")
    serve.add_argument("--run", required=True, help="run folder written by 'gatedrec train'")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--index", choices=INDEXES, default="exact",
                       help="exact top-K (default) or hnsw (approximate; faiss, for large catalogues)")
    serve.set_defaults(handler=serving_commands.serve)


# ---- generate ---------------------------------------------------------------------------------------
def parse_modality_dims(texts: list[str]) -> dict[str, int] | None:
    if not texts:
        return None
    dims = {}
    for text in texts:
        name, sep, dim = text.partition(":")
        if not sep or not name or not dim.isdigit() or int(dim) < 1:
            raise GatedRecError(f"--modality '{text}' must look like NAME:DIM, e.g. visual:4096")
        dims[name] = int(dim)
    return dims


def run_generate(args) -> None:
    generated = generate(args.users, args.items, args.interactions, parse_modality_dims(args.modality), args.seed)
    folder = save_mmrec(generated, args.out)
    console.print(f"wrote {folder}: {_describe(generated.dataset)}")


# ---- train ------------------------------------------------------------------------------------------
def parse_modality_files(texts: list[str]) -> dict[str, str] | None:
    if not texts:
        return None
    files = {}
    for text in texts:
        name, sep, file = text.partition("=")
        if not sep or not name or not file:
            raise GatedRecError(
                f"--modality '{text}' must look like NAME=FILE or NAME=FILE@IDS, "
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
    else:
        existing = [name for name in RUN_FILES if (out / name).exists()]
        if existing:
            raise GatedRecError(
                f"'{out}' already holds a run ({existing[0]}); continue it with --resume or pick another --out")
        config = RunConfig.for_model(args.model)
        config.data = data_config(args)
    config.apply_assignments(args.set)
    flags = {"seed": args.seed, "epochs": args.epochs, "patience": args.patience, "device": args.device}
    config.apply({key: value for key, value in flags.items() if value is not None})
    if args.mask_valid:
        config.train.mask_valid = True
    return config


def data_config(args) -> DataConfig:
    return DataConfig(args.data, args.inter, parse_modality_files(args.modality), args.missing, args.split)


def run_train(args) -> None:
    config = config_from_args(args)
    dataset = load_data(config.data)
    if not args.quiet:
        console.print(f"training {config.model} on {dataset.name}: {_describe(dataset)}")
    metrics = Trainer(config, dataset, args.out, quiet=args.quiet).fit(resume=args.resume)
    if not args.quiet:
        console.print(metrics_table(metrics["test"], f"{config.model}: test at best epoch {metrics['best_epoch']}"))
        console.print(f"run folder: {args.out}")


def _describe(dataset) -> str:
    summary = dataset.summary()
    modalities = ", ".join(f"{name} ({info['dim']}-d)" for name, info in summary["modalities"].items()) or "no modality"
    return f"{summary['users']} users, {summary['items']} items, {summary['train']} training pairs, {modalities}"


# ---- benchmark -----------------------------------------------------------------------------------------
def run_benchmark(args) -> None:
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
    console.print(f"benchmark on {dataset.name}: {_describe(dataset)}")
    benchmark = Benchmark(dataset, data, entries, seeds, args.grid, Path(args.out), train_settings, args.quiet)
    started = time.perf_counter()
    results = benchmark.run()
    meta = {"data": dataset.name, "grid": args.grid, "seeds": seeds, "machine": machine(),
            "wall_seconds": time.perf_counter() - started}
    for path in write_reports(Path(args.out), results, meta):
        console.print(f"wrote {path}")


def parse_seeds(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise GatedRecError(f"--seeds '{text}' must be comma-separated integers, e.g. 1,2,3") from None


# ---- features ---------------------------------------------------------------------------------------
def run_features_text(args) -> None:
    text = TextColumn(resolve_path(Path(args.data), args.text_file), args.column)
    encoder = text_encoder(args.encoder, args.device)
    dataset, from_cache = derive_text_folder(
        Path(args.data), Path(args.out), text, encoder, args.name, args.inter, parse_modality_files(args.modality),
        args.quiet,
    )
    coverage = dataset.modalities[args.name].present.mean()
    source = "reused from the cache" if from_cache else "encoded"
    console.print(f"{args.name}: {coverage:.1%} of the items, {source} with {encoder.identity}")
    console.print(f"wrote {args.out}: {_describe(dataset)}; train with: gatedrec train --data {args.out}")


# ---- prepare ----------------------------------------------------------------------------------------
def run_prepare(args) -> None:
    if args.kind == "amazon":
        source = amazon_source(Path(args.reviews), Path(args.meta) if args.meta else None, args.quiet)
        text_fields = args.text_fields
    else:
        columns = GenericColumns(args.user_col, args.item_col, args.rating_col, args.time_col, args.item_id_col,
                                 tuple(_names(args.text_cols)), args.image_col)
        source = generic_source(Path(args.interactions), Path(args.items) if args.items else None, columns)
        text_fields = args.text_cols if args.text_fields == ",".join(DEFAULT_TEXT_FIELDS) else args.text_fields
    options = PrepareOptions(
        min_user=args.min_user, min_item=args.min_item, min_rating=args.min_rating, split=args.split, seed=args.seed,
        text_fields=tuple(_names(text_fields)), text_encoder=_encoder(args.text_encoder),
        image_encoder=_encoder(args.image_encoder), images_dir=Path(args.images_dir) if args.images_dir else None,
        download_images=args.download_images, image_cache=Path(args.image_cache) if args.image_cache else None,
        fetch=ImageFetch(args.download_workers, args.download_timeout, args.download_retries), device=args.device,
        quiet=args.quiet,
    )
    summary = prepare(source, Path(args.out), options, lambda step: None if args.quiet else console.print(f"· {step}"))
    console.print(prepare_table(summary, args.out))
    console.print(f"train with: gatedrec train --data {args.out}")


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _encoder(name: str) -> str | None:
    return None if name.lower() == "none" else name


def prepare_table(summary: dict, out: str) -> Table:
    table = Table(title=f"prepared {out}")
    table.add_column("")
    table.add_column("value", justify="right")
    for key in ("users", "items", "interactions", "train", "valid", "test"):
        table.add_row(key, f"{summary[key]:,}")
    table.add_row("sparsity", f"{summary['sparsity']:.4%}")
    for name, share in summary["coverage"].items():
        table.add_row(f"{name} coverage", f"{share:.1%}")
    for problem in summary["malformed"]:
        table.add_row(f"malformed lines in {Path(problem['file']).name}", f"{problem['malformed_lines']:,}")
    if summary["images"]:
        images = summary["images"]
        counts = f"{images['found']:,} / {images['downloaded']:,} / {images['from_cache']:,}"
        table.add_row("images found / downloaded / cached", counts)
        for reason, count in images["failures"].items():
            table.add_row(f"no image: {reason}", f"{count:,}")
    return table


# ---- evaluate ---------------------------------------------------------------------------------------
def run_evaluate(args) -> None:
    run = Path(args.run)
    if not (run / "config.yaml").exists() or not (run / "checkpoints" / "best.pt").exists():
        raise GatedRecError(f"'{run}' is not a finished run folder (config.yaml and checkpoints/best.pt are needed)")
    config = RunConfig.load(run / "config.yaml")
    dataset = load_data(config.data)
    model = build_model(config, dataset)
    model.load_state_dict(torch.load(run / "checkpoints" / "best.pt", map_location="cpu", weights_only=False)["model"])
    model.eval()
    mask_valid = args.mask_valid or config.train.mask_valid
    evaluator = Evaluator(dataset, mask_valid=mask_valid)
    metrics = evaluator.evaluate(model, args.split)
    masking = "train + valid items masked" if mask_valid and args.split == "test" else "train items masked"
    console.print(metrics_table(metrics, f"{config.model} on {dataset.name}, {args.split} ({masking})"))
    cold_warm = evaluator.evaluate_cold_warm(model) if args.split == "test" else {}
    for name, values in cold_warm.items():
        console.print(metrics_table(values, f"{name.replace('_', ' ')} items only (ranked among all items)"))
    if args.json:
        write_json(args.json, {args.split: metrics, **cold_warm} if cold_warm else metrics)


def metrics_table(metrics: dict[str, float], title: str) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    for k in TOPKS:
        table.add_column(f"@{k}", justify="right")
    for name in METRICS:
        table.add_row(name, *(f"{metrics[f'{name}@{k}']:.4f}" for k in TOPKS))
    return table


# ---- models -----------------------------------------------------------------------------------------
def run_models(args) -> None:
    table = Table(title="models")
    table.add_column("name")
    table.add_column("needs features")
    table.add_column("default parameters")
    for name, cls in MODELS.items():
        params = ", ".join(f"{key}={value}" for key, value in default_params(name).items())
        table.add_row(name, "yes" if cls.needs_modalities else "no", params)
    console.print(table)


# ---- demo -------------------------------------------------------------------------------------------
# A long-tail catalogue (most items have few interactions), where content has something to add; small
# batches give each epoch enough steps to learn within a short run.
DEMO_BATCH_SIZE = 512
DEMO_SIZE = {"n_users": 1500, "n_items": 2000, "n_interactions": 20000, "modality_dims": {"visual": 64, "text": 48}}
# The default weight decays (chosen on the real data sets' validation) shrink projections and gate until
# every item gets the same gate; the demo lightens them so that the gate can show what it learns.
DEMO_LIGHT_DECAY = {"content_weight_decay": 1e-4, "gate_weight_decay": 1e-4}
DEMO_RUNS = {
    "lightgcn": ("lightgcn", {}),
    "rlmultimodalrec:light-decay": ("rlmultimodalrec", DEMO_LIGHT_DECAY),
    "rlmultimodalrec:gate=scalar,light-decay": ("rlmultimodalrec", {"gate": "scalar", **DEMO_LIGHT_DECAY}),
}


def run_demo(args) -> None:
    out = Path(args.out)
    generated = generate(seed=args.seed, **DEMO_SIZE)
    data_folder = save_mmrec(generated, out / "data")
    dataset = load_mmrec(data_folder)
    console.print(f"generated data in {data_folder}: {_describe(dataset)}")
    results = {}
    for label, (model, overrides) in DEMO_RUNS.items():
        config = RunConfig.for_model(model, epochs=args.epochs, seed=args.seed, batch_size=DEMO_BATCH_SIZE)
        config.apply(overrides)
        config.data.path = str(data_folder)
        console.print(f"\n[bold]training {label}[/]")
        results[label] = Trainer(config, dataset, out / demo_folder(label), quiet=args.quiet).fit()
    console.print(comparison_table(results))
    shares = {label: out / demo_folder(label) / "item_shares.tsv" for label in DEMO_RUNS if label != "lightgcn"}
    console.print(group_share_table(shares, data_folder / "item_groups.tsv"))


def demo_folder(label: str) -> str:
    return label.replace(":", "-").replace(",", "-")


def comparison_table(results: dict[str, dict]) -> Table:
    table = Table(title="test metrics at the best valid epoch")
    table.add_column("model")
    for name in ("recall@20", "ndcg@20", "recall@10", "ndcg@10"):
        table.add_column(name, justify="right")
    table.add_column("best epoch", justify="right")
    table.add_column("s/epoch", justify="right")
    for model, metrics in results.items():
        test = metrics["test"]
        table.add_row(
            model, *(f"{test[n]:.4f}" for n in ("recall@20", "ndcg@20", "recall@10", "ndcg@10")),
            str(metrics["best_epoch"]), f"{metrics['seconds_per_epoch']:.3f}",
        )
    return table


def group_share_table(shares_files: dict[str, Path], groups_file: Path) -> Table:
    """Mean visual share per planted item group: the gate should lean on the view that is informative."""
    groups = pd.read_csv(groups_file, sep="\t")
    table = Table(title="what the gate learned: mean visual share (mean of g_i) by planted item group")
    table.add_column("items whose informative view is")
    table.add_column("items", justify="right")
    joined = {}
    for label, path in shares_files.items():
        table.add_column(label, justify="right")
        joined[label] = pd.read_csv(path, sep="\t").merge(groups, on="itemID").groupby("informative")["visual_share"]
    for group, size in groups.groupby("informative").size().items():
        table.add_row(str(group), str(size), *(f"{joined[label].mean()[group]:.3f}" for label in shares_files))
    return table


if __name__ == "__main__":
    raise SystemExit(main())
