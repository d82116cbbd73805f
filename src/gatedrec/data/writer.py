"""Writing a data folder that ``load_mmrec`` reads: the interaction file, one feature file per modality
(with an item list when only some items have it), and ``dataset.yaml`` naming them. Every file is written
atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gatedrec.data.mmrec import DESCRIPTION_FILE, ITEM_LIST_SEPARATOR
from gatedrec.io import write_atomic, write_npy, write_yaml

FILE_STEM_FOR_MODALITY = {"visual": "image", "text": "text"}


def modality_file_name(name: str) -> str:
    return f"{FILE_STEM_FOR_MODALITY.get(name, name)}_feat.npy"


def item_list_name(name: str) -> str:
    return f"{FILE_STEM_FOR_MODALITY.get(name, name)}_items.tsv"


def write_interactions(folder: Path, name: str, users, items, labels) -> str:
    """``<name>.inter`` (TAB: userID itemID x_label), sorted by user then item; returns the file name."""
    table = pd.DataFrame({"userID": users, "itemID": items, "x_label": labels}).sort_values(
        ["userID", "itemID"], kind="stable"
    )
    file_name = f"{name}.inter"
    write_atomic(folder / file_name, lambda tmp: table.to_csv(tmp, sep="\t", index=False))
    return file_name


def write_modality(folder: Path, name: str, rows: np.ndarray, items: np.ndarray, n_items: int,
                   source_ids: np.ndarray | None = None) -> str:
    """Write the feature ``rows`` of ``items``; returns the spec for dataset.yaml (``FILE`` when every item
    has the modality, else ``FILE@IDS`` with IDS listing the rows' items)."""
    order = np.argsort(items, kind="stable")
    rows, items = np.ascontiguousarray(rows[order], dtype=np.float32), np.asarray(items)[order]
    file_name = modality_file_name(name)
    write_npy(folder / file_name, rows)
    if len(items) == n_items:
        return file_name
    table = pd.DataFrame({"itemID": items})
    if source_ids is not None:
        table["source_id"] = np.asarray(source_ids)[items]
    write_atomic(folder / item_list_name(name), lambda tmp: table.to_csv(tmp, sep="\t", index=False))
    return f"{file_name}{ITEM_LIST_SEPARATOR}{item_list_name(name)}"


def write_description(folder: Path, inter: str, modalities: dict[str, str], **extra) -> None:
    write_yaml(folder / DESCRIPTION_FILE, {"name": folder.name, "inter": inter, "modalities": modalities, **extra})
