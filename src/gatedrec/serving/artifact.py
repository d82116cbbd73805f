"""The serving artefact: everything a trained run needs to recommend without its data folder, in ``<run>/serving/``.

- ``manifest.json``: the format version, the model, the sizes, the fold-in rule, the new-item rule's settings,
  the modalities (width, the encoder that made them when known) and every file's size and SHA-256.
- ``user_embeddings.npy`` / ``item_embeddings.npy``: the final embeddings (the graph propagation done once, here).
- ``item_messages.npy``, ``user_own.npy``, ``item_degrees.npy``: the graph models' final user embedding taken
  apart, e_u = own_u + Σ_{j ∈ N(u)} m_j / sqrt(d_u d_j): for a K-layer LightGCN, own_u = e_u^(0) / (K+1) and
  m_j = Σ_{k<K} e_j^(k) / (K+1). Explanations read each history item's term; an unknown user is folded in by
  the same sum. Models for which it does not hold have the ``mean`` rule: m_j = e_j, weights 1/|N(u)|.
- ``train_indptr.npy`` / ``train_indices.npy``: each user's training items (excluded from recommendations).
- ``item_shares.npy``: each item's share per modality read off the gate (models with a gate).
- ``warm.npy``, ``neighbour_<m>.npy``, ``present_<m>.npy``: which items have training interactions and each
  modality's unit-length raw feature rows: a new item takes the final embeddings of its content-nearest warm
  items, as a cold item does in training.
- ``content.pt``: the fusion's parameters and feature transforms, to read a new item's modality shares.
- ``user_ids.json`` / ``item_ids.json`` (raw ids as strings), ``items.json`` (titles and images where known).

The folder is written under a temporary name and renamed into place: a reader sees the old one or the new one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from gatedrec import __version__
from gatedrec.data import Dataset
from gatedrec.errors import GatedRecError
from gatedrec.io import replace_folder, save_npy
from gatedrec.models.base import RecommenderModel
from gatedrec.models.graph import normalized_user_rows, unit_rows
from gatedrec.models.item_graph import fixed_weights
from gatedrec.models.lightgcn import LightGCN
from gatedrec.serving.catalog_info import ItemInfo, read_item_info, read_raw_ids

FORMAT = 1
FOLDER = "serving"
MANIFEST = "manifest.json"
# relative error up to which the graph decomposition counts as reproducing the model's final user embeddings
DECOMPOSITION_TOLERANCE = 1e-3


@dataclass
class Manifest:
    format: int
    gatedrec: str
    model: str
    n_users: int
    n_items: int
    dim: int
    fold_in: str  # graph | mean
    modalities: dict[str, dict]  # name -> {"dim": raw width, "encoder": name or None}
    neighbour_weights: list[float]  # each modality's weight in a new item's neighbour mix
    cold_neighbours: int
    cold_scale: float
    has_content_model: bool
    files: dict[str, dict]  # name -> {"bytes": size, "sha256": digest}


@dataclass
class Decomposition:
    fold_in: str
    messages: np.ndarray
    own: np.ndarray


def export_run(model: RecommenderModel, dataset: Dataset, params: dict, data_folder: str | Path | None, run: str | Path,
               encoders: dict[str, str | None] | None = None) -> Path:
    """Write ``<run>/serving`` for the trained ``model`` (in eval mode, best weights loaded)."""
    model.eval()
    with torch.no_grad():
        embeddings = model()
    users, items = (table.detach().cpu().float().numpy() for table in (embeddings.users, embeddings.items))
    decomposition = decompose(model, embeddings, dataset.train)
    folder = Path(data_folder) if data_folder else None
    arrays = {
        "user_embeddings": users, "item_embeddings": items, "item_messages": decomposition.messages,
        "user_own": decomposition.own, "item_degrees": item_degrees(dataset.train),
        "train_indptr": dataset.train.indptr.astype(np.int64), "train_indices": dataset.train.indices.astype(np.int64),
        "warm": dataset.warm_items,
    }
    shares = model.explain()
    if shares:
        arrays["item_shares"] = np.stack([shares[name] for name in dataset.modalities], axis=1).astype(np.float32)
    for name, modality in dataset.modalities.items():
        arrays[f"neighbour_{name}"] = unit_rows(modality.features).numpy()
        arrays[f"present_{name}"] = modality.present
    fusion = getattr(model, "fusion", None)
    names = list(dataset.modalities)
    manifest = Manifest(
        format=FORMAT, gatedrec=__version__, model=type(model).__name__.lower(), n_users=dataset.n_users,
        n_items=dataset.n_items, dim=users.shape[1], fold_in=decomposition.fold_in,
        modalities={name: {"dim": m.dim, "encoder": (encoders or {}).get(name)} for name, m in
                    dataset.modalities.items()},
        neighbour_weights=fixed_weights(names, float(params.get("text_graph_weight", 0.9))) if names else [],
        cold_neighbours=int(params.get("cold_neighbours", 10)), cold_scale=float(params.get("cold_scale", 1.1)),
        has_content_model=fusion is not None, files={},
    )
    documents = {
        "user_ids.json": read_raw_ids(folder, "user", dataset.n_users),
        "item_ids.json": read_raw_ids(folder, "item", dataset.n_items),
        "items.json": dataclasses.asdict(read_item_info(folder, dataset.n_items)),
    }
    return write_folder(Path(run) / FOLDER, manifest, arrays, documents, fusion)


def decompose(model: RecommenderModel, embeddings, train: sp.csr_matrix) -> Decomposition:
    """The graph rule where it reproduces the model's final user embeddings, else the mean rule."""
    items = embeddings.items.detach().cpu().float().numpy()
    if isinstance(model, LightGCN):
        normalized = normalized_user_rows(train)
        user_ego = embeddings.user_ego.detach().cpu().float().numpy()
        item_ego = embeddings.item_ego.detach().cpu().float().numpy()
        layers, item_layer, user_layer = model.n_layers, item_ego, user_ego
        message_sum = np.zeros_like(item_ego)
        for _ in range(layers):
            message_sum += item_layer
            item_layer, user_layer = normalized.T @ user_layer, normalized @ item_layer
        messages, own = message_sum / (layers + 1), user_ego / (layers + 1)
        rebuilt = own + normalized @ messages
        final = embeddings.users.detach().cpu().float().numpy()
        error = np.linalg.norm(rebuilt - final) / max(np.linalg.norm(final), 1e-12)
        if error < DECOMPOSITION_TOLERANCE:
            return Decomposition("graph", messages.astype(np.float32), own.astype(np.float32))
    return Decomposition("mean", items, np.zeros((train.shape[0], items.shape[1]), np.float32))


