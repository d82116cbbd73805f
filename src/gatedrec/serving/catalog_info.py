"""What a data folder says about its users and items beyond the interactions: raw ids, titles, images.

- Raw ids: ``u_id_mapping`` / ``i_id_mapping`` (``.tsv`` or ``.csv``, TAB-separated as MMRec writes them) with a
  ``userID`` / ``itemID`` column and one other column, the raw id. Without one, ids are the integers as text.
- Titles: ``item_text.tsv`` (``itemID`` and ``title`` or ``text``; a text's first sentence serves as its title).
- Images: ``item_images.tsv`` (``itemID``, ``image``: a URL or a file path) or MMRec's ``*_url.csv``
  (``itemID``, ``imUrl``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from gatedrec.data.mmrec import read_description

log = logging.getLogger(__name__)

TITLE_LENGTH = 120
ID_COLUMNS = {"user": "userID", "item": "itemID"}


@dataclass
class ItemInfo:
    titles: dict[str, str] = field(default_factory=dict)  # item index (as text) -> title
    images: dict[str, str] = field(default_factory=dict)  # item index (as text) -> URL or path


def read_raw_ids(folder: Path | None, kind: str, count: int) -> list[str]:
    """The raw id of each of ``count`` users or items, by index."""
    ids = [str(index) for index in range(count)]
    table = _mapping_table(folder, kind) if folder is not None else None
    if table is None:
        return ids
    id_column = ID_COLUMNS[kind]
    raw_column = next(column for column in table.columns if column != id_column)
    for index, raw in zip(table[id_column], table[raw_column].astype(str)):
        if 0 <= index < count:
            ids[index] = raw
    if len(set(ids)) != len(ids):
        log.warning("%s id mapping in %s maps several ids to one raw id; serving the integer ids", kind, folder)
        return [str(index) for index in range(count)]
    return ids


def _mapping_table(folder: Path, kind: str) -> pd.DataFrame | None:
    id_column = ID_COLUMNS[kind]
    for suffix in ("tsv", "csv"):
        path = folder / f"{kind[0]}_id_mapping.{suffix}"
        if not path.exists():
            continue
        table = _read_table(path)
        if table is not None and id_column in table.columns and len(table.columns) == 2 \
                and pd.api.types.is_integer_dtype(table[id_column]):
            return table
        log.warning("%s: expected two TAB-separated columns, one of them %s; serving the integer ids", path,
                    id_column)
    return None


def _read_table(path: Path, sep: str = "\t") -> pd.DataFrame | None:
    try:
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False).pipe(_integer_ids)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as error:
        log.warning("%s: cannot be read (%s); ignored", path, error)
        return None


def _integer_ids(table: pd.DataFrame) -> pd.DataFrame:
    for column in ID_COLUMNS.values():
        if column in table.columns:
            table[column] = pd.to_numeric(table[column], errors="coerce").fillna(-1).astype("int64")
    return table


def read_item_info(folder: Path | None, n_items: int) -> ItemInfo:
    if folder is None:
        return ItemInfo()
    return ItemInfo(titles=_titles(folder, n_items), images=_images(folder, n_items))


def _titles(folder: Path, n_items: int) -> dict[str, str]:
    path = folder / "item_text.tsv"
    table = _read_table(path) if path.exists() else None
    if table is None or "itemID" not in table.columns:
        return {}
    column = "title" if "title" in table.columns else "text" if "text" in table.columns else None
    if column is None:
        return {}
    return {str(index): title_of(text) for index, text in zip(table["itemID"], table[column])
            if 0 <= index < n_items and text.strip()}


def title_of(text: str) -> str:
    """A text's first sentence, cut to TITLE_LENGTH characters."""
    first = text.strip().split(". ", 1)[0].strip()
    return first if len(first) <= TITLE_LENGTH else first[: TITLE_LENGTH - 1].rstrip() + "…"


def _images(folder: Path, n_items: int) -> dict[str, str]:
    candidates = [(folder / "item_images.tsv", "\t", "image")]
    candidates += [(path, ",", "imUrl") for path in sorted(folder.glob("*_url.csv"))]
    for path, sep, column in candidates:
        table = _read_table(path, sep) if path.exists() else None
        if table is not None and {"itemID", column} <= set(table.columns):
            return {str(index): located(folder, image) for index, image in zip(table["itemID"], table[column])
                    if 0 <= index < n_items and image}
    return {}


def located(folder: Path, image: str) -> str:
    """A URL as it is; a file path made absolute against the data folder."""
    if image.startswith(("http://", "https://")) or Path(image).is_absolute():
        return image
    return str((folder / image).resolve())


def data_encoders(folder: str | Path | None) -> dict[str, str | None]:
    """The encoders that made a prepared folder's text and visual features (from its dataset.yaml), so that a
    served run can encode a new item's text or image the same way; empty where the folder does not say."""
    if not folder or not Path(folder).is_dir():
        return {}
    options = (read_description(Path(folder)).get("prepared") or {}).get("options") or {}
    encoders = {"text": options.get("text_encoder"), "visual": options.get("image_encoder")}
    return {name: encoder for name, encoder in encoders.items() if encoder}
