"""``gatedrec study``: studies of trained runs (gates) and of models under damaged features (missing, noise)."""

from __future__ import annotations

from pathlib import Path

from gatedrec.commands.output import describe, results
from gatedrec.commands.training import parse_modality_files, parse_seeds
from gatedrec.config import DataConfig
from gatedrec.data import Dataset, load_data
from gatedrec.errors import GatedRecError
from gatedrec.progress import console
from gatedrec.studies.gates import study_gates


def gates(args) -> None:
    out = Path(args.out)
    result = study_gates(Path(args.run), out)
    written = ", ".join(sorted(path.name for path in out.iterdir()))
    stats = result["distribution"][result["modalities"][0]]
    results.print(f"{result['modalities'][0]} share over {result['items']:,} items: mean {stats['mean']:.4f}, "
                  f"std {stats['std']:.4f}, from {stats['min']:.4f} to {stats['max']:.4f}")
    results.print(f"wrote {out}: {written}")


def missing(args) -> None:
    from gatedrec.studies import missing as study
    from gatedrec.studies.robustness import parse_study_models, run_study

    data, dataset = study_data(args)
    modality = target_modality(dataset, args.modality)
    conditions = study.conditions(args.protocol, modality, args.shares)
    if args.protocol == "dgmrec":
        modality = study.image_and_text(dataset)[0]
    models = parse_study_models(args.models)
    study.save_masks(dataset, conditions, args.corruption_seed, Path(args.out) / "masks")
    outcome = run_study("missing", data, dataset, models, conditions, parse_seeds(args.seeds), Path(args.out),
                        args.jobs, args.corruption_seed, modality)
    report(outcome, Path(args.out))


def noise(args) -> None:
    from gatedrec.studies import noise as study
    from gatedrec.studies.corruption import check_level
    from gatedrec.studies.robustness import parse_study_models, run_study

    data, dataset = study_data(args)
    modality = target_modality(dataset, args.modality)
    levels = [check_level(level.strip()) for level in args.levels.split(",") if level.strip()]
    conditions = study.conditions(modality, args.shares, levels)
    models = parse_study_models(args.models)
    study.save_items(dataset, conditions, args.corruption_seed, Path(args.out) / "masks")
    outcome = run_study("noise", data, dataset, models, conditions, parse_seeds(args.seeds), Path(args.out),
                        args.jobs, args.corruption_seed, modality)
    report(outcome, Path(args.out))


def study_data(args) -> tuple[DataConfig, Dataset]:
    data = DataConfig(str(Path(args.data).resolve()), args.inter, parse_modality_files(args.features, "--features"))
    dataset = load_data(data)
    if not dataset.modalities:
        raise GatedRecError(f"'{args.data}' has no item features to take away or corrupt; name them with "
                            "--features NAME=FILE")
    console.print(f"study on {dataset.name}: {describe(dataset)}")
    return data, dataset


def target_modality(dataset: Dataset, asked: str | None) -> str:
    names = list(dataset.modalities)
    if asked is None:
        return "visual" if "visual" in names else names[0]
    if asked not in names:
        raise GatedRecError(f"--modality '{asked}': the data set has no such modality; it has {', '.join(names)}")
    return asked


def report(outcome: dict, out: Path) -> None:
    for row in outcome["rows"]:
        if row["modality"] != "clean":
            recall = row["test"]["recall@20"]
            results.print(f"{row['model']:<40} {row['modality']} {row['share']:.0%} {row['level']:<8} "
                          f"R@20 {recall['mean']:.4f} ± {recall['std']:.4f} ({-row['relative_loss']:+.1%})")
    results.print(f"wrote {out}: results.json, results.md, results.csv, recall.png"
                  + (", shares.png" if (out / "shares.png").exists() else ""))
