"""Scale benchmark: one training epoch and one full evaluation pass of RLMultimodalRec (64-d embeddings, two
256-d modalities) on generated data of growing size, with time and peak memory (RSS) per step.

Each size runs in a fresh process, so its peak memory is its own. The largest default size is the one the
scale target names: 1,000,000 users, 200,000 items, 20,000,000 interactions. Evaluation ranks every item
for every user with a held-out item, in blocks of users (the users x items score matrix never exists).

    python benchmarks/scale.py [--sizes 250000:50000:5000000,500000:100000:10000000,1000000:200000:20000000]
                               [--batch-size 131072] [--model rlmultimodalrec] [--embedding-size 64]
                               [--device cpu|cuda]

On an NVIDIA GPU (--device cuda) the figures go to results/scale-cuda.{json,md} and the README's GPU block,
with the card's name and its peak allocated memory; the CPU figures stay as they are:

    python benchmarks/scale.py --device cuda --sizes 1000000:200000:20000000

The batch size is the one knob changed from the defaults: at 2048 pairs per batch an epoch over 16M
training pairs would take 7,800 full-graph propagations; 131,072 pairs per batch make it 122.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


import torch  # noqa: E402

from common import in_fresh_process, machine, save_report, update_readme  # noqa: E402
from speed import no_time_yet, train_epoch  # noqa: E402

from gatedrec.config import RunConfig  # noqa: E402
from gatedrec.data.synthetic import generate  # noqa: E402
from gatedrec.errors import GatedRecError  # noqa: E402
from gatedrec.evaluation import Evaluator  # noqa: E402
from gatedrec.progress import progress_bar  # noqa: E402
from gatedrec.runtime import configure_torch  # noqa: E402
from gatedrec.training import NegativeSampler, build_model  # noqa: E402
from gatedrec.training.trainer import build_optimizer, peak_memory_mb, resolve_device  # noqa: E402

DEFAULT_SIZES = "250000:50000:5000000,500000:100000:10000000,1000000:200000:20000000"
MODALITY_DIMS = {"visual": 256, "text": 256}


def measure(model_name: str, n_users: int, n_items: int, n_interactions: int, batch_size: int, dim: int,
            device: str = "cpu") -> dict:
    configure_torch()
    steps = {}
    started = time.perf_counter()
    dataset = generate(n_users, n_items, n_interactions, MODALITY_DIMS, seed=1).dataset
    steps["generate"] = step_figures(started)
    started = time.perf_counter()
    config = RunConfig.for_model(model_name, seed=1, batch_size=batch_size, device=device)
    config.apply({"embedding_size": dim})
    model = build_model(config, dataset)
    optimizer = build_optimizer(model, config.train.learning_rate)
    steps["build model"] = step_figures(started)
    started = time.perf_counter()
    parts = train_one_epoch(model, optimizer, NegativeSampler(dataset.train), batch_size)
    steps["train epoch"] = step_figures(started) | {"parts": parts}
    started = time.perf_counter()
    model.eval()
    valid = Evaluator(dataset).evaluate(model, "valid")
    steps["eval pass"] = step_figures(started)
    return {
        "model": model_name, "users": dataset.n_users, "items": dataset.n_items,
        "train_pairs": int(dataset.train.nnz),
        "interactions": int(dataset.train.nnz + dataset.valid.nnz + dataset.test.nnz),
        "batch_size": batch_size, "embedding_size": dim, "steps": steps, "valid_recall@20": valid["recall@20"],
        "peak_memory_mb": peak_memory_mb(), **gpu_figures(),
    }


def step_figures(started: float) -> dict:
    """Seconds since ``started`` and the process's peak memory so far (with a GPU's peak allocation)."""
    return {"seconds": time.perf_counter() - started, "peak_memory_mb": peak_memory_mb(), **gpu_figures()}


def gpu_figures() -> dict:
    """The GPU's name and peak allocated memory so far, when the run uses one."""
    if not torch.cuda.is_initialized():
        return {}
    return {"gpu": torch.cuda.get_device_name(), "gpu_peak_memory_mb": torch.cuda.max_memory_allocated() / 2**20}


def train_one_epoch(model, optimizer, sampler: NegativeSampler, batch_size: int) -> dict:
    """One epoch with a progress bar; its wall time split by step."""
    parts = no_time_yet()
    with progress_bar() as bar:
        task = bar.add_task("epoch", total=sampler.n_batches(batch_size), unit="batch")
        train_epoch(model, optimizer, sampler, batch_size, 0, parts, on_batch=lambda: bar.advance(task))
    return parts


def markdown(results: list[dict]) -> str:
    on_gpu = any("gpu_peak_memory_mb" in r for r in results)
    header = ("| users | items | interactions | generate s | build s | epoch s | eval pass s | peak MB after epoch "
              "| peak MB |")
    lines = [header + (" GPU peak MB |" if on_gpu else ""), "|---" * (10 if on_gpu else 9) + "|"]
    for r in results:
        s = r["steps"]
        lines.append(
            f"| {r['users']:,} | {r['items']:,} | {r['interactions']:,} | {s['generate']['seconds']:.0f} | "
            f"{s['build model']['seconds']:.0f} | {s['train epoch']['seconds']:.0f} | "
            f"{s['eval pass']['seconds']:.0f} | "
            f"{s['train epoch']['peak_memory_mb']:,.0f} | {r['peak_memory_mb']:,.0f} |"
            + (f" {r.get('gpu_peak_memory_mb', 0):,.0f} |" if on_gpu else "")
        )
    return "\n".join(lines) + "\n"


def parse_sizes(text: str) -> list[tuple[int, int, int]]:
    return [tuple(int(part) for part in size.split(":")) for size in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="users:items:interactions, comma-separated")
    parser.add_argument("--batch-size", type=int, default=131072)
    parser.add_argument("--model", default="rlmultimodalrec")
    parser.add_argument("--embedding-size", type=int, default=64)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--out", help="report stem under benchmarks/results/ and README block (scale, or scale-cuda)")
    args = parser.parse_args()
    try:
        resolve_device(args.device)  # here, not in the first size's process, so that a bad one is told plainly
    except GatedRecError as error:
        parser.error(str(error))
    out = args.out or ("scale" if args.device == "cpu" else "scale-cuda")
    results = []
    for n_users, n_items, n_interactions in parse_sizes(args.sizes):
        result = in_fresh_process(measure, args.model, n_users, n_items, n_interactions, args.batch_size,
                                  args.embedding_size, args.device)
        print(f"{n_users:,} users: epoch {result['steps']['train epoch']['seconds']:.0f} s, "
              f"eval {result['steps']['eval pass']['seconds']:.0f} s, peak {result['peak_memory_mb']:,.0f} MB",
              flush=True)
        results.append(result)
    where = machine() | ({"gpu": results[0]["gpu"]} if "gpu" in results[0] else {})
    gpu_peak = " (GPU peak: its peak allocation)" if "gpu" in where else ""
    intro = (f"{args.model}, {args.embedding_size}-d embeddings, modalities {MODALITY_DIMS}, batch {args.batch_size}, "
             f"one epoch and one full evaluation pass (valid) per size on {args.device}, each size in a fresh process; "
             f"peak memory is the process's maximum RSS{gpu_peak}. Machine: {where}.\n\n")
    report = {"machine": where, "device": args.device, "results": results}
    save_report(out, report, "# Scale\n\n" + intro + markdown(results))
    update_readme(intro + markdown(results), out)


if __name__ == "__main__":
    main()
