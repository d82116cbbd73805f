"""Reading raw Amazon review and metadata files line by line, and generic interaction / item tables in
chunks: nothing holds a whole raw file in memory.

Amazon formats (McAuley et al.): 2014 and 2018 reviews carry ``reviewerID``, ``asin``, ``overall``,
``unixReviewTime``; 2023 reviews ``user_id``, ``parent_asin``, ``rating``, ``timestamp`` (milliseconds).
Files are JSON lines, plain or gzipped; the 2014 files hold Python literals (``{'asin': ...}``), read too.
A line that cannot be parsed or lacks a needed field is counted and reported with its line number.
"""

from __future__ import annotations

import ast
import gzip
import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gatedrec.errors import GatedRecError
from gatedrec.prepare.images import is_url
from gatedrec.progress import progress_bar

log = logging.getLogger(__name__)

SHOWN_PROBLEMS = 5
TABLE_CHUNK_ROWS = 500_000
PROGRESS_LINES = 20_000


@dataclass
class LineProblems:
    """Malformed lines of one file: their count and the first few, each with its line number."""

    path: Path
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, line: int, reason: str) -> None:
        self.count += 1
        if len(self.examples) < SHOWN_PROBLEMS:
            self.examples.append(f"{self.path}, line {line}: {reason}")

    def report(self) -> None:
        if self.count:
            log.warning("%s: %d malformed line(s) skipped; %s", self.path, self.count, "; ".join(self.examples))

    def to_dict(self) -> dict:
        return {"file": str(self.path), "malformed_lines": self.count, "first": self.examples}


@contextmanager
def open_text(path: Path):
    """(text handle, raw handle) on a plain or gzipped file (told apart by its first bytes, not its name);
    the raw handle's position tells how much of the file has been read."""
    if not path.is_file():
        raise GatedRecError(f"input file '{path}' does not exist")
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        binary = gzip.GzipFile(fileobj=raw) if gzipped else raw
        yield io.TextIOWrapper(binary, encoding="utf-8", errors="replace"), raw


def parse_record(text: str) -> dict | None:
    """One JSON object, or one Python-literal dict (the 2014 files); None when it is neither."""
    try:
        record = json.loads(text)
    except ValueError:
        try:
            record = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
    return record if isinstance(record, dict) else None


def json_records(path: Path, problems: LineProblems, quiet: bool = True) -> Iterator[tuple[int, dict]]:
    """(line number, record) of every parseable line; blank lines are skipped, bad ones go to ``problems``."""
    with open_text(path) as (handle, raw), progress_bar(quiet) as progress:
        task = progress.add_task(f"reading {path.name}", total=path.stat().st_size, unit="B")
        for number, line in enumerate(handle, start=1):
            if number % PROGRESS_LINES == 0:
                progress.update(task, completed=raw.tell())
            text = line.strip()
            if not text:
                continue
            record = parse_record(text)
            if record is None:
                problems.add(number, "neither a JSON object nor a Python dict literal")
                continue
            yield number, record
        progress.update(task, completed=path.stat().st_size)


# ---- reviews -------------------------------------------------------------------------------------
REVIEW_FIELDS = {  # format: (user, item, rating, time, time unit in seconds)
    "2014/2018": ("reviewerID", "asin", "overall", "unixReviewTime", 1.0),
    "2023": ("user_id", "parent_asin", "rating", "timestamp", 1e-3),
}


@dataclass
class Interactions:
    """Raw interactions as interned ids: ``user_ids[users[k]]`` is the raw user id of interaction k."""

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    times: np.ndarray
    user_ids: list[str]
    item_ids: list[str]


class Interner:
    def __init__(self):
        self.index: dict[str, int] = {}
        self.values: list[str] = []

    def __call__(self, value: str) -> int:
        found = self.index.get(value)
        if found is None:
            found = self.index[value] = len(self.values)
            self.values.append(value)
        return found


class InteractionBuffer:
    """Collects interactions in chunks of typed arrays (a few bytes per interaction, not a Python object)."""

    def __init__(self):
        self.users, self.items = Interner(), Interner()
        self.parts: list[tuple[np.ndarray, ...]] = []
        self.pending: list[tuple[str, str, float, float]] = []

    def add(self, user: str, item: str, rating: float, time: float) -> None:
        self.pending.append((user, item, rating, time))
        if len(self.pending) >= TABLE_CHUNK_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.add_chunk(*zip(*self.pending))
            self.pending.clear()

    def add_chunk(self, users, items, ratings, times) -> None:
        self.parts.append((
            _interned(self.users, users), _interned(self.items, items),
            np.asarray(ratings, dtype=np.float32), np.asarray(times, dtype=np.float64),
        ))

    def result(self) -> Interactions:
        self.flush()
        if not self.parts:
            empty = np.zeros(0, dtype=np.int64)
            return Interactions(empty, empty, empty.astype(np.float32), empty.astype(np.float64), [], [])
        users, items, ratings, times = (np.concatenate(column) for column in zip(*self.parts))
        return Interactions(users, items, ratings, times, self.users.values, self.items.values)