def item_degrees(train: sp.csr_matrix) -> np.ndarray:
    return np.bincount(train.indices, minlength=train.shape[1]).astype(np.float32)


def write_folder(target: Path, manifest: Manifest, arrays: dict[str, np.ndarray], documents: dict,
                 fusion) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for name, array in arrays.items():
            save_npy(building / f"{name}.npy", np.ascontiguousarray(array))
        for name, document in documents.items():
            (building / name).write_text(json.dumps(document), encoding="utf-8")
        if fusion is not None:
            torch.save(content_model_state(fusion), building / "content.pt")
        manifest.files = {path.name: file_record(path) for path in sorted(building.iterdir())}
        (building / MANIFEST).write_text(json.dumps(dataclasses.asdict(manifest), indent=2), encoding="utf-8")
        os.chmod(building, 0o755)
        replace_folder(building, target)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target


def file_record(path: Path) -> dict:
    return {"bytes": path.stat().st_size, "sha256": sha256(path)}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_model_state(fusion) -> dict:
    """What rebuilds the fusion for new items: its settings, parameters and feature transforms (plain tensors,
    so that loading needs no pickled classes)."""
    transforms = []
    for transform in fusion.transforms:
        record = {"norm": transform.norm}
        for key in ("mean", "basis"):
            if getattr(transform, key) is not None:
                record[key] = torch.from_numpy(getattr(transform, key))
        if transform.scale is not None:
            record["scale_mean"], record["scale_std"] = (torch.from_numpy(part) for part in transform.scale)
        transforms.append(record)
    parameters = {key: value.detach().cpu() for key, value in fusion.named_parameters()}
    widths = [projection.in_features for projection in fusion.projections]
    return {"names": fusion.names, "fusion": fusion.fusion, "gate": gate_kind(fusion), "widths": widths,
            "dim": fusion.projections[0].out_features, "parameters": parameters, "transforms": transforms}


def gate_kind(fusion) -> str:
    if not hasattr(fusion, "gate"):
        return "element"
    per_dimension = fusion.gate.out_features // max(1, len(fusion.names) - 1)
    return "element" if per_dimension == fusion.projections[0].out_features and per_dimension > 1 else "scalar"


def read_manifest(run: Path) -> Manifest:
    folder = Path(run) / FOLDER
    path = folder / MANIFEST
    if not Path(run).is_dir():
        raise GatedRecError(f"run folder '{run}' does not exist; pass --run with a folder written by 'gatedrec train'")
    if not path.exists():
        raise GatedRecError(
            f"'{run}' has no {FOLDER}/{MANIFEST}: it was trained before serving existed or its export did not finish; "
            f"run 'gatedrec export --run {run}' (it needs the run's data folder once)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise GatedRecError(f"{path}: not valid JSON ({error}); re-export with 'gatedrec export --run {run}'") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else None
        raise GatedRecError(
            f"{path}: serving format {found!r}, this gatedrec ({__version__}) reads format {FORMAT}; "
            f"re-export with 'gatedrec export --run {run}' or serve it with the gatedrec that wrote it")
    try:
        manifest = Manifest(**raw)
    except TypeError as error:
        raise GatedRecError(f"{path}: not a gatedrec serving manifest ({error}); re-export the run") from None
    check_files(folder, manifest, run)
    return manifest


def check_files(folder: Path, manifest: Manifest, run: Path) -> None:
    """Every file the manifest lists is there with its size and digest."""
    for name, record in manifest.files.items():
        path = folder / name
        if not path.exists():
            raise GatedRecError(f"{path} is missing; re-export with 'gatedrec export --run {run}'")
        if path.stat().st_size != record["bytes"] or sha256(path) != record["sha256"]:
            raise GatedRecError(
                f"{path} is corrupt (its size or SHA-256 differs from {MANIFEST}); re-export with "
                f"'gatedrec export --run {run}'")


def load_array(run: Path, name: str) -> np.ndarray:
    return np.load(Path(run) / FOLDER / f"{name}.npy", allow_pickle=False)


def load_document(run: Path, name: str):
    return json.loads((Path(run) / FOLDER / name).read_text(encoding="utf-8"))


def load_item_info(run: Path) -> ItemInfo:
    return ItemInfo(**load_document(run, "items.json"))
