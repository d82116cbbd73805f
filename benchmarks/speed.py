"""Speed benchmark: seconds per training epoch and per full evaluation pass, where the time goes, peak memory.

Cases (each in a fresh process, so peak memory is its own):
- LightGCN (2 layers, reg 1e-4, batch 2048) on amazon-baby-mmrec (MMHCL split), as MMRec was timed in
  ../shared/REFERENCE.md;
- LightGCN, RLMultimodalRec (defaults) and FREEDOM (defaults) on generated data of Baby's size with a
  4096-d visual and a 384-d text modality;
- LightGCN (2 layers) and RLMultimodalRec on the two real data sets with features, where a step is small
  and fixed costs weigh more;
- RLMultimodalRec with the paper's uniform negatives (negative_candidates=1) beside its default hard
  negatives, so that the model's own cost over LightGCN's (same sampler) shows apart from the sampler's;
- per data set, LightGCN and RLMultimodalRec (default, uniform negatives, and the paper's design without our
  item graph) trained in turn in one process, for ratios that the machine's drift cannot tilt.

Epochs are timed as the trainer runs them by default, a validation pass after each: that pass's embeddings
score the next epoch's hard negatives (computed here untimed, as the timed evaluation passes are separate).

    python benchmarks/speed.py [--epochs 5] [--evals 5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from common import (in_fresh_process, load_shared, machine, medians_after_warm_up, save_report,  # noqa: E402
                    update_readme)

from gatedrec.benchmark import parse_models  # noqa: E402
from gatedrec.config import RunConfig  # noqa: E402
from gatedrec.data.synthetic import generate  # noqa: E402
from gatedrec.evaluation import Evaluator  # noqa: E402
from gatedrec.progress import progress_bar  # noqa: E402
from gatedrec.training import NegativeSampler, build_model  # noqa: E402
from gatedrec.runtime import configure_torch  # noqa: E402
from gatedrec.training.trainer import Tables, build_optimizer, epoch_batches, peak_memory_mb  # noqa: E402

MMREC = {
    "lightgcn|amazon-baby-mmrec": (2.75, 2.08),
    "lightgcn|generated-baby": (3.5, 2.35),
    "freedom|generated-baby": (16.1, 2.35),
}
UNIFORM_RLMMR = "rlmultimodalrec:negative_candidates=1"
CASES = [  # (model label as `gatedrec benchmark --models` takes it, data)
    ("lightgcn", "amazon-baby-mmrec"),
    ("lightgcn", "generated-baby"),
    ("rlmultimodalrec", "generated-baby"),
    (UNIFORM_RLMMR, "generated-baby"),
    ("freedom", "generated-baby"),
    ("lightgcn", "amazon-scientific-mm"),
    ("rlmultimodalrec", "amazon-scientific-mm"),
    (UNIFORM_RLMMR, "amazon-scientific-mm"),
    ("lightgcn", "lastfm-2k-multimodal"),
    ("rlmultimodalrec", "lastfm-2k-multimodal"),
    (UNIFORM_RLMMR, "lastfm-2k-multimodal"),
]


def load(dataset_name: str):
    if dataset_name == "generated-baby":
        return generate(19445, 7050, 165707, {"visual": 4096, "text": 384}, seed=1).dataset
    return load_shared(dataset_name)


def case_config(label: str) -> RunConfig:
    """The label's model and parameters; LightGCN with 2 layers and reg 1e-4, as MMRec was timed."""
    (entry,) = parse_models(label, {})
    config = RunConfig.for_model(entry.name, seed=1)
    if entry.name == "lightgcn":
        config.apply({"n_layers": 2, "reg_weight": 1e-4})
    config.apply(entry.fixed)
    return config


