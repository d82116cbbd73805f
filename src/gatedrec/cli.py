"""The ``gatedrec`` command: prepare, features, generate, train, evaluate, benchmark, demo, models, and serving:
export, recommend, similar, serve.

Only the parser lives here, with light imports, so that ``gatedrec --help`` answers at once; each command's
handler (``gatedrec.commands``) is imported when the command runs. Results go to stdout, logs and progress to
stderr.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from gatedrec import __version__
from gatedrec.errors import GatedRecError
from gatedrec.options import (
    DEFAULT_IMAGE_ENCODER, DEFAULT_MODEL, DEFAULT_TEXT_ENCODER, DEFAULT_TEXT_FIELDS, GRIDS, INDEXES, MISSING_MODES,
    MISSING_PROTOCOLS, MISSING_STUDY_MODELS, MODEL_NAMES, NOISE_STUDY_MODELS, SPLIT_NAMES,
)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(format="warning: %(message)s", level=logging.WARNING, stream=sys.stderr)
    try:
        handler(args.handler)(args)
    except GatedRecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; a training run continues with --resume", file=sys.stderr)
        return 130
    finally:
        if "torch.distributed" in sys.modules:  # only a command that trained can have joined a process group
            from gatedrec.distributed import leave_group

            leave_group()
    return 0


def number(kind: type, minimum: float | None = None, maximum: float | None = None, above: bool = False):
    """An argparse type: ``kind`` (int or float) within the bounds, else a message naming the allowed range."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not {'an integer' if kind is int else 'a number'}") from None
        low_ok = minimum is None or (value > minimum if above else value >= minimum)
        if value != value or not low_ok or (maximum is not None and value > maximum):
            bounds = [f"{'>' if above else '>='} {minimum:g}"] if minimum is not None else []
            bounds += [f"<= {maximum:g}"] if maximum is not None else []
            raise argparse.ArgumentTypeError(f"{text} is out of range: it must be {' and '.join(bounds)}")
        return value
    return parse


COUNT = number(int, 1)


