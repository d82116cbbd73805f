"""``gatedrec prepare``: raw interactions and item content in, a trainable data folder out.

The folder: ``<name>.inter`` (MMRec layout), ``u_id_mapping.tsv`` / ``i_id_mapping.tsv`` (raw ids),
``item_text.tsv``, ``item_images.tsv`` (each item's first image URL or path), one feature file per modality
with an item list when only some items have it, and ``dataset.yaml`` describing all of it (sources, options,
counts, malformed lines, image failures). It is built in a temporary folder and moved into place whole, so a
failed run leaves an older folder intact.
"""

from __future__ import annotations

import logging

import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gatedrec.cache import cache_dir
from gatedrec.data.dataset import SPLITS
from gatedrec.data.mmrec import DESCRIPTION_FILE, read_description
from gatedrec.data.splitting import (
    cold_item_labels, leave_one_out_split, mmrec_random_split, parse_split, temporal_split,
)
from gatedrec.data.writer import write_description, write_interactions, write_modality
from gatedrec.errors import GatedRecError
from gatedrec.features.encoders import encode_cached, image_encoder, text_encoder
from gatedrec.io import replace_folder, write_atomic
from gatedrec.options import DEFAULT_TEXT_FIELDS, SPLIT_NAMES
from gatedrec.prepare.filtering import KeptInteractions, keep_interactions
from gatedrec.prepare.images import ImageFetch, ImageReport, download_images, images_in_folder, is_url
from gatedrec.prepare.raw import (
    Interactions, ItemContent, LineProblems, read_amazon_meta, read_amazon_reviews, read_generic_interactions,
    read_generic_items,
)

log = logging.getLogger(__name__)

AMAZON_TEXT_FIELDS = ("title", "brand", "categories", "features", "description")
MAX_FIELD_CHARS = 2000
# below these, prepare warns that the filters left too little
KEPT_SHARE_WARNING = 0.1
SMALL_USERS = 100
SMALL_ITEMS = 50


@dataclass
class PrepareOptions:
    min_user: int = 5
    min_item: int = 5
    min_rating: float | None = None
    split: str = "random-8-1-1"
    seed: int = 0
    text_fields: tuple[str, ...] = DEFAULT_TEXT_FIELDS
    text_encoder: str | None = "all-MiniLM-L6-v2"
    image_encoder: str | None = "efficientnet-lite0"
    images_dir: Path | None = None
    download_images: bool = False
    image_cache: Path | None = None
    fetch: ImageFetch = field(default_factory=ImageFetch)
    device: str = "cpu"
    quiet: bool = False


@dataclass
class RawSource:
    """Where the raw data come from: a reader of the interactions and one of the wanted items' content."""

    interactions: Callable[[], tuple[Interactions, list[LineProblems]]]
    contents: Callable[[set[str]], tuple[dict[str, ItemContent], list[LineProblems]]]
    description: dict
    text_fields: tuple[str, ...]  # what --text-fields may name


def amazon_source(reviews: Path, meta: Path | None, quiet: bool = True) -> RawSource:
    def interactions():
        raw, problems, fmt = read_amazon_reviews(reviews, quiet)
        description["format"] = fmt
        return raw, [problems]

    def contents(wanted: set[str]):
        if meta is None:
            return {}, []
        found, problems = read_amazon_meta(meta, wanted, quiet)
        return found, [problems]

    description = {"kind": "amazon", "reviews": str(reviews), "meta": str(meta) if meta else None}
    return RawSource(interactions, contents, description, AMAZON_TEXT_FIELDS)


@dataclass
class GenericColumns:
    user: str = "user"
    item: str = "item"
    rating: str | None = None
    time: str | None = None
    item_id: str = "item"
    texts: tuple[str, ...] = ("title", "description")
    image: str | None = None


def generic_source(interactions_file: Path, items_file: Path | None, columns: GenericColumns) -> RawSource:
    def interactions():
        raw, problems = read_generic_interactions(interactions_file, columns.user, columns.item, columns.rating,
                                                  columns.time)
        return raw, [problems]

    def contents(wanted: set[str]):
        if items_file is None:
            return {}, []
        return read_generic_items(items_file, wanted, columns.item_id, list(columns.texts), columns.image), []

    description = {"kind": "generic", "interactions": str(interactions_file),
                   "items": str(items_file) if items_file else None, "columns": asdict(columns)}
    return RawSource(interactions, contents, description, columns.texts)