class Case(NamedTuple):
    """What timing a label's training needs: the model, its optimiser and sampler, the batch size."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    sampler: NegativeSampler
    batch_size: int


def build_case(label: str, dataset) -> Case:
    config = case_config(label)
    model = build_model(config, dataset)
    return Case(model, build_optimizer(model, config.train.learning_rate), NegativeSampler(dataset.train),
                config.train.batch_size)


def measure(label: str, dataset_name: str, epochs: int, evals: int) -> dict:
    configure_torch()
    dataset = load(dataset_name)
    model, optimizer, sampler, batch_size = build_case(label, dataset)
    parts = no_time_yet()
    epoch_seconds, tables = [], None
    for epoch in range(epochs):
        started = time.perf_counter()
        train_epoch(model, optimizer, sampler, batch_size, epoch, parts, tables)
        epoch_seconds.append(time.perf_counter() - started)
        tables = validated_tables(model)
    evaluator = Evaluator(dataset)
    eval_seconds = []
    for _ in range(evals):
        started = time.perf_counter()
        evaluator.evaluate(model, "valid")
        eval_seconds.append(time.perf_counter() - started)
    peak_memory = peak_memory_mb()  # before the profiler's own records and the probe's scores
    probe = cache_probe()
    with torch.profiler.profile() as profiler:
        train_epoch(model, optimizer, sampler, batch_size, epochs, no_time_yet(), validated_tables(model))
    return {
        "model": label,
        "data": dataset_name,
        "train_pairs": int(dataset.train.nnz),
        "seconds_per_epoch": statistics.median(epoch_seconds),
        "epoch_seconds": epoch_seconds,
        "seconds_per_eval_pass": statistics.median(eval_seconds),
        "eval_seconds": eval_seconds,
        "profile_share": {name: seconds / sum(epoch_seconds) for name, seconds in parts.items()},
        "operator_share": operator_shares(profiler),
        "peak_memory_mb": peak_memory,
        "cache_probe": probe,
    }


PROBE_USERS, PROBE_ITEMS, PROBE_PIECE = 2379, 7050, 148  # one of Baby's evaluation blocks and its 4 MB pieces


def cache_probe() -> float:
    """Seconds to score one of Baby's evaluation blocks in the evaluator's 4 MB pieces over seconds to score
    it whole (medians of three): below 1 while the process has the cache to itself, above 1 while other
    tenants of the machine hold it (on this 2-core VM on 2026-11-27: 0.44-0.97 and 1.03-1.50, the latter in
    its slow state, in which everything memory-bound takes 30-40 % longer), so that each round's figures can
    be read against the state they were measured in."""
    generator = torch.Generator().manual_seed(0)
    users, items = (torch.randn(rows, 64, generator=generator) for rows in (PROBE_USERS, PROBE_ITEMS))
    scores = torch.empty(PROBE_USERS, PROBE_ITEMS)

    def in_pieces() -> None:
        for start in range(0, PROBE_USERS, PROBE_PIECE):
            torch.matmul(users[start : start + PROBE_PIECE], items.T, out=scores[start : start + PROBE_PIECE])

    return median_seconds(in_pieces) / median_seconds(lambda: torch.matmul(users, items.T, out=scores))


def median_seconds(work, repeats: int = 3) -> float:
    work()  # the first call pays for allocation and warm-up
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


STEP_PARTS = ("sampling", "forward + loss", "backward", "optimiser")


def no_time_yet() -> dict[str, float]:
    """Seconds per part of a training step, all zero: what train_epoch adds into."""
    return {name: 0.0 for name in STEP_PARTS}


def validated_tables(model) -> Tables | None:
    """The embeddings the trainer's validation pass computes and hands to the next epoch's hard negatives
    (None for a model without them)."""
    if model.negative_candidates == 1:
        return None
    model.eval()
    return model.embeddings()


def train_epoch(model, optimizer, sampler: NegativeSampler, batch_size: int, epoch: int, parts: dict,
                tables: Tables | None = None, on_batch=lambda: None) -> None:
    """One epoch, its wall time split into ``parts`` (sampling with hard negatives' scoring, forward + loss,
    backward, optimiser); ``tables`` as the previous epoch's validation pass left them."""
    for _ in epoch_steps(model, optimizer, sampler, batch_size, epoch, parts, tables):
        on_batch()


