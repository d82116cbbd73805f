"""Our models' epoch and evaluation pass beside MMRec's own, on the same machine, in one process, epochs in turn.

../shared/REFERENCE.md timed MMRec on its own machine: LightGCN on amazon-baby-mmrec (2.75 s per epoch, 2.08 s
per evaluation pass) and FREEDOM on generated Baby-size data with a 4096-d visual and a 384-d text modality
(16.0-16.2 s per epoch); this session's VMs differ from it. Here MMRec's code runs beside ours on the same data
and settings, one epoch and one full-ranking validation pass each in turn:

- lightgcn: amazon-baby-mmrec (the MMHCL split, MMRec's item ids), 2 layers, 64-d, batch 2048, Adam at 1e-3,
  reg 1e-4, one uniform negative per positive;
- freedom: speed.py's generated-baby, MMRec's FREEDOM defaults (the first point of its grid: dropout 0.8,
  reg_weight 0) against ours (edge_dropout 0.8, modality_loss_weight 0). The generator's draws depend on
  NumPy's version: under this environment's NumPy 1.26 it draws 116,787 training pairs where speed.py, under
  NumPy 2, drew 125,305, so these seconds compare with each other, not with speed.py's.

MMRec is not a package: give its checkout (https://github.com/enoche/MMRec). Its code of 2022-2024 needs NumPy
< 2 and SciPy < 1.12 (its graphs are built with dok_matrix._update) and imports lmdb, so it runs in an
environment of its own, such as beside_recbole.py's:

    python -m venv /tmp/recbole-env && . /tmp/recbole-env/bin/activate
    pip install -c constraints.txt -e . "numpy<2" "scipy<1.12" "pandas<2.2" pyyaml lmdb matplotlib
    python benchmarks/beside_mmrec.py --mmrec PATH/TO/MMRec [--models lightgcn,freedom] [--epochs 6]

MMRec's models run as its trainer runs them: its TrainDataLoader, the model's pre-epoch step (FREEDOM's edge
sampling), Trainer._train_epoch and Trainer.evaluate. Each data set is written out in MMRec's format (an .inter
file with its x_label split column, the features as image_feat.npy and text_feat.npy) and the model's settings
are merged over its YAML as quick_start would merge them. MMRec's utils/data_utils.py imports torchvision for
image helpers these models never call; where torchvision does not import (as beside this machine's CPU torch),
that module is replaced by an empty one before MMRec's dataset module imports it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import types
from pathlib import Path
from typing import NamedTuple

import numpy as np

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))

from common import (in_turn, in_turn_intro, machine, medians_after_warm_up, save_report,  # noqa: E402
                    update_readme, working_directory)
from speed import MMREC, build_case, load, no_time_yet, train_epoch  # noqa: E402

from gatedrec.evaluation import Evaluator  # noqa: E402
from gatedrec.runtime import configure_torch  # noqa: E402


class Pairing(NamedTuple):
    """One model timed beside MMRec's: how the report names it, MMRec's class name, the data, MMRec's settings
    over its YAML."""

    label: str
    mmrec_model: str
    data: str
    settings: dict


PAIRINGS = {
    "lightgcn": Pairing("LightGCN (2 layers)", "LightGCN", "amazon-baby-mmrec",
                        {"n_layers": 2, "reg_weight": 1e-4, "embedding_size": 64, "is_multimodal_model": False}),
    "freedom": Pairing("FREEDOM", "FREEDOM", "generated-baby", {"dropout": 0.8, "reg_weight": 0.0}),
}
COMMON_SETTINGS = {"use_gpu": False, "save_recommended_topk": False, "seed": 999, "inter_file_name": "data.inter"}
# MMRec's dataset/baby.yaml names the id columns userID and itemID and the features these files
FEATURE_FILES = {"visual": "image_feat.npy", "text": "text_feat.npy"}


def import_mmrec(checkout: Path) -> dict:
    """MMRec's modules that a run uses. Its top-level packages (common, utils, models) are imported from the
    checkout while this script's own folder and `common` module are set aside (a module beats a folder
    without __init__.py of the same name anywhere on the path), then those are put back."""
    ours, search_path = sys.modules.pop("common"), list(sys.path)
    sys.path[:] = [str(checkout / "src")] + [entry for entry in search_path if Path(entry).resolve() != BENCHMARKS]
    try:
        try:
            import utils.data_utils  # noqa: F401
        except ImportError:  # torchvision; only image helpers, unused by these models
            sys.modules["utils.data_utils"] = types.SimpleNamespace(
                ImageResize=None, ImagePad=None, image_to_tensor=None, load_decompress_img_from_lmdb_value=None)
        from common.trainer import Trainer
        from models.freedom import FREEDOM
        from models.lightgcn import LightGCN
        from utils.configurator import Config
        from utils.dataloader import EvalDataLoader, TrainDataLoader
        from utils.dataset import RecDataset
        from utils.utils import init_seed
    finally:
        sys.path[:] = search_path
        sys.modules["common"] = ours
    return {"Config": Config, "RecDataset": RecDataset, "TrainDataLoader": TrainDataLoader,
            "EvalDataLoader": EvalDataLoader, "LightGCN": LightGCN, "FREEDOM": FREEDOM, "Trainer": Trainer,
            "init_seed": init_seed}


def write_mmrec_folder(dataset, folder: Path) -> None:
    """The data set in MMRec's format: folder/data.inter (userID, itemID, x_label 0/1/2 for train/valid/test)
    and each modality's features as MMRec names them."""
    folder.mkdir()
    parts = [dataset.train, dataset.split("valid"), dataset.split("test")]
    lines = ["userID\titemID\tx_label\n"]
    for label, part in enumerate(parts):
        pairs = part.tocoo()
        lines += [f"{user}\t{item}\t{label}\n" for user, item in zip(pairs.row, pairs.col)]
    (folder / COMMON_SETTINGS["inter_file_name"]).write_text("".join(lines))
    for name, modality in dataset.modalities.items():
        np.save(folder / FEATURE_FILES[name], modality.features.astype(np.float32))


