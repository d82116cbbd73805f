"""The default thread policy against one and two threads, on an idle machine and beside one competing CPU-bound
process: seconds per epoch of RLMultimodalRec (its defaults) on each shared data set and on generated Baby-size
data, each case a fresh `gatedrec train` (as a user runs it), evaluation only at the end.

    python benchmarks/threads.py [--epochs 6] [--datasets amazon-scientific-mm,lastfm-2k-multimodal,generated-baby]

The goal: the default within 1.3 times the better of one and two threads in every row.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SHARED_DATA, machine, save_report, update_readme  # noqa: E402

from gatedrec.progress import progress_bar  # noqa: E402

DATASETS = {
    "amazon-scientific-mm": ["--data", str(SHARED_DATA / "amazon-scientific-mm")],
    "lastfm-2k-multimodal": ["--data", str(SHARED_DATA / "lastfm-2k-multimodal"), "--modality",
                             "text=all-MiniLM-L6-v2.npy", "--modality", "audio=vggish.npy"],
}
BABY_SIZE = ["--users", "19445", "--items", "7050", "--interactions", "160792", "--modality", "visual:4096",
             "--modality", "text:384", "--seed", "0"]
SETTINGS = {"default": [], "1 thread": ["--set", "threads=1"], "2 threads": ["--set", "threads=2"]}
LIMIT = 1.3
# a pure-Python loop: one CPU-bound process that competes for a core and for nothing else
COMPETITOR = "import time\nend = time.time() + 3600\nwhile time.time() < end:\n    pass\n"


def generated_baby(folder: Path) -> list[str]:
    out = folder / "generated-baby"
    if not out.exists():
        subprocess.run([sys.executable, "-m", "gatedrec", "generate", *BABY_SIZE, "--out", str(out)], check=True,
                       stdout=subprocess.DEVNULL)
    return ["--data", str(out)]


def seconds_per_epoch(data: list[str], setting: list[str], epochs: int, scratch: Path) -> float:
    out = Path(tempfile.mkdtemp(dir=scratch))
    command = [sys.executable, "-m", "gatedrec", "train", *data, "--model", "rlmultimodalrec", "--epochs", str(epochs),
               "--set", f"eval_every={epochs}", *setting, "--json", "--quiet", "--out", str(out / "run")]
    completed = subprocess.run(command, check=True, capture_output=True, text=True,
                               env={key: value for key, value in os.environ.items() if not key.startswith("OMP_")})
    return json.loads(completed.stdout)["seconds_per_epoch"]


def measure(name: str, data: list[str], busy: bool, epochs: int, scratch: Path) -> dict:
    competitor = subprocess.Popen([sys.executable, "-c", COMPETITOR]) if busy else None
    try:
        seconds = {label: seconds_per_epoch(data, setting, epochs, scratch) for label, setting in SETTINGS.items()}
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()
    best = min(seconds["1 thread"], seconds["2 threads"])
    return {"data": name, "machine_state": "busy" if busy else "idle", "seconds_per_epoch": seconds,
            "default_over_best": seconds["default"] / best}


def markdown(result: dict) -> str:
    lines = [f"Machine: {result['machine']}.", "",
             f"RLMultimodalRec (defaults), seconds per epoch over {result['epochs']} epochs, each case a fresh "
             "`gatedrec train`; busy: beside one CPU-bound process (a pure-Python loop). The default must stay within "
             f"{LIMIT} times the better of one and two threads.", "",
             "| data | machine | default s | 1 thread s | 2 threads s | default / best |", "|---|---|---|---|---|---|"]
    for row in result["rows"]:
        seconds = row["seconds_per_epoch"]
        lines.append(f"| {row['data']} | {row['machine_state']} | {seconds['default']:.3f} | "
                     f"{seconds['1 thread']:.3f} | {seconds['2 threads']:.3f} | {row['default_over_best']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--datasets", default="amazon-scientific-mm,lastfm-2k-multimodal,generated-baby")
    args = parser.parse_args()
    names = args.datasets.split(",")
    result = {"machine": machine(), "epochs": args.epochs, "rows": []}
    with tempfile.TemporaryDirectory() as scratch, progress_bar() as progress:
        task = progress.add_task("cases", total=2 * len(names), unit="case")
        for name in names:
            data = generated_baby(Path(scratch)) if name == "generated-baby" else DATASETS[name]
            for busy in (False, True):
                result["rows"].append(measure(name, data, busy, args.epochs, Path(scratch)))
                print(json.dumps(result["rows"][-1]))
                progress.advance(task)
    save_report("threads", result, markdown(result))
    update_readme(markdown(result), "threads", Path(__file__).resolve().parents[1] / "docs" / "threads.md")


if __name__ == "__main__":
    main()
