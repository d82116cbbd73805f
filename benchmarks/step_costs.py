"""What RLMultimodalRec's parts cost beyond LightGCN's epoch, measured with the models training in lockstep.

LightGCN (2 layers, as speed.py times it), RLMultimodalRec's default, and the default without one part at a
time (the content: fusion=none; the item graph: item_knn_k=0; the hard negatives: negative_candidates=1) are
built side by side in one process on generated Baby-size data (4096-d + 384-d). In every epoch the models take
one training step each in turn until the epoch ends, each drawing its negatives at its first step. The VM's
drift, which moves over seconds to minutes, then falls on all of them alike: a model's epoch (its drawing and
its steps, not the time the others run) over LightGCN's epoch moves by a few hundredths from epoch to epoch,
where whole epochs taken in turn (speed.py) spread by a tenth. A part's cost is the default's ratio less the
ratio without that part. Each round runs in a fresh process; medians over the epochs after the first, then
over the rounds.

    python benchmarks/step_costs.py [--epochs 5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import in_fresh_process, machine, save_report, update_readme  # noqa: E402
from speed import UNIFORM_RLMMR, epoch_totals, side_by_side  # noqa: E402

from gatedrec.progress import progress_bar  # noqa: E402

DATA = "generated-baby"
LIGHTGCN, DEFAULT = "lightgcn", "rlmultimodalrec"
WITHOUT = {  # part -> the default without it
    "content (projections and gate)": "rlmultimodalrec:fusion=none",
    "item graph": "rlmultimodalrec:item_knn_k=0",
    "hard negatives (8 candidates scored)": UNIFORM_RLMMR,
}
LABELS = (LIGHTGCN, DEFAULT, *WITHOUT.values())


def lockstep(epochs: int) -> dict:
    """Each label's epoch seconds and seconds drawing negatives, per epoch (the first a warm-up)."""
    parts = side_by_side(DATA, LABELS, epochs, lockstep=True)
    return {"epoch_seconds": epoch_totals(parts),
            "sampling_seconds": {label: [epoch["sampling"] for epoch in epochs_parts]
                                 for label, epochs_parts in parts.items()}}


def round_ratios(result: dict) -> dict[str, float]:
    """Each label's epoch over LightGCN's in the same epoch, median over the epochs after the first."""
    seconds = result["epoch_seconds"]
    return {label: statistics.median(mine / theirs for mine, theirs in zip(seconds[label][1:], seconds[LIGHTGCN][1:]))
            for label in LABELS}


def markdown(rounds: list[dict], epochs: int) -> str:
    ratios = [round_ratios(result) for result in rounds]

    def median_seconds(label: str, kind: str) -> float:
        return statistics.median(statistics.median(result[kind][label][1:]) for result in rounds)

    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} ({', '.join(f'{value:.2f}' for value in values)})"

    lines = [
        f"{DATA}, the models in lockstep (one step each in turn), {epochs} epochs after a warm-up, {len(rounds)} "
        f"rounds in fresh processes: each model's epoch over LightGCN's in the same epoch, median over the epochs, "
        f"then over the rounds (each round's in brackets). Machine: {machine()}.\n",
        "| model | s/epoch | of it drawing negatives s | epoch / LightGCN's (rounds) |",
        "|---|---|---|---|",
    ]
    for label in LABELS:
        lines.append(f"| {label} | {median_seconds(label, 'epoch_seconds'):.3f} | "
                     f"{median_seconds(label, 'sampling_seconds'):.3f} | {cell([r[label] for r in ratios])} |")
    lines += ["", f"What each part adds to {DEFAULT}'s epoch, in LightGCN epochs (the default's ratio less the "
                  "ratio without the part):", "", "| part | cost (rounds) |", "|---|---|"]
    for part, label in WITHOUT.items():
        lines.append(f"| {part} | {cell([r[DEFAULT] - r[label] for r in ratios])} |")
    lines.append(f"| all of the default beyond LightGCN | {cell([r[DEFAULT] - 1 for r in ratios])} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rounds = []
    with progress_bar() as bar:
        task = bar.add_task("rounds", total=args.repeats, unit="round")
        for _ in range(args.repeats):
            rounds.append(in_fresh_process(lockstep, args.epochs))
            bar.advance(task)
    text = markdown(rounds, args.epochs)
    save_report("step_costs", {"machine": machine(), "data": DATA, "labels": list(LABELS), "rounds": rounds},
                "# Step costs\n\n" + text)
    update_readme(text, "step-costs")


if __name__ == "__main__":
    main()
