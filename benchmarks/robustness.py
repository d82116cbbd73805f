"""The robustness studies behind docs/robustness.md: `gatedrec study noise` and `gatedrec study missing` on the
shared data sets, each written to benchmarks/results/robustness/<name> (runs kept there, so an interrupted run
resumes), and each study's tables copied into docs/robustness.md.

    python benchmarks/robustness.py [--only noise-sci-text,missing-sci] [--report-only]

amazon-scientific-full has no text feature: its text is encoded from item_text.tsv with the offline MiniLM
(the same folder benchmarks/content.py builds). About 80 minutes on 2 cores for all seven.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, RESULTS, SHARED_DATA, update_readme  # noqa: E402

from gatedrec.cli import main  # noqa: E402

OUT = RESULTS / "robustness"
DOC = REPO / "docs" / "robustness.md"
FULL_DATA = RESULTS / "content" / "sci-full-data"
LASTFM_FEATURES = ["--features", "text=all-MiniLM-L6-v2.npy", "--features", "audio=vggish.npy"]
PRIOR_0 = "agreement_prior=0"
GATES = f"rlmultimodalrec,rlmultimodalrec:{PRIOR_0},rlmultimodalrec:gate=element"
FUSIONS = "rlmultimodalrec:fusion=concat,rlmultimodalrec:fusion=mean"
IMPUTED = ("freedom:missing=mean,freedom:missing=zero,lattice:missing=mean,lattice:missing=zero,bm3:missing=mean,"
           "bm3:missing=zero,vbpr:missing=mean,vbpr:missing=zero")
SCI = str(SHARED_DATA / "amazon-scientific-mm")
STUDIES = {  # name: the study's command line, less --out
    "noise-sci-text": ["noise", "--data", SCI, "--modality", "text", "--models",
                       f"{GATES},rlmultimodalrec:gate_agreement=false:{PRIOR_0},rlmultimodalrec:fusion=concat:{PRIOR_0},"
                       f"rlmultimodalrec:fusion=mean:{PRIOR_0},freedom,vbpr,lightgcn"],
    "noise-sci-text-graph": ["noise", "--data", SCI, "--modality", "text", "--shares", "1", "--levels", "replace",
                             "--jobs", "1", "--models", "rlmultimodalrec,rlmultimodalrec:item_knn_k=0,"
                             "rlmultimodalrec:item_graph_mix=learned,rlmultimodalrec:item_graph_mix=agreement,"
                             "rlmultimodalrec:fusion=mean:item_knn_k=0"],
    "missing-sci": ["missing", "--data", SCI, "--models", f"rlmultimodalrec,rlmultimodalrec:missing=mean,"
                    f"rlmultimodalrec:missing=zero,rlmultimodalrec:{PRIOR_0},rlmultimodalrec:gate=element,{FUSIONS},"
                    f"{IMPUTED},lightgcn"],
    "noise-sci": ["noise", "--data", SCI, "--models", f"{GATES},{FUSIONS},freedom,lattice,bm3,vbpr,lightgcn"],
    "noise-lastfm": ["noise", "--data", str(SHARED_DATA / "lastfm-2k-multimodal"), *LASTFM_FEATURES,
                     "--modality", "audio", "--shares", "0.5", "--models",
                     f"rlmultimodalrec,rlmultimodalrec:{PRIOR_0},rlmultimodalrec:fusion=mean,freedom,vbpr,lightgcn"],
    "missing-lastfm": ["missing", "--data", str(SHARED_DATA / "lastfm-2k-multimodal"), *LASTFM_FEATURES, "--models",
                       "rlmultimodalrec,rlmultimodalrec:missing=mean,rlmultimodalrec:fusion=mean,freedom:missing=mean,"
                       "vbpr:missing=mean,lightgcn"],
    "missing-full": ["missing", "--data", str(FULL_DATA), "--protocol", "sweep", "--modality", "text", "--shares",
                     "0.8", "--models", "rlmultimodalrec,rlmultimodalrec:missing=mean,freedom:missing=mean,lightgcn"],
}


def build_full_data() -> None:
    from gatedrec.features import text_encoder
    from gatedrec.features.derived import TextColumn, derive_text_folder

    full = SHARED_DATA / "amazon-scientific-full"
    derive_text_folder(full, FULL_DATA, TextColumn(full / "item_text.tsv", "text"), text_encoder(),
                       modalities={"visual": "image_feat.npy@image_items.tsv"})


def run(names: list[str]) -> None:
    for name in names:
        if name == "missing-full" and not (FULL_DATA / "text_feat.npy").exists():
            build_full_data()
        print(f"== {name}", flush=True)
        if main(["study", *STUDIES[name], "--out", str(OUT / name)]) != 0:
            raise SystemExit(f"study {name} failed")


def write_doc() -> None:
    for name in STUDIES:
        report = OUT / name / "results.md"
        if report.exists():
            text = report.read_text().split("\n", 1)[1]  # the study's own heading gives way to the document's
            update_readme(text.replace("# ", "### ", 1) if text.startswith("# ") else text, name, DOC)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help=f"comma-separated studies among {', '.join(STUDIES)}")
    parser.add_argument("--report-only", action="store_true", help="copy the saved tables into the document")
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    chosen = [name.strip() for name in args.only.split(",")] if args.only else list(STUDIES)
    unknown = set(chosen) - set(STUDIES)
    if unknown:
        raise SystemExit(f"--only: unknown studies {', '.join(sorted(unknown))}; choose among {', '.join(STUDIES)}")
    if not args.report_only:
        run(chosen)
    write_doc()
