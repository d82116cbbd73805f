"""`gatedrec prepare amazon` on a generated 2018-format reviews file of N lines (each with a review text,
as the real files have), gzipped: wall seconds, peak memory, and the raw file's size against the memory.

    python benchmarks/prepare_scale.py [--reviews 2000000] [--items 50000]

The run happens in a child process so that its peak memory (ru_maxrss) is its own. Text and image
encoders are off: this measures reading, filtering, splitting and writing.
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, save_report  # noqa: E402

from gatedrec.io import read_yaml  # noqa: E402

REVIEW_TEXT = "This product works as described and arrived on time; the build quality is fine for the price. " * 3


def write_reviews(path: Path, n_reviews: int, n_items: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    n_users = n_reviews // 8
    users = rng.integers(0, n_users, n_reviews)
    items = np.minimum(rng.zipf(1.3, n_reviews) - 1, n_items - 1)
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as handle:
        for user, item, rating in zip(users, items, rng.integers(1, 6, n_reviews)):
            handle.write(json.dumps({"reviewerID": f"A{user:09d}", "asin": f"B{item:09d}", "overall": float(rating),
                                     "unixReviewTime": 1_500_000_000 + int(user), "reviewText": REVIEW_TEXT}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reviews", type=int, default=2_000_000)
    parser.add_argument("--items", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        reviews = Path(work) / "reviews.json.gz"
        started = time.perf_counter()
        write_reviews(reviews, args.reviews, args.items)
        print(f"wrote {reviews.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - started:.0f} s")
        command = [sys.executable, "-m", "gatedrec", "prepare", "amazon", "--reviews", str(reviews), "--text-encoder",
                   "none", "--image-encoder", "none", "--out", str(Path(work) / "prepared"), "--quiet"]
        started = time.perf_counter()
        subprocess.run(command, check=True)
        seconds = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        uncompressed = args.reviews * (len(REVIEW_TEXT) + 110)
        summary = read_yaml(Path(work) / "prepared" / "dataset.yaml")["prepared"]["summary"]
        result = {"reviews": args.reviews, "gzip_mb": reviews.stat().st_size / 1e6,
                  "approx_uncompressed_mb": uncompressed / 1e6, "seconds": seconds, "peak_memory_mb": peak_mb,
                  "kept": {k: summary[k] for k in ("users", "items", "interactions")}, "machine": machine()}
    markdown = "\n".join([
        "# `gatedrec prepare amazon` on a generated 2018-format file", "",
        f"Machine: {result['machine']}.", "",
        "| reviews | gzip MB | ~uncompressed MB | seconds | peak memory MB | kept users | kept items "
        "| kept interactions |",
        "|---|---|---|---|---|---|---|---|",
        f"| {args.reviews:,} | {result['gzip_mb']:.0f} | {result['approx_uncompressed_mb']:.0f} | {seconds:.0f} "
        f"| {peak_mb:.0f} | "
        f"{result['kept']['users']:,} | {result['kept']['items']:,} | {result['kept']['interactions']:,} |",
    ]) + "\n"
    save_report("prepare_scale", result, markdown)


if __name__ == "__main__":
    main()
