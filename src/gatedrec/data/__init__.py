"""Loading, validating and generating data sets."""

from __future__ import annotations

import numpy as np

from gatedrec.data.dataset import Dataset, Modality, interaction_matrix
from gatedrec.data.mmrec import load_mmrec
from gatedrec.data.splitting import cold_item_labels, parse_split


def load_data(data) -> Dataset:
    """The data set a run's DataConfig describes: the folder loaded, re-split when ``data.split`` asks."""
    dataset = load_mmrec(data.path, data.inter, data.modalities, data.missing)
    return resplit(dataset, data.split) if data.split else dataset


def resplit(dataset: Dataset, spec: str) -> Dataset:
    share, seed = parse_split(spec)
    users, items, labels = dataset.labelled_interactions()
    labels = cold_item_labels(items, labels, dataset.n_items, share, np.random.default_rng(seed))
    return Dataset.from_labels(f"{dataset.name} ({spec})", users, items, labels, dataset.n_users, dataset.n_items,
                               dataset.modalities)


__all__ = ["Dataset", "Modality", "interaction_matrix", "load_data", "load_mmrec", "resplit"]
