"""What the robustness studies do to a data set's item features: take modalities away (missing) or corrupt them
(noise). Every draw is seeded, so a study's conditions are the same for every model and seed.

Missing, the DGMRec protocol (Kim et al., SIGIR 2025, its preprocess_missing_modality.py): the items are split
by training popularity into cold (the 70 % least interacted) and warm; in each part two thirds of the items lose
modalities: of those a quarter lose the text only, a quarter the image only, half both. The sweep takes one
modality away from a share of the items, drawn uniformly.

Noise: a share of the items get, in one modality, Gaussian noise at ``level`` times each feature's standard
deviation, or (level "replace") a random vector with the features' mean and covariance.
"""

from __future__ import annotations

import numpy as np

from gatedrec.data import Dataset, Modality
from gatedrec.errors import GatedRecError

COLD_SHARE = 0.7  # DGMRec: the least interacted 70 % of the items are its cold stratum
LOST_SHARE = 2 / 3  # of each stratum
ONE_MODALITY_SHARE = 0.25  # of the items that lose modalities: text only, and image only; the rest lose both
REPLACE = "replace"
COVARIANCE_ROWS = 4096  # random vectors are mixed from at most this many centred rows


def dgmrec_missing(dataset: Dataset, visual: str, text: str, rng: np.random.Generator) -> np.ndarray:
    """(items, modalities) True where the DGMRec protocol takes the modality away."""
    names = list(dataset.modalities)
    for name in (visual, text):
        if name not in names:
            raise GatedRecError(f"the DGMRec protocol takes away '{name}', which the data set lacks (it has "
                                f"{', '.join(names)}); name the image and text modalities with --visual/--text")
    degrees = np.asarray(dataset.train.sum(axis=0)).ravel()
    order = np.argsort(degrees, kind="stable")
    n_cold = int(round(COLD_SHARE * len(order)))
    missing = np.zeros((dataset.n_items, len(names)), dtype=bool)
    for stratum in (order[:n_cold], order[n_cold:]):
        lost = rng.permutation(stratum)[: int(round(LOST_SHARE * len(stratum)))]
        n_one = int(round(ONE_MODALITY_SHARE * len(lost)))
        text_only, image_only, both = lost[:n_one], lost[n_one: 2 * n_one], lost[2 * n_one:]
        missing[np.concatenate([text_only, both]), names.index(text)] = True
        missing[np.concatenate([image_only, both]), names.index(visual)] = True
    return missing


def sweep_missing(dataset: Dataset, modality: str, share: float, rng: np.random.Generator) -> np.ndarray:
    """(items, modalities) True for a uniform ``share`` of the items in ``modality``."""
    names = list(dataset.modalities)
    missing = np.zeros((dataset.n_items, len(names)), dtype=bool)
    missing[chosen_items(dataset.n_items, share, rng), names.index(modality)] = True
    return missing


def chosen_items(n_items: int, share: float, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(n_items)[: int(round(share * n_items))]


def without(dataset: Dataset, missing: np.ndarray) -> Dataset:
    """The data set with the modalities ``missing`` marks taken away (rows zero, not present)."""
    modalities = {}
    for index, (name, modality) in enumerate(dataset.modalities.items()):
        present = modality.present & ~missing[:, index]
        features = np.where(present[:, None], modality.features, 0.0).astype(modality.features.dtype)
        modalities[name] = Modality(features=features, present=present)
    return with_modalities(dataset, modalities)


def zero_filled(dataset: Dataset) -> Dataset:
    """Every absent modality row kept at zero and marked present: the model cannot tell it is missing."""
    modalities = {name: Modality(modality.features, np.ones_like(modality.present))
                  for name, modality in dataset.modalities.items()}
    return with_modalities(dataset, modalities)


def with_modalities(dataset: Dataset, modalities: dict[str, Modality]) -> Dataset:
    return Dataset(dataset.name, dataset.train, dataset.valid, dataset.test, modalities)


def noisy(modality: Modality, items: np.ndarray, level: str, rng: np.random.Generator) -> Modality:
    """The modality with the rows ``items`` (of items that have it) corrupted at ``level``."""
    items = items[modality.present[items]]
    features = modality.features.astype(np.float32, copy=True)
    rows = features[modality.present]
    if level == REPLACE:
        features[items] = random_like(rows, len(items), rng)
    else:
        scale = float(level) * rows.std(axis=0)
        features[items] += (rng.standard_normal((len(items), rows.shape[1])) * scale).astype(np.float32)
    return Modality(features=features, present=modality.present)


def random_like(rows: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` random vectors with the mean and covariance of ``rows``: the mean plus Gaussian mixtures of the
    centred rows, z C / sqrt(n - 1) (C n centred rows; n at most COVARIANCE_ROWS, drawn), without forming the
    d x d covariance."""
    basis = rows[rng.permutation(len(rows))[:COVARIANCE_ROWS]] if len(rows) > COVARIANCE_ROWS else rows
    mean = rows.mean(axis=0)
    centred = basis - basis.mean(axis=0)
    weights = rng.standard_normal((count, len(centred))) / np.sqrt(max(1, len(centred) - 1))
    return (mean + weights @ centred).astype(np.float32)


def check_level(text: str) -> str:
    """A noise level: a non-negative number of standard deviations, or 'replace'."""
    if text == REPLACE:
        return text
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not np.isfinite(value) or value < 0:
        raise GatedRecError(f"--levels: '{text}' is not a level; give numbers of standard deviations (e.g. 0.5) "
                            f"or '{REPLACE}'")
    return f"{value:g}"