def _interned(interner: Interner, values) -> np.ndarray:
    codes, uniques = pd.factorize(np.asarray(values, dtype=object))
    mapped = np.fromiter((interner(str(value)) for value in uniques), dtype=np.int64, count=len(uniques))
    return mapped[codes]


def detect_review_format(record: dict, path: Path, line: int) -> str:
    for name, (user, item, *_rest) in REVIEW_FIELDS.items():
        if user in record and item in record:
            return name
    if "user_id" in record and "asin" in record:
        return "2023"
    raise GatedRecError(
        f"{path}, line {line}: not an Amazon review record (needs reviewerID and asin for 2014/2018, or user_id "
        f"and parent_asin for 2023; found {', '.join(sorted(record)[:8])}); for other data use 'prepare generic'"
    )


def read_amazon_reviews(path: Path, quiet: bool = True) -> tuple[Interactions, LineProblems, str]:
    problems = LineProblems(path)
    buffer = InteractionBuffer()
    fmt = None
    for line, record in json_records(path, problems, quiet):
        if fmt is None:
            fmt = detect_review_format(record, path, line)
        user_key, item_key, rating_key, time_key, unit = REVIEW_FIELDS[fmt]
        if fmt == "2023" and item_key not in record:
            item_key = "asin"
        user, item = record.get(user_key), record.get(item_key)
        if not user or not item:
            missing = user_key if not user else item_key
            problems.add(line, f"no '{missing}' field")
            continue
        try:
            rating = float(record.get(rating_key, np.nan))
            time = float(record.get(time_key, np.nan)) * unit
        except (TypeError, ValueError):
            problems.add(line, f"'{rating_key}' or '{time_key}' is not a number")
            continue
        buffer.add(str(user), str(item), rating, time)
    if fmt is None:
        raise GatedRecError(f"{path}: no review record in the file")
    return buffer.result(), problems, fmt


# ---- metadata ------------------------------------------------------------------------------------
@dataclass
class ItemContent:
    text_fields: dict[str, str]
    images: list[str]  # URLs or local file paths, best first


