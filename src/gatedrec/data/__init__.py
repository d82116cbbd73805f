"""Loading, validating and generating data sets."""

from __future__ import annotations

import numpy as np

from gatedrec.data.dataset import SPLITS, Dataset, Modality, interaction_matrix
from gatedrec.data.mmrec import load_mmrec
from gatedrec.data.splitting import cold_item_labels, parse_split


def load_data(data) -> Dataset:
    """The data set a run's DataConfig describes: the folder loaded, re-split when ``data.split`` asks."""
    dataset = load_mmrec(data.path, data.inter, data.modalities, data.missing)
    return resplit(dataset, data.split) if data.split else dataset


def resplit(dataset: Dataset, spec: str) -> Dataset:
    share, seed = parse_split(spec)
    matrices = [dataset.split(name).tocoo() for name in SPLITS]
    users = np.concatenate([matrix.row for matrix in matrices]).astype(np.int64)
    items = np.concatenate([matrix.col for matrix in matrices]).astype(np.int64)
    labels = np.concatenate([np.full(matrix.nnz, code) for code, matrix in enumerate(matrices)])
    labels = cold_item_labels(items, labels, dataset.n_items, share, np.random.default_rng(seed))
    splits = {
        name: interaction_matrix(users[labels == code], items[labels == code], dataset.n_users, dataset.n_items)
        for code, name in enumerate(SPLITS)
    }
    return Dataset(name=f"{dataset.name} ({spec})", modalities=dataset.modalities, **splits)


__all__ = ["Dataset", "Modality", "interaction_matrix", "load_data", "load_mmrec", "resplit"]
