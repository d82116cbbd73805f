"""Shared pieces of the benchmark scripts: the shared data sets, seeded runs, mean ± std, report files."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from gatedrec.benchmark import mean_std  # noqa: F401  (re-exported for the scripts)
from gatedrec.config import RunConfig
from gatedrec.data import load_mmrec
from gatedrec.io import write_json, write_text_atomic
from gatedrec.progress import progress_bar
from gatedrec.system import machine  # noqa: F401  (re-exported for the scripts)
from gatedrec.training import Trainer

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results"
SERVING_DOC = REPO / "docs" / "serving.md"

DATASETS = {
    "amazon-scientific-mm": {"folder": "amazon-scientific-mm"},
    "lastfm-2k-multimodal": {
        "folder": "lastfm-2k-multimodal",
        "modalities": {"text": "all-MiniLM-L6-v2.npy", "audio": "vggish.npy"},
    },
    "amazon-baby-mmrec": {"folder": "amazon-baby-mmrec", "inter": "baby_mmhcl_split.inter"},
}


def data_config(name: str) -> dict:
    spec = DATASETS[name]
    return {"path": str(SHARED_DATA / spec["folder"]), "inter": spec.get("inter"), "modalities": spec.get("modalities")}


def load_shared(name: str):
    config = data_config(name)
    return load_mmrec(config["path"], config["inter"], config["modalities"])


def train_once(model: str, dataset_name: str, dataset, seed: int, overrides: dict | None = None, **train) -> dict:
    config = RunConfig.for_model(model, seed=seed, **train)
    config.apply(overrides or {})
    config.data.path = data_config(dataset_name)["path"]
    return Trainer(config, dataset, quiet=True).fit()


def in_fresh_process(function, *args):
    """function(*args) in a new interpreter: its peak memory and thread state are its own."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def save_report(stem: str, data: dict, markdown: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_json(RESULTS / f"{stem}.json", data)
    write_text_atomic(RESULTS / f"{stem}.md", markdown)
    print(markdown)


def load_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def update_readme(text: str, block: str, document: Path = REPO / "README.md") -> None:
    """Replace the block between <!-- block:start --> and <!-- block:end --> of ``document`` (the README by
    default) with ``text``."""
    content = document.read_text()
    start, end = f"<!-- {block}:start -->", f"<!-- {block}:end -->"
    if start in content and end in content:
        head, rest = content.split(start, 1)
        write_text_atomic(document, head + start + "\n" + text + end + rest.split(end, 1)[1])


def in_turn(parts: dict[str, Callable[[int], object]], epochs: int) -> dict[str, list[float]]:
    """Seconds of each part, the parts run in turn once per epoch (called with its number, epoch 0 a warm-up),
    printed as they come: two frameworks timed alike, whatever the machine's drift."""
    seconds = {name: [] for name in parts}
    with progress_bar() as bar:
        task = bar.add_task("epochs in turn", total=epochs + 1, unit="epoch")
        for epoch in range(epochs + 1):
            for name, part in parts.items():
                started = time.perf_counter()
                part(epoch)
                seconds[name].append(time.perf_counter() - started)
            print(f"epoch {epoch}: " + ", ".join(f"{name} {values[-1]:.3f} s" for name, values in seconds.items()),
                  flush=True)
            bar.advance(task)
    return seconds


def medians_after_warm_up(seconds: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(values[1:]) for name, values in seconds.items()}


def in_turn_intro(result: dict, other: str, model: str = "LightGCN (2 layers)") -> str:
    """The first sentences of a report on ``model`` timed in turn with another framework's (``other``)."""
    pairs = result["training_pairs"]
    return (f"{model} on {result['data']}, {result['epochs']} epochs and evaluation passes each after a "
            f"warm-up, taken in turn in one process; medians. Training pairs: ours {pairs['ours']:,}, "
            f"{other} {pairs[other.lower()]:,}.")


@contextmanager
def working_directory(folder: str | Path) -> Iterator[None]:
    """The block runs in ``folder`` (another framework reads or writes relative to it), then where it was."""
    started_in = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(started_in)
