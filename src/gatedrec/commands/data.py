"""``gatedrec generate``, ``gatedrec features text`` and ``gatedrec prepare``."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from gatedrec.commands.output import describe, results
from gatedrec.commands.training import parse_modality_files
from gatedrec.data.mmrec import resolve_path
from gatedrec.data.synthetic import generate, save_mmrec
from gatedrec.errors import GatedRecError
from gatedrec.features.derived import TextColumn, derive_text_folder
from gatedrec.features.encoders import text_encoder
from gatedrec.options import DEFAULT_TEXT_FIELDS
from gatedrec.prepare.images import ImageFetch
from gatedrec.prepare.pipeline import GenericColumns, PrepareOptions, amazon_source, generic_source, prepare
from gatedrec.progress import console


def parse_modality_dims(texts: list[str]) -> dict[str, int] | None:
    if not texts:
        return None
    dims = {}
    for text in texts:
        name, sep, dim = text.partition(":")
        if not sep or not name or not dim.isdigit() or int(dim) < 1:
            raise GatedRecError(f"--modality '{text}' must look like NAME:DIM, e.g. visual:4096")
        dims[name] = int(dim)
    return dims


def generate_command(args) -> None:
    generated = generate(args.users, args.items, args.interactions, parse_modality_dims(args.modality), args.seed)
    folder = save_mmrec(generated, args.out)
    results.print(f"wrote {folder}: {describe(generated.dataset)}")


def features_text(args) -> None:
    text = TextColumn(resolve_path(Path(args.data), args.text_file), args.column)
    encoder = text_encoder(args.encoder, args.device)
    dataset, from_cache = derive_text_folder(
        Path(args.data), Path(args.out), text, encoder, args.name, args.inter, parse_modality_files(args.modality),
        args.quiet,
    )
    coverage = dataset.modalities[args.name].present.mean()
    source = "reused from the cache" if from_cache else "encoded"
    results.print(f"{args.name}: {coverage:.1%} of the items, {source} with {encoder.identity}")
    results.print(f"wrote {args.out}: {describe(dataset)}; train with: gatedrec train --data {args.out}")


def prepare_command(args) -> None:
    if args.kind == "amazon":
        source = amazon_source(Path(args.reviews), Path(args.meta) if args.meta else None, args.quiet)
        text_fields = args.text_fields
    else:
        columns = GenericColumns(args.user_col, args.item_col, args.rating_col, args.time_col, args.item_id_col,
                                 tuple(_names(args.text_cols)), args.image_col)
        source = generic_source(Path(args.interactions), Path(args.items) if args.items else None, columns)
        text_fields = args.text_cols if args.text_fields == ",".join(DEFAULT_TEXT_FIELDS) else args.text_fields
    options = PrepareOptions(
        min_user=args.min_user, min_item=args.min_item, min_rating=args.min_rating, split=args.split, seed=args.seed,
        text_fields=tuple(_names(text_fields)), text_encoder=_encoder(args.text_encoder),
        image_encoder=_encoder(args.image_encoder), images_dir=Path(args.images_dir) if args.images_dir else None,
        download_images=args.download_images, image_cache=Path(args.image_cache) if args.image_cache else None,
        fetch=ImageFetch(args.download_workers, args.download_timeout, args.download_retries), device=args.device,
        quiet=args.quiet,
    )
    summary = prepare(source, Path(args.out), options, lambda step: None if args.quiet else console.print(f"· {step}"))
    results.print(prepare_table(summary, args.out))
    results.print(f"train with: gatedrec train --data {args.out}")


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _encoder(name: str) -> str | None:
    return None if name.lower() == "none" else name


def prepare_table(summary: dict, out: str) -> Table:
    table = Table(title=f"prepared {out}")
    table.add_column("")
    table.add_column("value", justify="right")
    for key in ("users", "items", "interactions", "train", "valid", "test"):
        table.add_row(key, f"{summary[key]:,}")
    table.add_row("sparsity", f"{summary['sparsity']:.4%}")
    for name, share in summary["coverage"].items():
        table.add_row(f"{name} coverage", f"{share:.1%}")
    for problem in summary["malformed"]:
        table.add_row(f"malformed lines in {Path(problem['file']).name}", f"{problem['malformed_lines']:,}")
    if summary["images"]:
        images = summary["images"]
        counts = f"{images['found']:,} / {images['downloaded']:,} / {images['from_cache']:,}"
        table.add_row("images found / downloaded / cached", counts)
        for reason, count in images["failures"].items():
            table.add_row(f"no image: {reason}", f"{count:,}")
    return table