def shares_list(text: str) -> list[float]:
    """Comma-separated shares in (0, 1]."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or not all(0 < value <= 1 for value in values):
        raise argparse.ArgumentTypeError(f"'{text}' must be comma-separated shares above 0 and at most 1, "
                                         "e.g. 0.25,0.5,1")
    return values


def handler(where: str):
    """The function named ``module:function`` under gatedrec.commands, imported now."""
    module, _, function = where.partition(":")
    return getattr(importlib.import_module(f"gatedrec.commands.{module}"), function)


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
    _add_study(commands)
    models = commands.add_parser("models", help="list the models and their default parameters")
    models.set_defaults(handler="training:models_command")
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
    parser.add_argument("--missing", choices=MISSING_MODES,
                        help="a missing modality is masked out of the fusion (default) or filled with the mean "
                             "vector (MMRec's preprocessing)")
    parser.add_argument("--split", metavar="cold-items:SHARE[:SEED]",
                        help="re-split: SHARE of the items (seeded, default seed 0) hold out all their interactions "
                             "in valid/test; metrics then also report test_cold and test_warm")


def _add_generate(commands) -> None:
    parser = commands.add_parser("generate", help="write a generated data set with planted structure")
    parser.add_argument("--users", type=number(int, 2), default=2000)
    parser.add_argument("--items", type=number(int, 10), default=1000)
    parser.add_argument("--interactions", type=COUNT, default=40000)
    parser.add_argument(
        "--modality", action="append", default=[], metavar="NAME:DIM",
        help="a modality and its dimension (repeatable); default visual:64 and text:32",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.set_defaults(handler="data:generate_command")


def _add_train(commands) -> None:
    parser = commands.add_parser("train", help="train a model, stop early on valid Recall@20, report test")
    _add_data_options(parser)
    _add_loading_options(parser)
    parser.add_argument("--model", help=f"one of {', '.join(MODEL_NAMES)} (default {DEFAULT_MODEL})")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a parameter")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--epochs", type=int, help="at most this many epochs (default 1000)")
    parser.add_argument("--patience", type=int, help="evaluations without improvement before stopping (default 20)")
    parser.add_argument("--device", help="cpu (default), cuda or cuda:N")
    parser.add_argument("--mask-valid", action="store_true", help="also mask valid items when ranking for test")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the run's metrics as JSON on stdout")
    parser.set_defaults(handler="training:train")


def _add_evaluate(commands) -> None:
    parser = commands.add_parser("evaluate", help="evaluate a trained run's best checkpoint")
    parser.add_argument("--run", required=True, help="run folder written by 'gatedrec train'")
    parser.add_argument("--split", default="test", choices=("valid", "test"))
    parser.add_argument("--mask-valid", action="store_true", help="also mask valid items when ranking for test")
    parser.add_argument("--json", nargs="?", const="-", metavar="FILE",
                        help="print the metrics as JSON on stdout, or with FILE write them there (and print the table)")
    parser.set_defaults(handler="training:evaluate")


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
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    parser.set_defaults(handler="training:benchmark")


def _add_demo(commands) -> None:
    parser = commands.add_parser("demo", help="generate data, train LightGCN and RLMultimodalRec, show the gate")
    parser.add_argument("--out", default="runs/demo")
    parser.add_argument("--epochs", type=COUNT, default=80)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(handler="demo:demo")


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
    text.set_defaults(handler="data:features_text")


def _add_prepare(commands) -> None:
    parser = commands.add_parser("prepare", help="raw interactions and item content -> a trainable data folder")
    kinds = parser.add_subparsers(dest="kind", required=True)
    amazon = kinds.add_parser("amazon",
                              help="McAuley Amazon reviews + metadata (2014, 2018 or 2023; .json or .json.gz)")
    amazon.add_argument("--reviews", required=True, help="reviews file (JSON lines, plain or gzipped)")
    amazon.add_argument("--meta", help="metadata file: titles, brands, categories, descriptions, image URLs")
    _add_prepare_options(amazon)
    amazon.set_defaults(handler="data:prepare_command")
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
    generic.set_defaults(handler="data:prepare_command")


def _add_prepare_options(parser: argparse.ArgumentParser) -> None:
    images = parser.add_mutually_exclusive_group()
    images.add_argument("--images-dir", help="folder of item images named by raw item id (e.g. B00TNNWMXI.jpg)")
    images.add_argument("--download-images", action="store_true", help="download the image URLs of the metadata")
    parser.add_argument("--image-cache", help="where downloaded images are kept (default: images/ in the gatedrec "
                                              "cache, $GATEDREC_CACHE or ~/.cache/gatedrec)")
    parser.add_argument("--download-workers", type=COUNT, default=8, help="concurrent downloads (default 8)")
    parser.add_argument("--download-timeout", type=number(float, 0, above=True), default=10.0,
                        help="seconds per request (default 10)")
    parser.add_argument("--download-retries", type=number(int, 0), default=2,
                        help="retries of a transient failure (default 2)")
    parser.add_argument("--min-user", type=COUNT, default=5, help="k-core: interactions per user (default 5)")
    parser.add_argument("--min-item", type=COUNT, default=5, help="k-core: interactions per item (default 5)")
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


def _add_study(commands) -> None:
    parser = commands.add_parser("study", help="studies of trained runs")
    kinds = parser.add_subparsers(dest="kind", required=True)
    gates = kinds.add_parser("gates", help="what a run's gate learned: shares against popularity, feature norms, "
                                           "categories; the most and least visual items; PNG plots")
    gates.add_argument("--run", required=True, help="run folder written by 'gatedrec train'")
    gates.add_argument("--out", required=True, help="folder for results.json, results.md and the plots")
    gates.set_defaults(handler="studies:gates")
    missing = kinds.add_parser("missing", help="models trained with modalities taken away from items (DGMRec's "
                                               "protocol or a sweep), scored overall and by item group")
    _add_robustness_options(missing, MISSING_STUDY_MODELS)
    missing.add_argument("--protocol", choices=MISSING_PROTOCOLS, default="dgmrec",
                         help="dgmrec (default): two thirds of the items lose the text, the image or both, stratified "
                              "by popularity; sweep: --shares of the items lose --modality")
    missing.add_argument("--shares", type=shares_list, default="0.2,0.4,0.6,0.8",
                         help="sweep: shares of the items without the modality (default 0.2,0.4,0.6,0.8)")
    missing.set_defaults(handler="studies:missing")
    noise = kinds.add_parser("noise", help="models trained with one modality corrupted for a share of the items; "
                                           "the gate's shares of corrupted and clean items")
    _add_robustness_options(noise, NOISE_STUDY_MODELS)
    noise.add_argument("--shares", type=shares_list, default="0.5,1",
                       help="shares of the items corrupted (default 0.5,1)")
    noise.add_argument("--levels", default="1,replace",
                       help="Gaussian noise in the features' standard deviations, or 'replace' (random vectors of "
                            "the features' mean and covariance); default 1,replace; the clean run is always included")
    noise.set_defaults(handler="studies:noise")


def _add_robustness_options(parser: argparse.ArgumentParser, models: str) -> None:
    parser.add_argument("--data", required=True, help="folder in MMRec layout (<name>.inter + feature .npy files)")
    parser.add_argument("--inter", help="interaction file, when the folder holds several")
    parser.add_argument("--features", action="append", default=[], metavar="NAME=FILE[@IDS]",
                        help="a modality feature file (repeatable), as train's --modality")
    parser.add_argument("--modality", help="the modality taken away or corrupted (default: visual, else the first)")
    parser.add_argument("--models", default=models,
                        help="comma-separated name[:key=value...], missing=mask|mean|zero among the keys "
                             f"(default {models})")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--corruption-seed", type=number(int, 0), default=0,
                        help="seed of the masks and the noise (the same for every model and seed)")
    parser.add_argument("--jobs", type=number(int, 0), default=0,
                        help="runs at a time (default 0: one per core on small data sets, else one)")
    parser.add_argument("--out", required=True, help="folder for results.json/md/csv, the plots and the runs "
                                                     "(a study resumes from it)")


def _add_serving(commands) -> None:
    export = commands.add_parser("export", help="write a run's serving files (train does this; for older runs)")
    export.add_argument("--run", required=True, help="run folder written by 'gatedrec train'")
    export.add_argument("--text-encoder", help="the encoder that made the text features (to encode new items' text)")
    export.add_argument("--image-encoder", help="the encoder that made the visual features (for new items' images)")
    export.set_defaults(handler="serving:export_command")
    recommend = commands.add_parser("recommend", help="top-K items for a user, or for a history of items")
    recommend.add_argument("--run", required=True, help="run folder written by 'gatedrec train'")
    who = recommend.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="a known user's raw id")
    who.add_argument("--history", help="comma-separated raw item ids of a user the model never saw")
    recommend.add_argument("--k", type=COUNT, default=10, help="how many items (default 10)")
    recommend.add_argument("--include-seen", action="store_true", help="keep the user's training items")
    recommend.add_argument("--explain", action="store_true", help="modality shares and the items behind each score")
    recommend.add_argument("--json", action="store_true", help="print JSON instead of a table")
    recommend.set_defaults(handler="serving:recommend")
    similar = commands.add_parser("similar", help="the items most similar to an item")
    similar.add_argument("--run", required=True, help="run folder written by 'gatedrec train'")
    similar.add_argument("--item", required=True, help="an item's raw id")
    similar.add_argument("--k", type=COUNT, default=10, help="how many items (default 10)")
    similar.add_argument("--json", action="store_true", help="print JSON instead of a table")
    similar.set_defaults(handler="serving:similar")
    serve = commands.add_parser("serve", help="serve a run over HTTP (JSON API, /metrics, a web page at /)")
    serve.add_argument("--run", required=True, help="run folder written by 'gatedrec train'")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=number(int, 1, 65535), default=8000, help="port (default 8000)")
    serve.add_argument("--index", choices=INDEXES, default="exact",
                       help="exact top-K (default) or hnsw (approximate; faiss, for large catalogues)")
    serve.set_defaults(handler="serving:serve")


if __name__ == "__main__":
    raise SystemExit(main())
