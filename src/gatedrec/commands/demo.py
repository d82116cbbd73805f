"""``gatedrec demo``: generated long-tail data, LightGCN against RLMultimodalRec, what the gate learned."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.table import Table

from gatedrec.commands.output import describe, results
from gatedrec.config import RunConfig
from gatedrec.data import load_mmrec
from gatedrec.data.synthetic import generate, save_mmrec
from gatedrec.progress import console
from gatedrec.training import Trainer

# A long-tail catalogue (most items have few interactions), where content has something to add; small
# batches give each epoch enough steps to learn within a short run.
DEMO_BATCH_SIZE = 512
DEMO_SIZE = {"n_users": 1500, "n_items": 2000, "n_interactions": 20000, "modality_dims": {"visual": 64, "text": 48}}
DEMO_RUNS = {"lightgcn": ("lightgcn", {}), "rlmultimodalrec": ("rlmultimodalrec", {})}  # both with their defaults


def demo(args) -> None:
    out = Path(args.out)
    generated = generate(seed=args.seed, **DEMO_SIZE)
    data_folder = save_mmrec(generated, out / "data")
    dataset = load_mmrec(data_folder)
    console.print(f"generated data in {data_folder}: {describe(dataset)}")
    outcomes = {}
    for label, (model, overrides) in DEMO_RUNS.items():
        config = RunConfig.for_model(model, epochs=args.epochs, seed=args.seed, batch_size=DEMO_BATCH_SIZE)
        config.apply(overrides)
        config.data.path = str(data_folder)
        console.print(f"\n[bold]training {label}[/]")
        outcomes[label] = Trainer(config, dataset, out / demo_folder(label), quiet=args.quiet).fit()
    results.print(comparison_table(outcomes))
    shares = {label: out / demo_folder(label) / "item_shares.tsv" for label in DEMO_RUNS if label != "lightgcn"}
    results.print(group_share_table(shares, data_folder / "item_groups.tsv"))


def demo_folder(label: str) -> str:
    return label.replace(":", "-").replace(",", "-")


def comparison_table(outcomes: dict[str, dict]) -> Table:
    table = Table(title="test metrics at the best valid epoch")
    table.add_column("model", no_wrap=True, min_width=max(map(len, outcomes)))
    for name in ("recall@20", "ndcg@20", "recall@10", "ndcg@10"):
        table.add_column(name, justify="right")
    table.add_column("best epoch", justify="right")
    table.add_column("s/epoch", justify="right")
    for model, metrics in outcomes.items():
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
        table.add_column(label, justify="right", no_wrap=True, min_width=len(label))
        joined[label] = pd.read_csv(path, sep="\t").merge(groups, on="itemID").groupby("informative")["visual_share"]
    for group, size in groups.groupby("informative").size().items():
        table.add_row(str(group), str(size), *(f"{joined[label].mean()[group]:.3f}" for label in shares_files))
    return table