def _flatten(value) -> list[str]:
    """Strings inside a string, list, or list of lists (2014 categories are lists of paths)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [part for item in value.values() for part in _flatten(item)]
    if isinstance(value, (list, tuple)):
        return [part for item in value for part in _flatten(item)]
    return [str(value)]


def _image_urls(record: dict) -> list[str]:
    """The best image URLs first: 2023 ``images`` (hi_res, large), 2018 ``imageURLHighRes``/``imageURL``,
    2014 ``imUrl``."""
    urls = []
    for image in record.get("images") or []:
        if isinstance(image, dict):
            urls += [image[key] for key in ("hi_res", "large", "thumb") if isinstance(image.get(key), str)]
        elif isinstance(image, str):
            urls.append(image)
    urls += _flatten(record.get("imageURLHighRes")) + _flatten(record.get("imageURL")) + _flatten(record.get("imUrl"))
    return [url for url in dict.fromkeys(urls) if is_url(url)]


def item_content(record: dict) -> ItemContent:
    categories = record.get("categories", record.get("category"))
    fields = {
        "title": " ".join(_flatten(record.get("title"))),
        "brand": " ".join(_flatten(record.get("brand") or record.get("store"))),
        "categories": " ".join(dict.fromkeys(_flatten(categories))),
        "features": " ".join(_flatten(record.get("features") or record.get("feature"))),
        "description": " ".join(_flatten(record.get("description"))),
    }
    return ItemContent({key: value.strip() for key, value in fields.items()}, _image_urls(record))


def read_amazon_meta(path: Path, wanted: set[str], quiet: bool = True) -> tuple[dict[str, ItemContent], LineProblems]:
    """Content of the ``wanted`` items (by asin or parent_asin); other records are skipped unparsed-deep."""
    problems = LineProblems(path)
    contents = {}
    for line, record in json_records(path, problems, quiet):
        item = record.get("parent_asin") or record.get("asin")
        if not item:
            problems.add(line, "no 'asin' or 'parent_asin' field")
            continue
        if item in wanted:
            contents[str(item)] = item_content(record)
    return contents, problems


# ---- generic tables ------------------------------------------------------------------------------
def table_chunks(path: Path, columns: list[str]) -> Iterator[pd.DataFrame]:
    """Chunks of a CSV/TSV (by extension; .gz allowed) or Parquet file, only ``columns``, as strings."""
    if not path.is_file():
        raise GatedRecError(f"input file '{path}' does not exist")
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if looks_like_amazon_reviews(path):
        raise GatedRecError(f"{path}: JSON lines of Amazon reviews, not a table; read it with 'gatedrec prepare "
                            "amazon --reviews FILE [--meta FILE]'")
    if ".parquet" in suffixes:
        yield from _parquet_chunks(path, columns)
        return
    separator = "\t" if ".tsv" in suffixes or ".tab" in suffixes else ","
    try:
        header = pd.read_csv(path, sep=separator, nrows=0).columns
        _check_columns(path, columns, header)
        for chunk in pd.read_csv(path, sep=separator, usecols=columns, dtype=str, keep_default_na=False,
                                 chunksize=TABLE_CHUNK_ROWS):
            yield chunk
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        kind = "TAB" if separator == "\t" else "comma"
        raise GatedRecError(f"{path}: cannot be read as a {kind}-separated table ({error})") from None


def looks_like_amazon_reviews(path: Path) -> bool:
    """A JSON-lines file (plain or gzipped) whose first record has a reviewer and a product field."""
    if not any(suffix in (".json", ".jsonl") for suffix in (part.lower() for part in path.suffixes)):
        return False
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            first = handle.readline()
    except (OSError, UnicodeDecodeError):
        return False
    return any(field in first for field in ('"reviewerID"', '"user_id"', "'reviewerID'")) and \
        any(field in first for field in ('"asin"', '"parent_asin"', "'asin'"))


def _parquet_chunks(path: Path, columns: list[str]) -> Iterator[pd.DataFrame]:
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        raise GatedRecError("reading Parquet needs pyarrow: pip install 'gatedrec[features]'") from None
    try:
        reader = parquet.ParquetFile(path)
    except Exception as error:  # pyarrow raises several unrelated types for a bad file
        raise GatedRecError(f"{path}: not a readable Parquet file ({error})") from None
    _check_columns(path, columns, reader.schema_arrow.names)
    for batch in reader.iter_batches(batch_size=TABLE_CHUNK_ROWS, columns=columns):
        yield batch.to_pandas().astype(str).replace({"None": "", "nan": ""})


def _check_columns(path: Path, wanted: list[str], found) -> None:
    missing = [column for column in wanted if column not in list(found)]
    if missing:
        raise GatedRecError(
            f"{path}: no column(s) {', '.join(missing)} (found {', '.join(map(str, found))}); name them with "
            "--user-col/--item-col/--rating-col/--time-col or --item-id-col/--text-cols/--image-col"
        )


def read_generic_interactions(path: Path, user: str, item: str, rating: str | None, time: str | None
                              ) -> tuple[Interactions, LineProblems]:
    problems = LineProblems(path)
    buffer = InteractionBuffer()
    columns = [user, item] + [column for column in (rating, time) if column]
    first_line = 2  # after the header, numbered from 1
    for chunk in table_chunks(path, columns):
        ratings, times = _numbers(chunk, rating), _numbers(chunk, time)
        empty = (chunk[user].to_numpy() == "") | (chunk[item].to_numpy() == "")
        not_numbers = (bool(rating) & ~np.isfinite(ratings)) | (bool(time) & ~np.isfinite(times))
        for row in np.flatnonzero(empty | not_numbers):
            reason = f"empty '{user}' or '{item}'" if empty[row] else f"'{rating}' or '{time}' is not a number"
            problems.add(first_line + int(row), reason)
        good = ~(empty | not_numbers)
        buffer.add_chunk(chunk[user].to_numpy()[good], chunk[item].to_numpy()[good], ratings[good], times[good])
        first_line += len(chunk)
    return buffer.result(), problems


def _numbers(chunk: pd.DataFrame, column: str | None) -> np.ndarray:
    if not column:
        return np.full(len(chunk), np.nan)
    return pd.to_numeric(chunk[column], errors="coerce").to_numpy(dtype=np.float64)


def read_generic_items(path: Path, wanted: set[str], item: str, text_columns: list[str], image: str | None
                       ) -> dict[str, ItemContent]:
    contents = {}
    columns = [item, *text_columns] + ([image] if image else [])
    for chunk in table_chunks(path, columns):
        for record in chunk.itertuples(index=False):
            values = dict(zip(columns, record))
            if values[item] in wanted:
                images = [_image_reference(values[image], path.parent)] if image and values[image] else []
                contents[values[item]] = ItemContent({c: str(values[c]).strip() for c in text_columns}, images)
    return contents


def _image_reference(value: str, base: Path) -> str:
    """A URL as it is; a file path relative to the item table's folder made absolute."""
    if is_url(value):
        return value
    path = Path(value)
    return str(path if path.is_absolute() else base / path)