def split_labels(kept: KeptInteractions, spec: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    has_times = not np.isnan(kept.times).any()
    if spec == "random-8-1-1":
        return mmrec_random_split(kept.users, rng)
    if spec == "temporal-8-1-1" and not has_times:
        raise GatedRecError("--split temporal-8-1-1 needs a timestamp on every interaction; use random-8-1-1")
    if spec == "temporal-8-1-1":
        return temporal_split(kept.users, kept.times, rng)
    if spec == "leave-one-out":
        return leave_one_out_split(kept.users, kept.times if has_times else None, rng)
    if spec.startswith("cold-items"):
        share, split_seed = parse_split(spec)
        labels = mmrec_random_split(kept.users, rng)
        return cold_item_labels(kept.items, labels, len(kept.item_ids), share, np.random.default_rng(split_seed))
    raise GatedRecError(f"--split '{spec}' is unknown; choose one of {', '.join(SPLIT_NAMES)}")


def item_text(content: ItemContent | None, fields: tuple[str, ...]) -> str:
    """The chosen fields in order, each cut to MAX_FIELD_CHARS, joined as sentences; '' when none is set."""
    if content is None:
        return ""
    parts = [content.text_fields.get(name, "")[:MAX_FIELD_CHARS].strip().rstrip(".") for name in fields]
    return ". ".join(part for part in parts if part) + ("." if any(parts) else "")


def prepare(source: RawSource, out: Path, options: PrepareOptions, on_step: Callable[[str], None]) -> dict:
    """Build the data folder; returns the summary written into its dataset.yaml."""
    out = Path(out)
    _check_out(out)
    unknown = [name for name in options.text_fields if name not in source.text_fields]
    if unknown:
        raise GatedRecError(f"--text-fields names {', '.join(unknown)}, which this input does not have; "
                            f"choose among {', '.join(source.text_fields)}")
    on_step("reading interactions")
    raw, problems = source.interactions()
    on_step(f"filtering {len(raw.users):,} interactions")
    kept = keep_interactions(raw, options.min_user, options.min_item, options.min_rating)
    warn_if_little_is_kept(raw, kept, options)
    labels = split_labels(kept, options.split, options.seed)
    for code, split in enumerate(SPLITS):
        if not (labels == code).any():
            raise GatedRecError(
                f"the {split} split is empty after --split {options.split}; the data are too small for it")
    on_step(f"reading the content of {len(kept.item_ids):,} items")
    contents, content_problems = source.contents(set(kept.item_ids.tolist()))
    problems += content_problems
    for problem in problems:
        problem.report()
    texts = [item_text(contents.get(raw_id), options.text_fields) for raw_id in kept.item_ids]
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as building:
        folder = Path(building) / out.name
        folder.mkdir()
        modalities, coverage, image_report = write_features(folder, kept, contents, texts, options, on_step)
        summary = write_folder(folder, kept, labels, texts, modalities, coverage, problems, image_report, source,
                               options)
        write_item_images(folder, kept.item_ids, contents)
        replace_folder(folder, out)
    return summary


def warn_if_little_is_kept(raw, kept: KeptInteractions, options: PrepareOptions) -> None:
    """A warning with the counts before and after, and what to relax, when the filters kept less than
    KEPT_SHARE_WARNING of the interactions or fewer than SMALL_USERS users or SMALL_ITEMS items."""
    before = (len(np.unique(raw.users)), len(np.unique(raw.items)), len(raw.users))
    after = (len(kept.user_ids), len(kept.item_ids), len(kept.users))
    if after[2] >= KEPT_SHARE_WARNING * before[2] and after[0] >= SMALL_USERS and after[1] >= SMALL_ITEMS:
        return
    relax = f"--min-user {options.min_user} / --min-item {options.min_item}"
    relax += f" / --min-rating {options.min_rating:g}" if options.min_rating is not None else ""
    log.warning("the filters kept %s users, %s items and %s interactions of %s, %s and %s: too little to train "
                "and evaluate on; lower %s to keep more", *(f"{count:,}" for count in after + before), relax)


def write_features(folder: Path, kept: KeptInteractions, contents: dict[str, ItemContent], texts: list[str],
                   options: PrepareOptions, on_step) -> tuple[dict[str, str], dict[str, float], ImageReport | None]:
    modalities, coverage, image_report = {}, {}, None
    with_text = np.array([bool(text) for text in texts])
    if options.text_encoder and with_text.any():
        on_step(f"encoding the text of {int(with_text.sum()):,} items")
        encoder = text_encoder(options.text_encoder, options.device)
        features, _ = encode_cached(encoder, [text for text in texts if text], options.quiet)
        modalities["text"] = write_modality(folder, "text", features, np.flatnonzero(with_text), len(texts),
                                            kept.item_ids)
    if options.text_encoder:
        coverage["text"] = float(with_text.mean())
    if options.image_encoder:
        on_step("collecting images")
        paths, image_report = collect_images(kept, contents, options)
        if paths:
            on_step(f"encoding {len(paths):,} images")
            items = np.array(sorted(paths))
            encoder = image_encoder(options.image_encoder, options.device)
            features, _ = encode_cached(encoder, [paths[item] for item in items], options.quiet)
            decoded = np.isfinite(features).all(axis=1)
            if not decoded.all():
                image_report.failures["not a decodable image"] += int((~decoded).sum())
            if decoded.any():
                modalities["visual"] = write_modality(folder, "visual", features[decoded], items[decoded],
                                                      len(kept.item_ids), kept.item_ids)
            coverage["visual"] = float(decoded.sum() / len(kept.item_ids))
    return modalities, coverage, image_report


def collect_images(kept: KeptInteractions, contents: dict[str, ItemContent], options: PrepareOptions
                   ) -> tuple[dict[int, Path], ImageReport]:
    """Item index -> image file: from --images-dir, else the content's local files and (with
    --download-images) its URLs."""
    raw_ids = kept.item_ids.tolist()
    if options.images_dir:
        if not Path(options.images_dir).is_dir():
            raise GatedRecError(f"--images-dir '{options.images_dir}' is not a folder")
        return images_in_folder(Path(options.images_dir), raw_ids)
    local, urls = {}, {}
    for item, raw in enumerate(raw_ids):
        references = contents[raw].images if raw in contents else []
        files = [Path(ref) for ref in references if not is_url(ref) and Path(ref).is_file()]
        item_urls = [ref for ref in references if is_url(ref)]
        if files:
            local[item] = files[0]
        elif item_urls:
            urls[item] = item_urls
    if not options.download_images:
        report = ImageReport(found=len(local), without_url=len(raw_ids) - len(local) - len(urls))
        if urls:
            report.failures["URL not fetched (no --download-images)"] = len(urls)
        return local, report
    cache = Path(options.image_cache) if options.image_cache else cache_dir() / "images"
    downloaded, report = download_images(urls, len(raw_ids) - len(local), cache, options.fetch, options.quiet)
    report.found += len(local)
    return local | downloaded, report


def write_folder(folder: Path, kept: KeptInteractions, labels: np.ndarray, texts: list[str], modalities: dict,
                 coverage: dict, problems: list[LineProblems], image_report: ImageReport | None, source: RawSource,
                 options: PrepareOptions) -> dict:
    inter = write_interactions(folder, folder.name, kept.users, kept.items, labels)
    _write_table(folder / "u_id_mapping.tsv", {"userID": np.arange(len(kept.user_ids)), "raw_id": kept.user_ids})
    _write_table(folder / "i_id_mapping.tsv", {"itemID": np.arange(len(kept.item_ids)), "raw_id": kept.item_ids})
    _write_table(folder / "item_text.tsv", {"itemID": np.arange(len(kept.item_ids)), "raw_id": kept.item_ids,
                                            "text": [text.replace("\t", " ").replace("\n", " ") for text in texts]})
    n_users, n_items = len(kept.user_ids), len(kept.item_ids)
    summary = {
        "users": n_users, "items": n_items, "interactions": int(len(labels)),
        **{split: int((labels == code).sum()) for code, split in enumerate(SPLITS)},
        "sparsity": 1.0 - len(labels) / (n_users * n_items),
        "coverage": coverage,
        "malformed": [problem.to_dict() for problem in problems],
        "images": image_report.to_dict() if image_report else None,
    }
    settings = {key: (str(value) if isinstance(value, Path) else value) for key, value in asdict(options).items()
                if key not in ("quiet", "device")}
    write_description(folder, inter, modalities, prepared={"source": source.description, "options": settings,
                                                           "summary": summary})
    return summary


def write_item_images(folder: Path, item_ids: np.ndarray, contents: dict[str, ItemContent]) -> None:
    """``item_images.tsv``: each item's first image reference (URL or path) as the raw data give it, for
    displays such as the serving page; items without one are left out."""
    rows = [(index, raw_id, contents[raw_id].images[0]) for index, raw_id in enumerate(item_ids.tolist())
            if raw_id in contents and contents[raw_id].images]
    _write_table(folder / "item_images.tsv", {"itemID": [row[0] for row in rows], "raw_id": [row[1] for row in rows],
                                              "image": [row[2] for row in rows]})


def _write_table(path: Path, columns: dict) -> None:
    table = pd.DataFrame(columns)
    write_atomic(path, lambda tmp: table.to_csv(tmp, sep="\t", index=False))


def _check_out(out: Path) -> None:
    """Refuse to replace a folder that is not an earlier prepare's output."""
    if out.exists() and any(out.iterdir()) and "prepared" not in read_description(out):
        raise GatedRecError(
            f"--out '{out}' exists and is not a folder written by 'gatedrec prepare' (its {DESCRIPTION_FILE} has no "
            "'prepared' entry); pick a new or empty folder"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