def mmrec_case(mmrec: dict, checkout: Path, pairing: Pairing, data_folder: Path):
    """MMRec's model, its trainer and its train and validation loaders, set up as its quick_start sets them up."""
    settings = {**COMMON_SETTINGS, **pairing.settings, "data_path": str(data_folder) + "/"}
    with working_directory(checkout):  # MMRec reads its configs from src/configs under the working directory
        config = mmrec["Config"](pairing.mmrec_model, "baby", settings)
    train, valid, _ = mmrec["RecDataset"](config).split()
    for part in (train, valid):
        str(part)  # as quick_start logs them; this also sets the counts its loaders read
    train_data = mmrec["TrainDataLoader"](config, train, batch_size=config["train_batch_size"], shuffle=True)
    valid_data = mmrec["EvalDataLoader"](config, valid, additional_dataset=train, batch_size=config["eval_batch_size"])
    mmrec["init_seed"](config["seed"])
    train_data.pretrain_setup()
    model = mmrec[pairing.mmrec_model](config, train_data)
    return model, mmrec["Trainer"](config, model, False), train_data, valid_data


def measure(mmrec: dict, checkout: Path, name: str, epochs: int) -> dict:
    """``mmrec``: MMRec's modules (import_mmrec), imported once for all models."""
    pairing = PAIRINGS[name]
    dataset = load(pairing.data)
    ours = build_case(name, dataset)
    evaluator = Evaluator(dataset)
    with tempfile.TemporaryDirectory() as folder:
        write_mmrec_folder(dataset, Path(folder) / "baby")
        model, trainer, train, valid = mmrec_case(mmrec, checkout, pairing, Path(folder))

        def mmrec_epoch(epoch: int) -> None:  # the part of Trainer.fit that it times as training
            model.pre_epoch_processing()
            trainer._train_epoch(train, epoch)

        seconds = in_turn({
            "mmrec_epoch": mmrec_epoch,
            "ours_epoch": lambda epoch: train_epoch(*ours, epoch, no_time_yet()),
            "mmrec_eval": lambda epoch: trainer.evaluate(valid),
            "ours_eval": lambda epoch: evaluator.evaluate(ours.model, "valid"),
        }, epochs)
        recall = {"mmrec": trainer.evaluate(valid)["recall@20"],
                  "ours": evaluator.evaluate(ours.model, "valid")["recall@20"]}
    return {"model": name, "data": pairing.data, "mmrec_settings": pairing.settings, "epochs": epochs,
            "seconds": seconds, "medians": medians_after_warm_up(seconds),
            "training_pairs": {"ours": int(dataset.train.nnz), "mmrec": len(train.dataset)},
            "valid_recall@20_after_training": recall}


def markdown(results: list[dict]) -> str:
    rows, notes = [], []
    for result in results:
        medians, reference = result["medians"], MMREC[f"{result['model']}|{result['data']}"]
        for index, part in enumerate(("epoch", "eval")):
            ours, mmrec = medians[f"ours_{part}"], medians[f"mmrec_{part}"]
            rows.append(f"| {result['model']} | {result['data']} | {part} | {ours:.3f} | {mmrec:.3f} | "
                        f"{ours / mmrec:.3f} | {reference[index]} | {mmrec / reference[index]:.2f} |")
        recall = result["valid_recall@20_after_training"]
        notes.append(f"- {in_turn_intro(result, 'MMRec', PAIRINGS[result['model']].label)} Valid Recall@20 after those "
                     f"{result['epochs'] + 1} epochs: ours {recall['ours']:.4f}, MMRec {recall['mmrec']:.4f}.")
    return (
        "\n".join(notes) + f"\n\nMachine: {machine()}.\n\n"
        "| model | data | part | ours s | MMRec s | ours / MMRec | MMRec s, reference machine "
        "| this machine / that one (MMRec) |\n"
        "|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mmrec", type=Path, required=True, help="MMRec's checkout (the folder holding src/)")
    parser.add_argument("--models", default=",".join(PAIRINGS), help=f"some of {', '.join(PAIRINGS)}")
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    if not (args.mmrec / "src" / "models" / "lightgcn.py").is_file():
        sys.exit(f"'{args.mmrec}' is not an MMRec checkout: src/models/lightgcn.py is missing there; clone "
                 "https://github.com/enoche/MMRec and give its folder")
    names = args.models.split(",")
    unknown = [name for name in names if name not in PAIRINGS]
    if unknown:
        sys.exit(f"--models: {', '.join(unknown)} not timed beside MMRec here; choose among {', '.join(PAIRINGS)}")
    configure_torch()
    mmrec = import_mmrec(args.mmrec)
    results = [measure(mmrec, args.mmrec, name, args.epochs) for name in names]
    text = markdown(results)
    save_report("beside-mmrec", {"machine": machine(), "mmrec": str(args.mmrec), "results": results},
                "# Our models beside MMRec\n\n" + text)
    update_readme(text, "beside-mmrec")


if __name__ == "__main__":
    main()
