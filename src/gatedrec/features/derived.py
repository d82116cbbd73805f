"""``gatedrec features text``: a new data folder holding a source folder's interactions (linked), the
modalities it already has (linked) and one more modality encoded from a text column. The source folder is
never written to."""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gatedrec.data.dataset import Dataset
from gatedrec.data.mmrec import (
    ITEM_LIST_SEPARATOR,
    default_modality_files,
    load_mmrec,
    read_description,
    resolve_inter_file,
    resolve_path,
)
from gatedrec.data.writer import write_description, write_modality
from gatedrec.errors import GatedRecError
from gatedrec.features.encoders import TextEncoder, encode_cached

log = logging.getLogger(__name__)


@dataclass
class TextColumn:
    path: Path
    column: str
    id_column: str = "itemID"


def read_item_texts(source: TextColumn, n_items: int) -> tuple[np.ndarray, list[str]]:
    """Item ids and their non-empty texts from a TSV file; an item with an empty text has no text."""
    path = source.path
    if not path.is_file():
        raise GatedRecError(f"text file '{path}' does not exist; check --text-file (relative to --data, or absolute)")
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=3)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise GatedRecError(f"{path}: cannot be read as a TAB-separated table ({error})") from None
    for column in (source.id_column, source.column):
        if column not in table.columns:
            raise GatedRecError(
                f"{path}: no column '{column}' (found {', '.join(table.columns)}); pick one with --column")
    ids = pd.to_numeric(table[source.id_column], errors="coerce").to_numpy()
    bad = ~np.isfinite(ids) | (ids < 0) | (ids >= n_items) | (ids != np.round(ids))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise GatedRecError(
            f"{path}, line {row + 2}: {source.id_column} '{table[source.id_column].iloc[row]}' "
            "is not an item id of the "
            f"interaction file (0..{n_items - 1})"
        )
    ids = ids.astype(np.int64)
    _, first = np.unique(ids, return_index=True)
    if len(first) != len(ids):
        row = int(np.setdiff1d(np.arange(len(ids)), first)[0])
        raise GatedRecError(f"{path}, line {row + 2}: item {ids[row]} appears twice; give each item one text")
    texts = table[source.column].str.strip()
    has_text = (texts != "").to_numpy()
    if not has_text.all():
        log.warning("%s: %d item(s) with an empty '%s' have no text", path, int((~has_text).sum()), source.column)
    return ids[has_text], texts[has_text].tolist()


def derive_text_folder(data: Path, out: Path, text: TextColumn, encoder: TextEncoder, name: str = "text",
                       inter: str | None = None, modalities: dict[str, str] | None = None,
                       quiet: bool = False) -> tuple[Dataset, bool]:
    """Write the new folder; returns it loaded, and whether the features came from the cache."""
    data, out = Path(data), Path(out)
    if out.resolve() == data.resolve():
        raise GatedRecError(f"--out '{out}' is the source folder; pick a new folder (the source is never modified)")
    description = read_description(data)
    inter_path = resolve_inter_file(data, inter or description.get("inter"))
    carried = dict(modalities or description.get("modalities") or default_modality_files(data))
    carried.pop(name, None)
    source = load_mmrec(data, inter_path.name, carried)  # every carried file checked before anything is written
    ids, texts = read_item_texts(text, source.n_items)
    features, from_cache = encode_cached(encoder, texts, quiet)
    out.mkdir(parents=True, exist_ok=True)
    link(inter_path, out / inter_path.name)
    specs = {modality: link_modality(data, out, spec) for modality, spec in carried.items()}
    specs[name] = write_modality(out, name, features, ids, source.n_items)
    write_description(out, inter_path.name, specs, derived_from=str(data.resolve()),
                      text={"file": str(text.path.resolve()), "column": text.column, "encoder": encoder.identity})
    return load_mmrec(out), from_cache


def link_modality(data: Path, out: Path, spec: str) -> str:
    """Link a modality's files (FILE or FILE@IDS) into ``out``; returns the spec relative to ``out``."""
    names = []
    for part in str(spec).split(ITEM_LIST_SEPARATOR):
        path = resolve_path(data, part)
        link(path, out / path.name)
        names.append(path.name)
    return ITEM_LIST_SEPARATOR.join(names)


def link(source: Path, target: Path) -> None:
    """A symbolic link to ``source`` (a copy where links are not allowed), replacing an older ``target``."""
    temporary = target.with_name(f".{target.name}.link")
    temporary.unlink(missing_ok=True)
    try:
        os.symlink(source.resolve(), temporary)
    except OSError:
        shutil.copy2(source, temporary)
    os.replace(temporary, target)