def epoch_steps(model, optimizer, sampler: NegativeSampler, batch_size: int, epoch: int, parts: dict,
                tables: Tables | None = None) -> Iterator[None]:
    """train_epoch as a generator that pauses after each step; the time it is paused is not counted."""
    device = model_device(model)
    mark = time.perf_counter()
    for users, positives, negatives in epoch_batches(model, sampler, batch_size, 1, epoch, tables):
        batch = [torch.from_numpy(array).to(device) for array in (users, positives, negatives)]
        mark = _add(parts, "sampling", mark, device)
        loss = model.loss(*batch)
        mark = _add(parts, "forward + loss", mark, device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        mark = _add(parts, "backward", mark, device)
        optimizer.step()
        _add(parts, "optimiser", mark, device)
        yield
        mark = time.perf_counter()


def model_device(model: torch.nn.Module) -> torch.device:
    """Where the model's parameters live (the CPU for a model without any)."""
    return next(model.parameters(), torch.empty(0)).device


SPARSE, DENSE, ELEMENTWISE = ("sparse products (propagation, item graph)", "dense products (projections, gate)",
                              "element-wise arithmetic")
OPERATOR_GROUPS = {  # torch operator -> what it does in these models
    "aten::_embedding_bag_forward_only": SPARSE,  # on CPU
    "aten::_sparse_mm": SPARSE,  # on CUDA
    "aten::addmm": DENSE,
    "aten::addmm_": DENSE,
    "aten::mm": DENSE,
    "aten::_fused_adam_": "optimiser",
    "Optimizer.step#Adam.step": "optimiser",
    "Optimizer.zero_grad#Adam.zero_grad": "optimiser",
    "aten::fill_": "zero-filling buffers",
    "aten::zero_": "zero-filling buffers",
    **dict.fromkeys(["aten::index_select", "aten::scatter_add_", "aten::index_add_", "aten::gather", "aten::index",
                     "aten::_index_put_impl_", "aten::index_fill_", "aten::index_copy"],
                    "gathers and scatters of rows"),
    **dict.fromkeys(["aten::copy_", "aten::cat", "aten::clone", "aten::_to_copy"], "copies and concatenations"),
    **dict.fromkeys(["aten::sort", "aten::_unique2", "aten::topk"], "sorting (unique batch rows, top-k)"),
    **dict.fromkeys(["aten::add_", "aten::add", "aten::mul", "aten::mul_", "aten::sub", "aten::sub_", "aten::div",
                     "aten::div_", "aten::addcmul", "aten::addcmul_", "aten::sigmoid", "aten::sigmoid_", "aten::pow",
                     "aten::neg", "aten::sum", "aten::mean", "aten::exp", "aten::log", "aten::log_sigmoid_forward",
                     "aten::log_sigmoid_backward", "aten::softplus", "aten::where", "aten::eq", "aten::gt",
                     "aten::any", "aten::norm", "aten::clamp_min", "aten::rsqrt"], ELEMENTWISE),
    **dict.fromkeys(["aten::empty", "aten::empty_strided", "aten::empty_like", "aten::zeros", "aten::new_zeros",
                     "aten::new_empty"], "allocating tensors"),
    **dict.fromkeys(["aten::as_strided", "aten::select", "aten::slice", "aten::alias", "aten::col_indices",
                     "aten::crow_indices", "aten::values", "aten::to", "aten::view", "aten::t", "aten::transpose",
                     "aten::expand", "aten::unsqueeze", "aten::split", "aten::split_with_sizes", "aten::narrow",
                     "aten::reshape", "aten::detach", "aten::lift_fresh", "aten::arange", "aten::resize_"],
                    "views and tensor bookkeeping"),
}
# operators outside aten (our autograd functions' forward and backward bodies, the autograd engine's nodes):
# their self time is Python, SciPy (a batch's row blocks) and bookkeeping around the operators they call
PYTHON_SIDE = "Python, SciPy row blocks, autograd bookkeeping"


def operator_group(name: str) -> str:
    return OPERATOR_GROUPS.get(name, "other" if name.startswith("aten::") else PYTHON_SIDE)


def operator_shares(profiler) -> dict[str, float]:
    """Share of the profiled epoch's operator time per group (the profiler's own overhead inflates the many
    small operators)."""
    totals: dict[str, float] = {}
    for event in profiler.key_averages():
        group = operator_group(event.key)
        totals[group] = totals.get(group, 0.0) + event.self_cpu_time_total
    overall = sum(totals.values())
    return {group: seconds / overall for group, seconds in sorted(totals.items(), key=lambda item: -item[1])}


def _add(parts: dict, name: str, mark: float, device: torch.device) -> float:
    if device.type == "cuda":  # its kernels run after the call returns: wait for them, or the time lands elsewhere
        torch.cuda.synchronize(device)
    now = time.perf_counter()
    parts[name] += now - mark
    return now


def markdown(results: list[dict]) -> str:
    lines = [
        "| model | data | s/epoch (median) | MMRec s/epoch | s/eval pass (median) | MMRec s/eval | peak MB "
        "| where training time goes | by operator (one profiled epoch) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        mmrec_epoch, mmrec_eval = MMREC.get(f"{result['model']}|{result['data']}", (None, None))
        profile = ", ".join(f"{name} {share:.0%}" for name, share in result["profile_share"].items())
        operators = ", ".join(f"{name} {share:.0%}" for name, share in result["operator_share"].items())
        lines.append(
            f"| {result['model']} | {result['data']} | {result['seconds_per_epoch']:.3f} | {mmrec_epoch or 'n/a'} | "
            f"{result['seconds_per_eval_pass']:.3f} | {mmrec_eval or 'n/a'} | {result['peak_memory_mb']:.0f} "
            f"| {profile} | "
            f"{operators} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--evals", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds over all cases; each figure is the median of the rounds' medians")
    args = parser.parse_args()
    rounds, side_by_side = [], []
    with progress_bar() as bar:
        task = bar.add_task("cases", total=args.repeats * (len(CASES) + len(INTERLEAVED_EPOCHS)), unit="case")
        for round_index in range(args.repeats):
            rounds.append([])
            for label, dataset_name in CASES:
                rounds[-1].append(measure_alone(label, dataset_name, args))
                bar.advance(task)
            side_by_side.append([])
            for name, epochs in INTERLEAVED_EPOCHS.items():
                side_by_side[-1].append(in_fresh_process(interleaved, name, epochs))
                bar.advance(task)
            print(f"round {round_index + 1} of {args.repeats} done", flush=True)
    results = [combine(case_rounds) for case_rounds in zip(*rounds)]
    intro = (f"Medians of {args.epochs} epochs and {args.evals} evaluation passes per case, then the median over "
             f"{args.repeats} rounds over all cases (each case in a fresh process); MMRec's figures from "
             f"its reference run, measured on that run's own machine (benchmarks/beside_mmrec.py times MMRec itself "
             f"beside ours on this one). Machine: {machine()}.\n\n")
    text = intro + markdown(results) + "\n" + ratios(rounds) + "\n" + interleaved_markdown(side_by_side)
    save_report("speed", {"machine": machine(), "results": results, "interleaved": side_by_side}, "# Speed\n\n" + text)
    update_readme(text, "speed")


ALL_CONTENT_RLMMR = "rlmultimodalrec:content_updates=all"  # every item's content at every step, as the paper
# the paper's design, none of our additions
PAPER_RLMMR = "rlmultimodalrec:negative_candidates=1:item_knn_k=0:content_updates=all"
INTERLEAVED_LABELS = ("lightgcn", "rlmultimodalrec", ALL_CONTENT_RLMMR, UNIFORM_RLMMR, PAPER_RLMMR)
INTERLEAVED_EPOCHS = {"generated-baby": 15, "amazon-scientific-mm": 100, "lastfm-2k-multimodal": 30}


def interleaved(dataset_name: str, epochs: int) -> dict:
    """Epoch times of LightGCN and RLMultimodalRec (default, uniform negatives, the paper's design) built side
    by side in one process and trained in turn, one epoch each: the ratios then compare epochs run moments
    apart, which the machine's drift over minutes cannot tilt. Medians over the epochs after the first."""
    seconds = epoch_totals(side_by_side(dataset_name, INTERLEAVED_LABELS, epochs, lockstep=False))
    return {"data": dataset_name, "epochs": epochs, "seconds_per_epoch": medians_after_warm_up(seconds)}


def epoch_totals(parts: dict[str, list[dict]]) -> dict[str, list[float]]:
    """Each label's seconds per epoch, the sum of side_by_side's parts."""
    return {label: [sum(epoch.values()) for epoch in epochs_parts] for label, epochs_parts in parts.items()}


def side_by_side(dataset_name: str, labels, epochs: int, lockstep: bool) -> dict[str, list[dict]]:
    """The labels' models built side by side in one process and trained for a warm-up epoch and ``epochs``
    more, each epoch one model after another, or in lockstep (one step each in turn). Each label's parts of
    each epoch (as train_epoch splits them), the time the other models run not counted."""
    configure_torch()
    dataset = load(dataset_name)
    cases = {label: build_case(label, dataset) for label in labels}
    tables = dict.fromkeys(cases)
    parts = {label: [] for label in cases}
    for epoch in range(epochs + 1):
        for label_parts in parts.values():
            label_parts.append(no_time_yet())
        steps = [epoch_steps(case.model, case.optimizer, case.sampler, case.batch_size, epoch, parts[label][-1],
                             tables[label]) for label, case in cases.items()]
        if lockstep:
            run_in_turn(steps)
        else:
            for epoch_of_one in steps:
                for _ in epoch_of_one:
                    pass
        for label, case in cases.items():
            tables[label] = validated_tables(case.model)
    return parts


def run_in_turn(steps: list[Iterator[None]]) -> None:
    """Advance each epoch one step in turn until all have ended."""
    running = list(steps)
    while running:
        running = [epoch for epoch in running if next(epoch, StopIteration) is not StopIteration]


def interleaved_markdown(rounds: list[list[dict]]) -> str:
    """Per data set, each label's median epoch over the rounds and the median of the rounds' ratios to
    LightGCN's, then every round's ratios."""
    lightgcn, *others = INTERLEAVED_LABELS
    lines = [
        "Interleaved, one process per data set and round (epochs taken in turn; medians over the epochs, then over "
        f"the {len(rounds)} rounds): seconds per epoch and, in brackets, the ratio to LightGCN's (2 layers, uniform "
        f"negatives), then each round's ratio. `{ALL_CONTENT_RLMMR}` is the default computing every item's content "
        f"at every step; `{UNIFORM_RLMMR}` is the default with the paper's uniform negatives; `{PAPER_RLMMR}` is "
        "the paper's design, none of our additions.\n",
        f"| data | epochs each | {lightgcn} s | " + " | ".join(f"{label} s (ratio; rounds)" for label in others) + " |",
        "|---|---|---|" + "---|" * len(others),
    ]
    for per_round in zip(*rounds):
        seconds = [result["seconds_per_epoch"] for result in per_round]
        cells = []
        for label in others:
            round_ratios = [round_seconds[label] / round_seconds[lightgcn] for round_seconds in seconds]
            cells.append(f"{statistics.median(s[label] for s in seconds):.3f} ({statistics.median(round_ratios):.2f}; "
                         + ", ".join(f"{ratio:.2f}" for ratio in round_ratios) + ")")
        lines.append(f"| {per_round[0]['data']} | {per_round[0]['epochs']} | "
                     f"{statistics.median(s[lightgcn] for s in seconds):.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def measure_alone(label: str, dataset_name: str, args) -> dict:
    result = in_fresh_process(measure, label, dataset_name, args.epochs, args.evals)
    print(f"{label} on {dataset_name}: {result['seconds_per_epoch']:.3f} s/epoch, "
          f"{result['seconds_per_eval_pass']:.3f} s/eval", flush=True)
    return result


def combine(case_rounds: list[dict]) -> dict:
    """One case over the rounds: median times, the largest peak memory, the first round's profile."""
    return case_rounds[0] | {
        "seconds_per_epoch": statistics.median(r["seconds_per_epoch"] for r in case_rounds),
        "seconds_per_eval_pass": statistics.median(r["seconds_per_eval_pass"] for r in case_rounds),
        "round_seconds_per_epoch": [r["seconds_per_epoch"] for r in case_rounds],
        "round_seconds_per_eval_pass": [r["seconds_per_eval_pass"] for r in case_rounds],
        "peak_memory_mb": max(r["peak_memory_mb"] for r in case_rounds),
        "round_cache_probe": [r["cache_probe"] for r in case_rounds],
    }


def ratios(rounds: list[list[dict]]) -> str:
    """Each model's epoch time over LightGCN's on the same data (2 layers, uniform negatives) and ours over
    MMRec's, within each round (the machine's speed drifts between rounds): median and every round's value,
    marked * where a case it compares ran with the cache held by the machine's other tenants."""
    per_round: dict[str, list[tuple[float, bool]]] = {}  # (ratio, whether the cache was held)

    def add(line: str, value: float, cases: list[dict]) -> None:
        per_round.setdefault(line, []).append((value, any(case["cache_probe"] > 1 for case in cases)))

    for results in rounds:
        by_case = {(r["model"], r["data"]): r for r in results}
        for (model, data), result in by_case.items():
            lightgcn = by_case.get(("lightgcn", data))
            if model != "lightgcn" and lightgcn is not None:
                add(f"{model} / lightgcn epoch time on {data}",
                    result["seconds_per_epoch"] / lightgcn["seconds_per_epoch"], [result, lightgcn])
            if f"{model}|{data}" in MMREC:
                add(f"{model} on {data}, ours / MMRec epoch time",
                    result["seconds_per_epoch"] / MMREC[f"{model}|{data}"][0], [result])
    note = ("Per round (`*`: a case compared ran with the cache held by the machine's other tenants, its cache "
            "probe, one of Baby's evaluation blocks scored in 4 MB pieces over scored whole, above 1; below 1 the "
            "cache was the process's own; every case's probes are in speed.json):\n\n")
    return note + "".join(
        f"- {line}: {statistics.median(value for value, _ in values):.2f} "
        f"(rounds: {', '.join(f'{value:.2f}' + ('*' if held else '') for value, held in values)})\n"
        for line, values in per_round.items()
    )


if __name__ == "__main__":
    main()
