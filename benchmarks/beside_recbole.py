"""LightGCN's epoch and evaluation pass beside RecBole's, on the same machine, in one process, epochs in turn.

../shared/REFERENCE.md gives MMRec's and RecBole's seconds on generated Baby-size data (19,445 x 7,050,
165,707 interactions) from its own machine; this session's VMs differ from it and from each other. RecBole,
run here beside us, measures the difference: ours / RecBole on this machine, times RecBole / MMRec on the
reference machine (both from REFERENCE.md), estimates ours / MMRec on one machine, whatever this one is.

RecBole is not a dependency of gatedrec and its 1.2.1 release needs older NumPy, SciPy and pandas, so this
runs in a virtual environment of its own:

    python -m venv /tmp/recbole-env && . /tmp/recbole-env/bin/activate
    pip install -c constraints.txt -e . recbole==1.2.1 "numpy<2" "scipy<1.12" "pandas<2.2"
    python benchmarks/beside_recbole.py [--epochs 6]

Both train LightGCN with 2 layers, 64-d embeddings, batch 2048, Adam at 1e-3 and reg 1e-4 on the data
speed.py calls generated-baby; RecBole splits it its own way (random 0.8 / 0.1 / 0.1 of all interactions,
about as many training pairs as ours) and ranks its validation users against all items, as we do. The
generator's draws depend on NumPy's version (NumPy keeps its distributions' streams only within a release):
under RecBole's NumPy 1.26 it draws 116,787 training pairs of the same shape where speed.py, under NumPy 2,
drew 125,305, so the seconds here compare with each other, not with speed.py's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (in_turn, in_turn_intro, machine, medians_after_warm_up, save_report,  # noqa: E402
                    update_readme, working_directory)
from speed import MMREC, build_case, load, no_time_yet, train_epoch  # noqa: E402

from gatedrec.evaluation import Evaluator  # noqa: E402
from gatedrec.runtime import configure_torch  # noqa: E402

DATASET = "generated-baby"
# REFERENCE.md, generated Baby-size data, seconds on its machine (RecBole: the middle of each range given)
REFERENCE_EPOCH = {"recbole": 3.15, "mmrec": MMREC[f"lightgcn|{DATASET}"][0]}
REFERENCE_EVAL = {"recbole": 2.7, "mmrec": MMREC[f"lightgcn|{DATASET}"][1]}


def write_atomic_file(dataset, folder: Path) -> None:
    """All of the data's interactions as RecBole's atomic .inter file (folder/<name>/<name>.inter)."""
    interactions = (dataset.train + dataset.split("valid") + dataset.split("test")).tocoo()
    (folder / DATASET).mkdir(parents=True)
    lines = "".join(f"{user}\t{item}\n" for user, item in zip(interactions.row, interactions.col))
    (folder / DATASET / f"{DATASET}.inter").write_text("user_id:token\titem_id:token\n" + lines)


def recbole_lightgcn(folder: Path):
    """RecBole's LightGCN trainer and its train and validation loaders."""
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import LightGCN
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    settings = {
        "data_path": str(folder), "dataset": DATASET, "train_batch_size": 2048, "learning_rate": 1e-3,
        "n_layers": 2, "reg_weight": 1e-4, "embedding_size": 64, "device": "cpu", "use_gpu": False,
        "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "RO", "group_by": "user", "mode": "full"},
        "topk": [10, 20], "metrics": ["Recall", "NDCG"], "valid_metric": "Recall@20", "seed": 1,
        "checkpoint_dir": str(folder / "saved"), "show_progress": False, "state": "WARNING",
    }
    config = Config(model="LightGCN", config_dict=settings)
    init_seed(config["seed"], config["reproducibility"])
    train, valid, _ = data_preparation(config, create_dataset(config))
    return Trainer(config, LightGCN(config, train.dataset)), train, valid


def measure(epochs: int) -> dict:
    configure_torch()
    dataset = load(DATASET)
    ours = build_case("lightgcn", dataset)
    evaluator = Evaluator(dataset)
    with tempfile.TemporaryDirectory() as folder:
        write_atomic_file(dataset, Path(folder))
        with working_directory(folder):  # RecBole writes its TensorBoard logs into the working directory
            trainer, train, valid = recbole_lightgcn(Path(folder))
        seconds = in_turn({
            "recbole_epoch": lambda epoch: trainer._train_epoch(train, epoch, show_progress=False),
            "ours_epoch": lambda epoch: train_epoch(*ours, epoch, no_time_yet()),
            "recbole_eval": lambda epoch: trainer._valid_epoch(valid, show_progress=False),
            "ours_eval": lambda epoch: evaluator.evaluate(ours.model, "valid"),
        }, epochs)
    return {"data": DATASET, "epochs": epochs, "seconds": seconds,
            "medians": medians_after_warm_up(seconds),
            "training_pairs": {"ours": int(dataset.train.nnz), "recbole": len(train.dataset)}}


def markdown(result: dict) -> str:
    medians = result["medians"]
    rows = []
    for part, reference in (("epoch", REFERENCE_EPOCH), ("eval", REFERENCE_EVAL)):
        ours, recbole = medians[f"ours_{part}"], medians[f"recbole_{part}"]
        ratio = ours / recbole
        rows.append(f"| {part} | {ours:.3f} | {recbole:.3f} | {ratio:.3f} | {reference['recbole']} | "
                    f"{reference['mmrec']} | {recbole / reference['recbole']:.2f} | "
                    f"{ratio * reference['recbole'] / reference['mmrec']:.2f} |")
    return (
        f"{in_turn_intro(result, 'RecBole')} Machine: {machine()}.\n\n"
        "| part | ours s | RecBole s | ours / RecBole | RecBole s, reference machine | MMRec s, reference machine "
        "| this machine / reference (RecBole) | ours / MMRec on one machine (estimate) |\n"
        "|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    try:
        import recbole  # noqa: F401
    except ImportError:
        sys.exit("beside_recbole.py needs RecBole 1.2.1 in its own environment: see the commands at the top of "
                 "this file")
    result = measure(args.epochs)
    text = markdown(result)
    save_report("beside-recbole", {"machine": machine(), **result}, "# LightGCN beside RecBole\n\n" + text)
    update_readme(text, "beside-recbole")


if __name__ == "__main__":
    main()
