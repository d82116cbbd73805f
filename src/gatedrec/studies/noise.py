"""``gatedrec study noise``: every model trained with one modality corrupted for a share of the items, Gaussian
noise at a number of the features' standard deviations or random vectors of their mean and covariance
(gatedrec.studies.corruption); scored overall and on the corrupted and the clean items, with the gate's mean
share of the corrupted modality on each."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from gatedrec.data import Dataset
from gatedrec.errors import GatedRecError
from gatedrec.io import write_npy
from gatedrec.studies.corruption import noisy, with_modalities
from gatedrec.studies.robustness import CLEAN_CONDITION, Condition



def conditions(modality: str, shares: list[float], levels: list[str]) -> list[Condition]:
    return [CLEAN_CONDITION] + [Condition(modality, share, level) for share in shares if share > 0
                                for level in levels if level != "0"]


def check_modality(dataset: Dataset, modality: str) -> None:
    if modality not in dataset.modalities:
        raise GatedRecError(f"--modality '{modality}': the data set has no such modality; it has "
                            f"{', '.join(dataset.modalities) or 'none'}")


def corrupted_items(dataset: Dataset, condition: Condition, seed: int) -> np.ndarray:
    """The items corrupted (a share of those with the modality), the same at every level of one share."""
    if condition.is_clean:
        return np.zeros(0, dtype=np.int64)
    present = np.flatnonzero(dataset.modalities[condition.modality].present)
    rng = np.random.default_rng([seed, zlib.crc32(f"{condition.modality}-{condition.share:g}".encode())])
    return np.sort(rng.permutation(present)[: int(round(condition.share * len(present)))])


def damaged(dataset: Dataset, condition: Condition, seed: int) -> tuple[Dataset, dict[str, np.ndarray]]:
    items = corrupted_items(dataset, condition, seed)
    corrupted = np.zeros(dataset.n_items, dtype=bool)
    corrupted[items] = True
    groups = {"all": np.ones(dataset.n_items, dtype=bool), "corrupted": corrupted, "clean": ~corrupted}
    if condition.is_clean:
        return dataset, groups
    rng = np.random.default_rng([seed, zlib.crc32(condition.key.encode())])
    modalities = dict(dataset.modalities)
    modalities[condition.modality] = noisy(modalities[condition.modality], items, condition.level, rng)
    return with_modalities(dataset, modalities), groups


def save_items(dataset: Dataset, conditions_: list[Condition], seed: int, folder: Path) -> None:
    """Each condition's corrupted item ids as masks/<condition>.npy."""
    folder.mkdir(parents=True, exist_ok=True)
    for condition in conditions_:
        write_npy(folder / f"{condition.key}.npy", corrupted_items(dataset, condition, seed))
