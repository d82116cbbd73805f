"""LightGCN's epoch and evaluation pass beside MMRec's own, on the same machine, in one process, epochs in turn.

../shared/REFERENCE.md timed MMRec's LightGCN on amazon-baby-mmrec on its own machine (2.75 s per epoch,
2.08 s per evaluation pass); this session's VMs differ from it. Here MMRec's code runs beside ours: the same
data (the MMHCL split of Baby, MMRec's item ids), the same settings (2 layers, 64-d, batch 2048, Adam at 1e-3,
reg 1e-4, one uniform negative per positive), one epoch and one full-ranking validation pass each in turn.

MMRec is not a package: give its checkout (https://github.com/enoche/MMRec). Its code of 2022-2024 needs NumPy
< 2 and SciPy < 1.12 (LightGCN builds its graph with dok_matrix._update) and imports lmdb, so it runs in an
environment of its own, such as beside_recbole.py's:

    python -m venv /tmp/recbole-env && . /tmp/recbole-env/bin/activate
    pip install -c constraints.txt -e . "numpy<2" "scipy<1.12" "pandas<2.2" pyyaml lmdb matplotlib
    python benchmarks/beside_mmrec.py --mmrec PATH/TO/MMRec [--epochs 6]

MMRec's LightGCN runs as its trainer runs it: its TrainDataLoader (a pandas slice and a Python loop drawing
each negative), the model's full propagation per batch, its Trainer._train_epoch and Trainer.evaluate (scores
of 4096 users at a time, torch.topk, its metrics). Its model settings are passed as quick_start would merge
them from a LightGCN.yaml. MMRec's utils/data_utils.py imports torchvision for image helpers LightGCN never
calls; where torchvision does not import (as beside this machine's CPU torch), that module is replaced by an
empty one before MMRec's dataset module imports it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import types
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))

from common import (DATASETS, SHARED_DATA, in_turn, in_turn_intro, load_shared, machine,  # noqa: E402
                    medians_after_warm_up, save_report, update_readme)  # noqa: E402
from speed import MMREC, build_case, no_time_yet, train_epoch  # noqa: E402

from gatedrec.evaluation import Evaluator  # noqa: E402
from gatedrec.runtime import configure_torch  # noqa: E402

DATASET = "amazon-baby-mmrec"
INTER_FILE = DATASETS[DATASET]["inter"]
SETTINGS = {  # as REFERENCE.md timed MMRec's LightGCN
    "use_gpu": False, "n_layers": 2, "reg_weight": 1e-4, "embedding_size": 64, "is_multimodal_model": False,
    "inter_file_name": INTER_FILE, "save_recommended_topk": False, "seed": 999,
}


def import_mmrec(checkout: Path) -> dict:
    """MMRec's modules that a LightGCN run uses. Its top-level packages (common, utils, models) are imported
    from the checkout while this script's own folder and `common` module are set aside (a module beats a
    folder without __init__.py of the same name anywhere on the path), then those are put back."""
    ours, search_path = sys.modules.pop("common"), list(sys.path)
    sys.path[:] = [str(checkout / "src")] + [entry for entry in search_path if Path(entry).resolve() != BENCHMARKS]
    try:
        try:
            import utils.data_utils  # noqa: F401
        except ImportError:  # torchvision; only image helpers, unused by LightGCN
            sys.modules["utils.data_utils"] = types.SimpleNamespace(
                ImageResize=None, ImagePad=None, image_to_tensor=None, load_decompress_img_from_lmdb_value=None)
        from common.trainer import Trainer
        from models.lightgcn import LightGCN
        from utils.configurator import Config
        from utils.dataloader import EvalDataLoader, TrainDataLoader
        from utils.dataset import RecDataset
        from utils.utils import init_seed
    finally:
        sys.path[:] = search_path
        sys.modules["common"] = ours
    return {"Config": Config, "RecDataset": RecDataset, "TrainDataLoader": TrainDataLoader,
            "EvalDataLoader": EvalDataLoader, "LightGCN": LightGCN, "Trainer": Trainer, "init_seed": init_seed}


def mmrec_lightgcn(checkout: Path, data_folder: Path):
    """MMRec's LightGCN trainer and its train and validation loaders, set up as its quick_start sets them up."""
    mmrec = import_mmrec(checkout)
    (data_folder / "baby").mkdir()
    (data_folder / "baby" / INTER_FILE).symlink_to(SHARED_DATA / DATASETS[DATASET]["folder"] / INTER_FILE)
    started_in = os.getcwd()
    os.chdir(checkout)  # MMRec reads its configs from src/configs under the working directory
    try:
        config = mmrec["Config"]("LightGCN", "baby", {**SETTINGS, "data_path": str(data_folder) + "/"})
    finally:
        os.chdir(started_in)
    train, valid, _ = mmrec["RecDataset"](config).split()
    for part in (train, valid):
        str(part)  # as quick_start logs them; this also sets the counts its loaders read
    train_data = mmrec["TrainDataLoader"](config, train, batch_size=config["train_batch_size"], shuffle=True)
    valid_data = mmrec["EvalDataLoader"](config, valid, additional_dataset=train, batch_size=config["eval_batch_size"])
    mmrec["init_seed"](config["seed"])
    train_data.pretrain_setup()
    model = mmrec["LightGCN"](config, train_data)
    return mmrec["Trainer"](config, model, False), train_data, valid_data


