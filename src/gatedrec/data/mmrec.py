"""Loader for the MMRec layout: ``<name>.inter`` (TAB: userID itemID x_label) plus one ``.npy`` per modality.

A modality file holds one row per item, or, written ``FILE@IDS``, one row per item listed (in order) in the
``itemID`` column of the TSV file IDS; items not listed lack that modality. A missing modality is masked
(``missing="mask"``) or, for parity with MMRec's preprocessing, filled with the modality's mean vector
(``missing="mean"``). Every check raises a ``GatedRecError`` that names the file, the line or row, and what to fix.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from gatedrec.data.dataset import SPLITS, Dataset, Modality
from gatedrec.errors import GatedRecError
from gatedrec.io import read_yaml
from gatedrec.options import MISSING_MODES

log = logging.getLogger(__name__)

DEFAULT_MODALITY_FILES = {"visual": "image_feat.npy", "text": "text_feat.npy"}
DESCRIPTION_FILE = "dataset.yaml"
REQUIRED_COLUMNS = ("userID", "itemID", "x_label")
HEADER_LINES = 1
ITEM_LIST_SEPARATOR = "@"


def load_mmrec(
    folder: str | Path,
    inter: str | None = None,
    modalities: dict[str, str] | None = None,
    missing: str = "mask",
) -> Dataset:
    """Load a data folder; ``inter`` and ``modalities`` override what the folder's dataset.yaml says."""
    if missing not in MISSING_MODES:
        raise GatedRecError(f"--missing '{missing}' is unknown; choose one of {', '.join(MISSING_MODES)}")
    folder = Path(folder)
    if not folder.is_dir():
        raise GatedRecError(f"data folder '{folder}' does not exist; pass --data with a folder in MMRec layout")
    description = read_description(folder)
    inter_path = resolve_inter_file(folder, inter or description.get("inter"))
    users, items, labels = read_interactions(inter_path)
    modality_files = modalities or description.get("modalities") or default_modality_files(folder)
    n_items = int(items.max()) + 1
    features = {name: load_modality(folder, spec, n_items, inter_path) for name, spec in modality_files.items()}
    if missing == "mean":
        features = {name: mean_filled(modality) for name, modality in features.items()}
    return Dataset.from_labels(description.get("name", folder.name), users, items, labels, int(users.max()) + 1,
                               n_items, features)


def read_description(folder: Path) -> dict:
    path = folder / DESCRIPTION_FILE
    if not path.exists():
        return {}
    description = read_yaml(path)
    if not isinstance(description, dict):
        raise GatedRecError(f"{path}: expected a mapping with keys such as 'inter' and 'modalities'")
    return description


def resolve_path(folder: Path, file_name: str) -> Path:
    path = Path(file_name)
    return path if path.is_absolute() else folder / path


def resolve_inter_file(folder: Path, inter: str | None) -> Path:
    if inter:
        path = resolve_path(folder, inter)
        if not path.is_file():
            raise GatedRecError(f"interaction file '{path}' does not exist; check --inter")
        return path
    candidates = sorted(folder.glob("*.inter"))
    if not candidates:
        raise GatedRecError(
            f"no '*.inter' file in '{folder}'; add one (TAB: userID itemID x_label) or pass --inter FILE")
    if len(candidates) == 1:
        return candidates[0]
    usable = [path for path in candidates if _has_contiguous_ids(path)]
    if len(usable) != 1:
        names = ", ".join(path.name for path in candidates)
        raise GatedRecError(f"'{folder}' holds several interaction files ({names}); pick one with --inter FILE")
    log.info("%s: using %s, the only interaction file with 0-based contiguous ids", folder, usable[0].name)
    return usable[0]


def _has_contiguous_ids(path: Path) -> bool:
    """True for an MMRec interaction file: the required columns, and user and item ids 0..n-1 all used."""
    try:
        table = pd.read_csv(path, sep="\t", usecols=["userID", "itemID"])
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return False
    return all(
        pd.api.types.is_integer_dtype(table[column]) and table[column].min() == 0
        and table[column].max() + 1 == table[column].nunique()
        for column in ("userID", "itemID")
    )


