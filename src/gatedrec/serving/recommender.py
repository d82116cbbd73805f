"""A trained run as a recommender: top-K for known users, for a history (an unknown user), similar items,
explanations, and new items added live.

    from gatedrec import Recommender
    rec = Recommender.load("runs/sci-gated")
    rec.recommend("A1AXCV2WYDA4PD", k=10)          # [(item, score), ...], raw ids
    rec.recommend_for_history(["B00O47ILVA", "B006ATU73A"], k=10)
    rec.similar_items("B00O47ILVA", k=10)
    rec.explain("A1AXCV2WYDA4PD", "B006ATU73A")   # modality shares and the history items behind the score
    rec.add_items([NewItem("NEW-1", text="Nitrile gloves, 100 pack", title="Nitrile gloves")])

Rules (docs/serving.md): a user's score for an item is e_u · e_i with the final embeddings. An unknown user is
folded in from its items as a graph model builds a user from its neighbours, e_u = Σ_j m_j / sqrt(|H| (d_j + 1))
(the new user's own edge counted in each item's degree), or as the mean of the items' embeddings for other
models. A new item takes the mean final embedding of its content-nearest warm items (per modality, mixed as in
training), stretched to their mean norm times cold_scale: the rule by which the model ranks cold items.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from gatedrec.errors import GatedRecError
from gatedrec.models.fusion import FeatureTransform, ModalityFusion
from gatedrec.models.graph import nearest_columns, unit_rows
from gatedrec.models.item_graph import per_item_mix, rescaled_to_norm
from gatedrec.options import INDEXES
from gatedrec.data import Modality
from gatedrec.serving.artifact import (
    FOLDER, Manifest, load_array, load_document, load_item_info, read_manifest,
)
from gatedrec.serving.topk import HnswIndex, top_k, top_k_rows

log = logging.getLogger(__name__)

ADDED_ITEMS = "added_items.jsonl"  # in the run folder, beside serving/: live additions, one JSON line each
MAX_ITEM_ID_LENGTH = 200


class UnknownId(GatedRecError):
    """A user or item id the recommender does not know (HTTP 404)."""


class Conflict(GatedRecError):
    """An item id that exists already (HTTP 409)."""


@dataclass
class NewItem:
    """An item to add: its id, optionally a title and an image (URL or path, shown by the web page), and its
    content: feature vectors by modality and/or raw ``text`` and an ``image_file`` to encode."""

    item: str
    title: str | None = None
    image: str | None = None
    text: str | None = None
    image_file: str | None = None
    features: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class Explanation:
    """Why ``item`` scores ``score`` for a user: ``shares``, the item's share of each modality in its content
    (read off the gate; None for a model without one); ``because``, the history items with the largest terms
    of the score, (item, contribution), where the contributions of all history items and ``own`` (the user's
    own embedding's part, 0 for a history) sum to the score."""

    item: str
    score: float
    shares: dict[str, float] | None
    because: list[tuple[str, float]]
    own: float


class ItemTable:
    """The items' vectors, growing as items are added: rows are appended to arrays with spare room, and a
    reader takes one ``view`` (rows up to a count) that later additions never change."""

    def __init__(self, columns: dict[str, np.ndarray]):
        self.arrays = {name: np.array(values) for name, values in columns.items()}
        self.count = len(next(iter(columns.values())))
        self.view = self.rows(self.count)

    def rows(self, count: int) -> dict[str, np.ndarray]:
        return {name: array[:count] for name, array in self.arrays.items()}

    def append(self, columns: dict[str, np.ndarray]) -> None:
        added = len(next(iter(columns.values())))
        needed = self.count + added
        for name, values in columns.items():
            array = self.arrays[name]
            if needed > len(array):
                grown = np.empty((max(needed, 2 * len(array)), *array.shape[1:]), dtype=array.dtype)
                grown[: self.count] = array[: self.count]
                array = self.arrays[name] = grown
            array[self.count : needed] = values
        self.count = needed
        self.view = self.rows(needed)  # published last: a reader sees all the new rows or none


class Recommender:
    def __init__(self, run: Path, manifest: Manifest, index: str = "exact"):
        if index not in INDEXES:
            raise GatedRecError(f"index '{index}' is unknown; choose one of {', '.join(INDEXES)}")
        self.run, self.manifest = run, manifest
        self.users = load_array(run, "user_embeddings")
        self.user_own = load_array(run, "user_own")
        self.train_indptr, self.train_indices = load_array(run, "train_indptr"), load_array(run, "train_indices")
        self.user_ids = load_document(run, "user_ids.json")
        self.user_index = {user: index for index, user in enumerate(self.user_ids)}
        self.item_ids = list(load_document(run, "item_ids.json"))
        self.item_index = {item: index for index, item in enumerate(self.item_ids)}
        info = load_item_info(run)
        self.titles, self.images = info.titles, info.images
        self.added: set[int] = set()
        self.items = ItemTable(self.item_columns())
        self.warm = load_array(run, "warm")
        self.candidates = {name: self.neighbour_candidates(name) for name in manifest.modalities}
        self.trained_norms = self.base_norms()
        self.content_model = load_content_model(run) if manifest.has_content_model else None
        self.lock = threading.Lock()
        self.index = None
        self.replay_added_items()
        if index == "hnsw":
            self.index = HnswIndex(self.items.view["embeddings"])

    def neighbour_candidates(self, name: str) -> tuple[np.ndarray, torch.Tensor]:
        """The warm items that have modality ``name`` and their unit feature rows: where a new item's
        neighbours are looked for (taken once: an addition does not copy them)."""
        present = load_array(self.run, f"present_{name}")
        rows = np.flatnonzero(present & self.warm)
        return rows, torch.from_numpy(np.ascontiguousarray(load_array(self.run, f"neighbour_{name}")[rows]))

    def base_norms(self) -> np.ndarray:
        """(trained items, 1) the norms of the trained items' final embeddings: what a new item's neighbours'
        mean is stretched to (taken once: they never change)."""
        return np.linalg.norm(self.items.view["embeddings"][: len(self.warm)], axis=1, keepdims=True)

    @classmethod
    def load(cls, run: str | Path, index: str = "exact") -> "Recommender":
        """The recommender of a run folder written by ``gatedrec train`` (or ``gatedrec export``); the data
        folder is not needed. ``index``: exact top-K, or hnsw (approximate, for large catalogues)."""
        run = Path(run)
        return cls(run, read_manifest(run), index)

    def item_columns(self) -> dict[str, np.ndarray]:
        embeddings = load_array(self.run, "item_embeddings")
        names = list(self.manifest.modalities)
        shares = (load_array(self.run, "item_shares") if (self.run / FOLDER / "item_shares.npy").exists()
                  else np.full((len(embeddings), len(names)), np.nan, np.float32))
        return {"embeddings": embeddings, "unit": unit_rows(embeddings).numpy(),
                "messages": load_array(self.run, "item_messages"),
                "degrees": load_array(self.run, "item_degrees"), "shares": shares}

    # ---- lookups ---------------------------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        return self.items.count

    def user_row(self, user: str) -> int:
        row = self.user_index.get(str(user))
        if row is None:
            raise UnknownId(f"unknown user '{user}': not among the run's {len(self.user_ids):,} training users; "
                            "recommend from the user's items as a history instead")
        return row

    def item_row(self, item: str, count: int | None = None) -> int:
        row = self.item_index.get(str(item))
        if row is None or (count is not None and row >= count):
            raise UnknownId(f"unknown item '{item}': not in the catalogue; add it first (POST /v1/items or add_items)")
        return row

    def history(self, user: str) -> list[str]:
        """The user's training items (what recommendations exclude)."""
        return [self.item_ids[row] for row in self.seen(self.user_row(user))]

    def seen(self, user_row: int) -> np.ndarray:
        return self.train_indices[self.train_indptr[user_row] : self.train_indptr[user_row + 1]]

    def title_of(self, item: str) -> str | None:
        return self.titles.get(str(self.item_row(item)))

    def item_details(self, item: str) -> dict:
        row = self.item_row(item)
        return {"item": self.item_ids[row], "title": self.titles.get(str(row)), "image": self.images.get(str(row)),
                "shares": self.shares_of(row, self.items.view), "added": row in self.added}

    def shares_of(self, row: int, view: dict[str, np.ndarray]) -> dict[str, float] | None:
        shares = view["shares"][row]
        if np.isnan(shares).any():
            return None
        return {name: round(float(share), 6) for name, share in zip(self.manifest.modalities, shares)}

    # ---- recommending ------------------------------------------------------------------------------------
    def recommend(self, user: str, k: int = 10, exclude_seen: bool = True) -> list[tuple[str, float]]:
        """The user's top ``k`` items as (item, score), best first; its training items left out unless
        ``exclude_seen`` is False."""
        row = self.user_row(user)
        return self.ranked(self.users[row], k, self.seen(row) if exclude_seen else None)

    def recommend_batch(self, users: list[str], k: int = 10, exclude_seen: bool = True) -> list[list[tuple]]:
        rows = [self.user_row(user) for user in users]
        checked_k(k)
        view = self.items.view
        if self.index is not None:
            return [self.ranked(self.users[row], k, self.seen(row) if exclude_seen else None) for row in rows]
        excluded = [self.seen(row) if exclude_seen else None for row in rows]
        return [self.named(found) for found in top_k_rows(self.users[rows], view["embeddings"], k, excluded)]

    def recommend_for_history(self, items: list[str], k: int = 10,
                              exclude_seen: bool = True) -> list[tuple[str, float]]:
        """Top ``k`` for a user the model never saw, from the items it interacted with (fold-in)."""
        view = self.items.view
        rows = self.history_rows(items, len(view["embeddings"]))
        return self.ranked(self.folded_in(rows, view), k, rows if exclude_seen else None, view)

    def history_rows(self, items: list[str], count: int) -> np.ndarray:
        if not items:
            raise GatedRecError("the history is empty: give at least one item id")
        return np.unique([self.item_row(item, count) for item in items])

    def folded_in(self, rows: np.ndarray, view: dict[str, np.ndarray]) -> np.ndarray:
        return self.history_weights(rows, view) @ view["messages"][rows]

    def history_weights(self, rows: np.ndarray, view: dict[str, np.ndarray], degrees_offset: float = 1.0):
        """Each history item's weight in the folded-in user: 1/sqrt(|H| (d_j + offset)) (graph rule) or 1/|H|."""
        if self.manifest.fold_in == "graph":
            return 1.0 / np.sqrt(len(rows) * (view["degrees"][rows] + degrees_offset))
        return np.full(len(rows), 1.0 / len(rows), np.float32)

    def ranked(self, query: np.ndarray, k: int, excluded: np.ndarray | None,
               view: dict[str, np.ndarray] | None = None) -> list[tuple[str, float]]:
        checked_k(k)
        view = view or self.items.view
        if self.index is not None:
            return self.named(self.index.search(query, view["embeddings"], k, excluded))
        return self.named(top_k(view["embeddings"] @ query, k, excluded))

    def named(self, found: tuple[np.ndarray, np.ndarray]) -> list[tuple[str, float]]:
        rows, scores = found
        return [(self.item_ids[row], float(score)) for row, score in zip(rows, scores)]

    def similar_items(self, item: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` items whose final embeddings are closest in angle to the item's, (item, cosine)."""
        view = self.items.view
        row = self.item_row(item, len(view["unit"]))
        return self.named(top_k(view["unit"] @ view["unit"][row], checked_k(k), np.array([row])))

    # ---- explaining ----------------------------------------------------------------------------------------
    def explain(self, user: str, item: str, top: int = 5) -> Explanation:
        """Why the user gets the item: the item's modality shares and the history items behind the score."""
        return self.explain_many(user, [item], top)[0]

    def explain_many(self, user: str, items: list[str], top: int = 5) -> list[Explanation]:
        user_row = self.user_row(user)
        view = self.items.view
        item_rows = np.array([self.item_row(item, len(view["embeddings"])) for item in items], dtype=np.int64)
        history = self.seen(user_row)
        # the training graph's weights 1/sqrt(d_u d_j), d_u = |N(u)|: the terms of the model's own score
        weights = self.history_weights(history, view, degrees_offset=0.0) if len(history) else np.zeros(0)
        item_table = view["embeddings"][item_rows]
        own = item_table @ self.user_own[user_row]
        scores = item_table @ self.users[user_row]
        return self.explanations(item_rows, history, weights, own, scores, top, view)

    def explain_for_history(self, items: list[str], item: str, top: int = 5) -> Explanation:
        return self.explain_many_for_history(items, [item], top)[0]

    def explain_many_for_history(self, history_items: list[str], items: list[str], top: int = 5) -> list[Explanation]:
        view = self.items.view
        rows = self.history_rows(history_items, len(view["embeddings"]))
        item_rows = np.array([self.item_row(item, len(view["embeddings"])) for item in items], dtype=np.int64)
        scores = view["embeddings"][item_rows] @ self.folded_in(rows, view)
        own = np.zeros(len(item_rows), np.float32)
        return self.explanations(item_rows, rows, self.history_weights(rows, view), own, scores, top, view)

    def explanations(self, item_rows: np.ndarray, history: np.ndarray, weights: np.ndarray, own: np.ndarray,
                     scores: np.ndarray, top: int, view: dict[str, np.ndarray]) -> list[Explanation]:
        """One Explanation per item: its terms weight_j m_j · e_i over the history, the largest ``top`` named."""
        terms = weights[:, None] * (view["messages"][history] @ view["embeddings"][item_rows].T)  # history x items
        if self.manifest.fold_in == "mean":
            own = scores - terms.sum(axis=0)  # what the history's mean does not account for
        # history is ascending, so a stable sort breaks ties by the lower item index
        largest = np.argsort(-terms, axis=0, kind="stable")[:top]
        explained = []
        for column, item_row in enumerate(item_rows):
            because = [(self.item_ids[history[index]], float(terms[index, column])) for index in largest[:, column]]
            explained.append(Explanation(self.item_ids[item_row], float(scores[column]),
                                         self.shares_of(item_row, view), because, float(own[column])))
        return explained

    # ---- new items -------------------------------------------------------------------------------------------
    def add_items(self, items: list[NewItem]) -> list[str]:
        """Add items by content; each is rankable as soon as this returns, and kept in the run folder
        (``added_items.jsonl``) so that a restart serves it too. All or none are added."""
        with self.lock:
            self.check_new_ids(items)
            if not os.access(self.run, os.W_OK):
                raise GatedRecError(f"the run folder '{self.run}' is not writable, so new items could not be kept "
                                    "across restarts; serve a writable copy of it to add items")
            records = self.placed(items)
            with open(self.run / ADDED_ITEMS, "a", encoding="utf-8") as handle:
                for record in records:
                    handle.write(json.dumps(record) + "\n")
                handle.flush()
            self.publish(records)
        return [item.item for item in items]

    def check_new_ids(self, items: list[NewItem]) -> None:
        if not items:
            raise GatedRecError("no item to add")
        ids = [item.item for item in items]
        for item in ids:
            if not isinstance(item, str) or not item.strip() or len(item) > MAX_ITEM_ID_LENGTH or "\n" in item:
                raise GatedRecError(f"item id {item!r} must be a non-empty string of at most {MAX_ITEM_ID_LENGTH} "
                                    "characters on one line")
            if item in self.item_index:
                raise Conflict(f"item '{item}' exists already; pick a new id")
        if len(set(ids)) != len(ids):
            raise GatedRecError("the same item id is given twice in one request")

    def placed(self, items: list[NewItem]) -> list[dict]:
        """Each new item's record: its embedding and message from its content-nearest warm items, its shares."""
        features = self.raw_features(items)
        weights = self.neighbour_weights(features)
        view = self.items.view
        base = len(self.warm)
        embeddings, messages = view["embeddings"][:base], view["messages"][:base]
        mean = torch.from_numpy(weights @ embeddings)
        norm = torch.from_numpy(weights @ self.trained_norms)
        placed = rescaled_to_norm(mean, norm, self.manifest.cold_scale).numpy()
        shares = self.content_shares(features)
        return [
            {"item": item.item, "title": item.title, "image": item.image, "embedding": placed[index].tolist(),
             "message": (weights[index] @ messages).tolist(),
             "shares": None if shares is None else shares[index].tolist()}
            for index, item in enumerate(items)
        ]

    def raw_features(self, items: list[NewItem]) -> dict[str, np.ndarray]:
        """(items, d_m) raw features per modality, NaN rows where an item lacks the modality."""
        modalities = self.manifest.modalities
        if not modalities:
            raise GatedRecError("this run was trained without item features, so a new item cannot be placed by its "
                                "content; train on a data folder with features")
        tables = {name: np.full((len(items), info["dim"]), np.nan, np.float32) for name, info in modalities.items()}
        for index, item in enumerate(items):
            for name, vector in item.features.items():
                self.known_modality(name, item)
                tables[name][index] = self.checked_vector(name, vector, item)
        self.encode_content(items, "text", [item.text for item in items], tables)
        self.encode_content(items, "visual", [item.image_file for item in items], tables)
        for index, item in enumerate(items):
            if all(np.isnan(table[index]).all() for table in tables.values()):
                raise GatedRecError(f"item '{item.item}' has no content: give features for one of "
                                    f"{', '.join(modalities)}, or text or an image file where the run's encoders "
                                    "are known")
        return tables

    def known_modality(self, name: str, item: NewItem) -> None:
        if name not in self.manifest.modalities:
            raise GatedRecError(f"item '{item.item}': unknown modality '{name}'; this run's modalities are "
                                f"{', '.join(self.manifest.modalities)}")

    def checked_vector(self, name: str, vector, item: NewItem) -> np.ndarray:
        width = self.manifest.modalities[name]["dim"]
        try:
            array = np.asarray(vector, dtype=np.float32)
        except (TypeError, ValueError):
            raise GatedRecError(f"item '{item.item}': features '{name}' must be a list of {width} numbers") from None
        if array.shape != (width,):
            raise GatedRecError(f"item '{item.item}': features '{name}' have {array.size} values; "
                                f"this run's {name} features have {width}")
        if not np.isfinite(array).all() or not np.abs(array).sum() > 0:
            raise GatedRecError(f"item '{item.item}': features '{name}' must be finite and not all zero")
        return array

    def encode_content(self, items: list[NewItem], name: str, inputs: list, tables: dict) -> None:
        """Encode raw text or image files into the modality ``name`` with the encoder that made its features."""
        wanted = [index for index, value in enumerate(inputs) if value]
        if not wanted:
            return
        encoder_name = self.manifest.modalities.get(name, {}).get("encoder")
        if encoder_name is None:
            what = "text" if name == "text" else "an image file"
            raise GatedRecError(
                f"item '{items[wanted[0]].item}': this run does not record which encoder made its {name} features, "
                f"so {what} cannot be encoded the same way; send the '{name}' feature vector instead, or re-export "
                f"the run with --{name if name == 'text' else 'image'}-encoder NAME")
        encoded = encode_inputs(name, encoder_name, [inputs[index] for index in wanted])
        width = self.manifest.modalities[name]["dim"]
        if encoded.shape[1] != width:
            raise GatedRecError(f"the {name} encoder {encoder_name} gives {encoded.shape[1]}-d features, the run's "
                                f"{name} features are {width}-d; send feature vectors instead")
        tables[name][wanted] = encoded

    def neighbour_weights(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """(new items, warm-and-cold base items) weights: per modality the item has, its cold_neighbours most
        cosine-similar warm items at 1/k each, the modalities mixed by their weights renormalised over the
        modalities the item has."""
        n_new, base = len(next(iter(features.values()))), len(self.warm)
        weights = np.zeros((n_new, base), np.float32)
        has = np.stack([~np.isnan(table).any(axis=1) for table in features.values()], axis=1)
        mix_rows = per_item_mix(has, self.manifest.neighbour_weights)
        for index, (name, table) in enumerate(features.items()):
            candidates, candidate_units = self.candidates[name]
            queries = np.flatnonzero(has[:, index])
            k = min(self.manifest.cold_neighbours, len(candidates))
            if k == 0 or len(queries) == 0:
                continue
            nearest = nearest_columns(unit_rows(table, queries), candidate_units, k).numpy()
            rows = np.repeat(queries, k)
            np.add.at(weights, (rows, candidates[nearest].ravel()), np.repeat(mix_rows[queries, index], k) / k)
        return weights

    def content_shares(self, features: dict[str, np.ndarray]) -> np.ndarray | None:
        if self.content_model is None:
            return None
        _, shares = self.content_model.content_of(list(features.values()))
        return shares

    def publish(self, records: list[dict]) -> None:
        """Make recorded items rankable: their ids and details first, then their rows (a reader ranks only the
        rows of the view it took), then the id lookup (an id is found only once its row is there)."""
        width = len(self.manifest.modalities)
        embeddings = np.array([record["embedding"] for record in records], np.float32)
        for record in records:
            row = len(self.item_ids)
            self.item_ids.append(record["item"])
            if record.get("title"):
                self.titles[str(row)] = record["title"]
            if record.get("image"):
                self.images[str(row)] = record["image"]
            self.added.add(row)
        self.items.append({
            "embeddings": embeddings, "unit": unit_rows(embeddings).numpy(),
            "messages": np.array([record["message"] for record in records], np.float32),
            "degrees": np.zeros(len(records), np.float32),
            "shares": np.array([record["shares"] if record["shares"] is not None else [np.nan] * width
                                for record in records], np.float32).reshape(len(records), width),
        })
        if self.index is not None:
            self.index.add(embeddings)
        for row, record in enumerate(records, start=self.items.count - len(records)):
            self.item_index[record["item"]] = row

    def replay_added_items(self) -> None:
        path = self.run / ADDED_ITEMS
        if not path.exists():
            return
        records = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            try:
                record = json.loads(line)
                if record["item"] in self.item_index or len(record["embedding"]) != self.manifest.dim:
                    raise ValueError("a duplicate id or an embedding of the wrong width")
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
                log.warning("%s line %d: not an added item (%s); skipped", path, number, error)
                continue
            records.append(record)
            self.item_index[record["item"]] = -1  # marks the id as taken while the rest is read
        for record in records:
            del self.item_index[record["item"]]
        if records:
            self.publish(records)

    def describe(self) -> dict:
        info = asdict(self.manifest)
        info.pop("files")
        return {**info, "items_added": len(self.added), "n_items": self.n_items,
                "index": "hnsw" if self.index is not None else "exact"}


def checked_k(k: int) -> int:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise GatedRecError(f"k = {k!r}: ask for at least one item (an integer of 1 or more)")
    return int(k)


def encode_inputs(name: str, encoder_name: str, inputs: list) -> np.ndarray:
    """Raw text (modality text) or image files (visual) encoded by the named encoder (the features extra)."""
    try:
        from gatedrec.features.encoders import image_encoder, text_encoder
        if name == "text":
            return text_encoder(encoder_name).encode([str(text) for text in inputs], quiet=True)
        return image_encoder(encoder_name).encode([Path(path) for path in inputs], quiet=True)
    except ImportError as error:
        raise GatedRecError(f"encoding {name} needs the features extra: pip install 'gatedrec[features]' "
                            f"({error})") from None


def load_content_model(run: Path) -> ModalityFusion:
    """The fusion rebuilt from content.pt: parameters and feature transforms, for new items' shares."""
    state = torch.load(run / FOLDER / "content.pt", map_location="cpu", weights_only=True)
    has_absent = "absent" in state["parameters"]
    # the fusion is built around placeholder rows (two items; the second lacks every modality when the trained
    # fusion had items without one, so that it has the same parameters); only parameters are loaded into it
    placeholders = {
        name: Modality(np.ones((2, width), np.float32), np.array([True, not has_absent]))
        for name, width in zip(state["names"], state["widths"])
    }
    fusion = ModalityFusion(placeholders, state["dim"], state["fusion"], state["gate"], "none")
    fusion.load_state_dict(state["parameters"], strict=False)
    fusion.transforms = [
        FeatureTransform(
            record["norm"], *(record[key].numpy() if key in record else None for key in ("mean", "basis")),
            (record["scale_mean"].numpy(), record["scale_std"].numpy()) if "scale_mean" in record else None,
        )
        for record in state["transforms"]
    ]
    return fusion.eval()