def measure(checkout: Path, epochs: int) -> dict:
    configure_torch()
    dataset = load_shared(DATASET)
    ours = build_case("lightgcn", dataset)
    evaluator = Evaluator(dataset)
    with tempfile.TemporaryDirectory() as folder:
        trainer, train, valid = mmrec_lightgcn(checkout, Path(folder))
        seconds = in_turn({
            "mmrec_epoch": lambda epoch: trainer._train_epoch(train, epoch),
            "ours_epoch": lambda epoch: train_epoch(*ours, epoch, no_time_yet()),
            "mmrec_eval": lambda epoch: trainer.evaluate(valid),
            "ours_eval": lambda epoch: evaluator.evaluate(ours.model, "valid"),
        }, epochs)
        recall = {"mmrec": trainer.evaluate(valid)["recall@20"],
                  "ours": evaluator.evaluate(ours.model, "valid")["recall@20"]}
    return {"data": DATASET, "epochs": epochs, "seconds": seconds,
            "medians": medians_after_warm_up(seconds),
            "training_pairs": {"ours": int(dataset.train.nnz), "mmrec": len(train.dataset)},
            "valid_recall@20_after_training": recall}


def markdown(result: dict) -> str:
    medians, reference = result["medians"], MMREC[f"lightgcn|{DATASET}"]
    rows = []
    for index, part in enumerate(("epoch", "eval")):
        ours, mmrec = medians[f"ours_{part}"], medians[f"mmrec_{part}"]
        rows.append(f"| {part} | {ours:.3f} | {mmrec:.3f} | {ours / mmrec:.3f} | {reference[index]} | "
                    f"{mmrec / reference[index]:.2f} |")
    recall = result["valid_recall@20_after_training"]
    return (
        f"{in_turn_intro(result, 'MMRec')} Valid Recall@20 after those {result['epochs'] + 1} epochs: ours "
        f"{recall['ours']:.4f}, MMRec {recall['mmrec']:.4f}. Machine: {machine()}.\n\n"
        "| part | ours s | MMRec s | ours / MMRec | MMRec s, REFERENCE.md's machine "
        "| this machine / that one (MMRec) |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mmrec", type=Path, required=True, help="MMRec's checkout (the folder holding src/)")
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    if not (args.mmrec / "src" / "models" / "lightgcn.py").is_file():
        sys.exit(f"'{args.mmrec}' is not an MMRec checkout: src/models/lightgcn.py is missing there; clone "
                 "https://github.com/enoche/MMRec and give its folder")
    result = measure(args.mmrec, args.epochs)
    text = markdown(result)
    save_report("beside-mmrec", {"machine": machine(), "mmrec": str(args.mmrec), **result},
                "# LightGCN beside MMRec\n\n" + text)
    update_readme(text, "beside-mmrec")


if __name__ == "__main__":
    main()