def default_modality_files(folder: Path) -> dict[str, str]:
    return {name: file for name, file in DEFAULT_MODALITY_FILES.items() if (folder / file).exists()}


def read_interactions(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read and validate an interaction file; returns int64 users, items and x_labels, duplicates collapsed."""
    try:
        table = pd.read_csv(path, sep="\t", low_memory=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise GatedRecError(f"{path}: cannot be read as a TAB-separated table ({error})") from None
    except pd.errors.EmptyDataError:
        raise GatedRecError(f"{path}: the file is empty; it needs a header 'userID itemID x_label' and rows") from None
    missing = [column for column in REQUIRED_COLUMNS if column not in table.columns]
    if missing:
        raise GatedRecError(
            f"{path}: missing column(s) {', '.join(missing)}; the header must name "
            f"{', '.join(REQUIRED_COLUMNS)} (TAB-separated), found {', '.join(map(str, table.columns))}"
        )
    if len(table) == 0:
        raise GatedRecError(f"{path}: no interaction rows after the header")
    users, items, labels = (_integer_column(table, column, path) for column in REQUIRED_COLUMNS)
    _check_labels(labels, path)
    users, items, labels = _collapse_duplicates(users, items, labels, path)
    for code, split in enumerate(SPLITS):
        if not np.any(labels == code):
            raise GatedRecError(
                f"{path}: the {split} split (x_label {code}) has no interactions; every split needs some")
    return users, items, labels


def _line_number(row: int) -> int:
    return row + HEADER_LINES + 1


def _integer_column(table: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    values = pd.to_numeric(table[column], errors="coerce")
    numeric = values.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(numeric) | (numeric != np.round(numeric)) | (numeric < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise GatedRecError(
            f"{path}, line {_line_number(row)}: {column} '{table[column].iloc[row]}' is not a non-negative integer "
            f"({int(bad.sum())} such row(s)); ids must be 0-based integers"
        )
    return numeric.astype(np.int64)


def _check_labels(labels: np.ndarray, path: Path) -> None:
    bad = (labels < 0) | (labels > 2)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise GatedRecError(
            f"{path}, line {_line_number(row)}: x_label {labels[row]} is not 0 (train), 1 (valid) or 2 (test)"
        )


def _collapse_duplicates(users, items, labels, path: Path):
    keys = users * (int(items.max()) + 1) + items
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    repeated = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
    if len(repeated) == 0:
        return users, items, labels
    first_rows, later_rows = order[repeated], order[repeated + 1]
    conflicting = labels[first_rows] != labels[later_rows]
    if conflicting.any():
        first, later = first_rows[conflicting][0], later_rows[conflicting][0]
        raise GatedRecError(
            f"{path}, lines {_line_number(first)} and {_line_number(later)}: "
            f"user {users[first]} and item {items[first]} "
            f"appear in two splits (x_label {labels[first]} and {labels[later]}); a pair may be in one split only"
        )
    log.warning(
        "%s: %d duplicate row(s) collapsed (first at line %d)", path, len(repeated), _line_number(int(later_rows.min()))
    )
    keep = np.ones(len(users), dtype=bool)
    keep[later_rows] = False
    return users[keep], items[keep], labels[keep]


def load_modality(folder: Path, spec: str, n_items: int, inter_path: Path) -> Modality:
    """Load ``FILE`` (a row per item) or ``FILE@IDS`` (a row per listed item) as an (items x dim) float32
    matrix whose rows of unlisted items are zero and marked absent."""
    file_name, _, ids_name = str(spec).partition(ITEM_LIST_SEPARATOR)
    path = resolve_path(folder, file_name)
    features = _read_feature_file(path)
    if not ids_name:
        _check_row_count(path, features.shape[0], n_items, inter_path)
        return Modality(features=features, present=np.ones(n_items, dtype=bool))
    ids_path = resolve_path(folder, ids_name)
    listed = read_item_list(ids_path, n_items, inter_path)
    if len(listed) != features.shape[0]:
        raise GatedRecError(
            f"{path}: has {features.shape[0]} rows but {ids_path} lists {len(listed)} items; "
            "row r of the feature file must hold the features of the r-th listed item"
        )
    full = np.zeros((n_items, features.shape[1]), dtype=np.float32)
    full[listed] = features
    present = np.zeros(n_items, dtype=bool)
    present[listed] = True
    return Modality(features=full, present=present)


def _read_feature_file(path: Path) -> np.ndarray:
    """A 2-D numeric .npy file as float32 with every row finite."""
    if not path.is_file():
        raise GatedRecError(f"modality file '{path}' does not exist; check --modality NAME=FILE")
    try:
        features = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, EOFError, OSError) as error:
        raise GatedRecError(
            f"{path}: not a complete NumPy .npy array ({error}); the file is cut short or of another format: write "
            "it again with numpy.save (or re-run the gatedrec prepare or features step that made it)") from None
    if features.ndim != 2 or not np.issubdtype(features.dtype, np.number):
        raise GatedRecError(
            f"{path}: expected a 2-D numeric array (items x dim), found shape {features.shape}, {features.dtype}")
    features = np.ascontiguousarray(features, dtype=np.float32)
    finite_rows = np.isfinite(features).all(axis=1)
    if not finite_rows.all():
        bad_rows = np.flatnonzero(~finite_rows)
        raise GatedRecError(
            f"{path}: row {bad_rows[0]} holds NaN or infinite values ({len(bad_rows)} such rows); "
            "replace them, or leave those items out and list the others with FILE@IDS"
        )
    return features


def _check_row_count(path: Path, n_rows: int, n_items: int, inter_path: Path) -> None:
    if n_rows < n_items:
        items = pd.read_csv(inter_path, sep="\t", usecols=["itemID"])["itemID"].to_numpy()  # as in the file
        beyond = int(np.flatnonzero(items >= n_rows)[0])
        raise GatedRecError(
            f"{path}: has {n_rows} rows but {inter_path.name}, line {_line_number(beyond)}, names item "
            f"{items[beyond]} (ids go up to {n_items - 1}); "
            "row i must hold item i's features, so the file needs a row for every item "
            "(or give only some items as FILE@IDS, IDS a TSV whose itemID column lists the rows' items)"
        )
    if n_rows > n_items:
        raise GatedRecError(
            f"{path}: has {n_rows} rows but {inter_path.name} has {n_items} items (ids 0..{n_items - 1}); "
            "the feature row count must equal the item count"
        )


def read_item_list(path: Path, n_items: int, inter_path: Path) -> np.ndarray:
    """The ``itemID`` column of a TSV file: distinct item ids of the interaction file."""
    if not path.is_file():
        raise GatedRecError(f"item list '{path}' does not exist; FILE@IDS needs IDS to be a TSV with an itemID column")
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise GatedRecError(
            f"{path}: cannot be read as a TAB-separated table with an itemID column ({error})") from None
    if "itemID" not in table.columns:
        raise GatedRecError(f"{path}: no itemID column (found {', '.join(table.columns)}); add a header naming itemID")
    items = _integer_column(table, "itemID", path)
    out_of_range = np.flatnonzero(items >= n_items)
    if len(out_of_range):
        row = int(out_of_range[0])
        raise GatedRecError(
            f"{path}, line {_line_number(row)}: itemID {items[row]} is not an item of {inter_path.name} "
            f"(ids 0..{n_items - 1})"
        )
    seen_first = np.unique(items, return_index=True)[1]
    if len(seen_first) != len(items):
        row = int(np.setdiff1d(np.arange(len(items)), seen_first)[0])
        raise GatedRecError(
            f"{path}, line {_line_number(row)}: itemID {items[row]} is listed twice; list each item once")
    return items


def mean_filled(modality: Modality) -> Modality:
    """Absent rows replaced by the mean of the present ones (MMRec's preprocessing); every item present."""
    if modality.present.all():
        return modality
    features = modality.features.copy()
    features[~modality.present] = features[modality.present].mean(axis=0)
    return Modality(features=features, present=np.ones_like(modality.present))
