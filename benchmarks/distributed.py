"""Data-parallel check: RLMultimodalRec on amazon-scientific-mm trained by one process and by two
(torchrun, gloo, one thread each), same seed; valid and test Recall@20 and wall time side by side.

    python benchmarks/distributed.py [--model rlmultimodalrec] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import data_config, machine, save_report  # noqa: E402

DATASET = "amazon-scientific-mm"


def train(processes: int, model: str, seed: int, out: Path) -> dict:
    data = data_config(DATASET)
    launcher = (["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
                if processes > 1 else [])
    command = [sys.executable, *launcher, "-m", "gatedrec", "train", "--data", data["path"], "--model", model,
               "--seed", str(seed), "--set", "threads=1", "--quiet", "--out", str(out)]
    started = time.perf_counter()
    subprocess.run(command, check=True, env=os.environ | {"OMP_NUM_THREADS": "1"})
    metrics = json.loads((out / "metrics.json").read_text())
    return {"processes": processes, "wall_seconds": time.perf_counter() - started,
            "valid_recall@20": metrics["valid"]["recall@20"], "test_recall@20": metrics["test"]["recall@20"],
            "best_epoch": metrics["best_epoch"], "seconds_per_epoch": metrics["seconds_per_epoch"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="rlmultimodalrec")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        results = [train(n, args.model, args.seed, Path(folder) / f"p{n}") for n in (1, 2)]
    ratio = results[1]["valid_recall@20"] / results[0]["valid_recall@20"]
    lines = ["| processes | valid R@20 | test R@20 | best epoch | s/epoch | wall s |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['processes']} | {r['valid_recall@20']:.4f} | {r['test_recall@20']:.4f} | {r['best_epoch']} | "
              f"{r['seconds_per_epoch']:.3f} | {r['wall_seconds']:.0f} |" for r in results]
    text = (f"# Data-parallel training\n\n{args.model} on {DATASET}, seed {args.seed}, one thread per process; "
            f"2-process / 1-process valid Recall@20 = {ratio:.3f}. Machine: {machine()}.\n\n" + "\n".join(lines) + "\n")
    save_report("distributed", {"machine": machine(), "results": results, "valid_ratio": ratio}, text)


if __name__ == "__main__":
    main()
