"""Content benchmarks of issue 4, through `gatedrec benchmark`'s machinery (grid on valid Recall@20 with the
first seed, the chosen point re-run per seed, test mean ± std):

missing: ../shared/data/amazon-scientific-full, text encoded from item_text.tsv with the offline MiniLM
(`gatedrec features text`), images for 1,585 of 4,385 items. RLMultimodalRec masking the missing image vs
filling it with the mean image vector (--missing mean), text only, and LightGCN.

cold: amazon-scientific-mm re-split with --split cold-items:0.2 (20 % of the items, seed 0, hold all their
interactions out); Recall@20 / NDCG@20 on cold and on warm test items, each ranked among all items.

cold-scale: how RLMultimodalRec's cold-item parameters (cold_neighbours, cold_scale: they act at ranking
time only) were chosen: one model trained with seed 1 on the cold split, every pair evaluated on valid.

    python benchmarks/content.py [--part missing|cold|cold-scale|all] [--seeds 1,2,3] [--grid small|default]

Reports: results/content.{json,md}; each benchmark's own tables and plots under results/content/<name>/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, SHARED_DATA, machine, save_report  # noqa: E402

from gatedrec.benchmark import Benchmark, parse_models  # noqa: E402
from gatedrec.config import DataConfig, RunConfig  # noqa: E402
from gatedrec.data import load_data  # noqa: E402
from gatedrec.features import text_encoder  # noqa: E402
from gatedrec.features.derived import TextColumn, derive_text_folder  # noqa: E402
from gatedrec.evaluation import Evaluator  # noqa: E402
from gatedrec.report import write_reports  # noqa: E402
from gatedrec.training import Trainer, build_model  # noqa: E402

OUT = RESULTS / "content"
FULL = SHARED_DATA / "amazon-scientific-full"
PARTIAL_IMAGES = {"visual": "image_feat.npy@image_items.tsv"}
MISSING_RUNS = {  # label: (models, --missing)
    "masking": ("rlmultimodalrec", "mask"),
    "mean-fill": ("rlmultimodalrec", "mean"),
    "text-only": ("rlmultimodalrec:fusion=text-only", "mask"),
    "LightGCN": ("lightgcn", "mask"),
}
COLD_MODELS = "lightgcn,content_knn,rlmultimodalrec"
COLD_SPLIT = "cold-items:0.2"
SHOWN = ("recall@20", "ndcg@20")
TRAIN_SETTINGS: dict = {}  # --threads N adds {"threads": N}


def run_benchmark(name: str, data: DataConfig, models: str, seeds: list[int], grid: str) -> dict:
    dataset = load_data(data)
    out = OUT / name
    results = Benchmark(dataset, data, parse_models(models, {}), seeds, grid, out, TRAIN_SETTINGS).run()
    write_reports(out, results, {"data": dataset.name, "grid": grid, "seeds": seeds, "machine": machine()})
    return results


def cell(result: dict, split: str, metric: str) -> str:
    return f"{result[split][metric]['mean']:.4f} ± {result[split][metric]['std']:.4f}"


def missing_part(seeds: list[int], grid: str) -> tuple[dict, list[str]]:
    folder = OUT / "sci-full-data"
    derive_text_folder(FULL, folder, TextColumn(FULL / "item_text.tsv", "text"), text_encoder(),
                       modalities=PARTIAL_IMAGES)
    rows = {}
    for label, (models, missing) in MISSING_RUNS.items():
        data = DataConfig(str(folder), missing=missing)
        rows[label] = next(iter(run_benchmark(f"missing-{label}", data, models, seeds, grid).values()))
    lines = [
        "## Missing images: amazon-scientific-full (images for 1,585 of 4,385 items, text for all)",
        "",
        "| run | test " + " | test ".join(SHOWN) + " | chosen |",
        "|---|---|---|---|",
    ]
    for label, result in rows.items():
        chosen = ", ".join(f"{k}={v}" for k, v in result["chosen"].items()) or "defaults"
        lines.append(f"| {label} | " + " | ".join(cell(result, "test", m) for m in SHOWN) + f" | {chosen} |")
    return rows, lines


def cold_part(seeds: list[int], grid: str) -> tuple[dict, list[str]]:
    data = DataConfig(str(SHARED_DATA / "amazon-scientific-mm"), split=COLD_SPLIT)
    rows = run_benchmark("cold-items", data, COLD_MODELS, seeds, grid)
    columns = [(split, metric) for split in ("test_cold", "test_warm", "test") for metric in SHOWN]
    lines = [
        f"## Cold items: amazon-scientific-mm, --split {COLD_SPLIT}",
        "",
        "| model | " + " | ".join(f"{split.replace('_', ' ')} {metric}" for split, metric in columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for label, result in rows.items():
        lines.append(f"| {label} | " + " | ".join(cell(result, s, m) for s, m in columns) + " |")
    return rows, lines


COLD_NEIGHBOURS = (1, 3, 5, 10)
COLD_SCALES = (1.0, 1.1, 1.2, 1.3, 1.5)


def cold_scale_part(seeds: list[int], grid: str) -> tuple[dict, list[str]]:
    data = DataConfig(str(SHARED_DATA / "amazon-scientific-mm"), split=COLD_SPLIT)
    dataset = load_data(data)
    config = RunConfig.for_model("rlmultimodalrec", seed=seeds[0])
    config.data = data
    trained = Trainer(config, dataset, quiet=True)
    trained.fit()
    evaluator = Evaluator(dataset)
    cold = ~dataset.warm_items
    rows = []
    for neighbours in COLD_NEIGHBOURS:
        for scale in COLD_SCALES:
            config.apply({"cold_neighbours": neighbours, "cold_scale": scale})
            model = build_model(config, dataset)
            model.load_state_dict(trained.model.state_dict())
            model.eval()
            rows.append({"cold_neighbours": neighbours, "cold_scale": scale,
                         "valid_recall@20": evaluator.evaluate(model, "valid")["recall@20"],
                         "valid_cold_recall@20": evaluator.evaluate(model, "valid", cold)["recall@20"]})
    best = max(rows, key=lambda row: row["valid_recall@20"])
    lines = [f"## RLMultimodalRec's cold-item parameters on valid (amazon-scientific-mm, --split {COLD_SPLIT}, "
             f"seed {seeds[0]})", "",
             "| cold_neighbours | cold_scale | valid recall@20 | valid recall@20 on cold items |", "|---|---|---|---|"]
    lines += [f"| {r['cold_neighbours']} | {r['cold_scale']} | {r['valid_recall@20']:.4f} | "
              f"{r['valid_cold_recall@20']:.4f} |" for r in rows]
    lines += ["", f"Best on valid recall@20: cold_neighbours={best['cold_neighbours']}, "
                  f"cold_scale={best['cold_scale']}."]
    return {"rows": rows, "best": best}, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", default="all", choices=("missing", "cold", "cold-scale", "all"))
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--grid", default="small", choices=("small", "default"))
    parser.add_argument("--threads", type=int, default=0, help="threads per run (0: all cores)")
    args = parser.parse_args()
    if args.threads:
        TRAIN_SETTINGS["threads"] = args.threads
    seeds = [int(seed) for seed in args.seeds.split(",")]
    parts = {"missing": missing_part, "cold-scale": cold_scale_part, "cold": cold_part}
    chosen = parts if args.part == "all" else {args.part: parts[args.part]}
    report, lines = {"machine": machine(), "seeds": seeds, "grid": args.grid}, []
    for name, part in chosen.items():
        report[name], part_lines = part(seeds, args.grid)
        lines += part_lines + [""]
    header = [f"# Content benchmarks (grid `{args.grid}` on valid Recall@20, seeds {args.seeds}, test mean ± std)",
              "", f"Machine: {report['machine']}.", ""]
    save_report(f"content-{args.part}", report, "\n".join(header + lines))


if __name__ == "__main__":
    main()
