"""``gatedrec study missing``: every model trained with modalities taken away from items, by the DGMRec protocol
or a sweep over the share of items without one modality (gatedrec.studies.corruption), and scored overall and
by item group (items with every modality, with one only, with none)."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from gatedrec.data import Dataset
from gatedrec.errors import GatedRecError
from gatedrec.io import write_npy
from gatedrec.options import MISSING_PROTOCOLS
from gatedrec.studies.corruption import dgmrec_missing, sweep_missing, without
from gatedrec.studies.robustness import CLEAN_CONDITION, Condition

DGMRec = "dgmrec"
BOTH = "both"


def conditions(protocol: str, modality: str, shares: list[float]) -> list[Condition]:
    if protocol not in MISSING_PROTOCOLS:
        raise GatedRecError(f"--protocol '{protocol}' is unknown; choose one of {', '.join(MISSING_PROTOCOLS)}")
    if protocol == DGMRec:
        return [CLEAN_CONDITION, Condition(BOTH, 2 / 3, DGMRec)]
    return [CLEAN_CONDITION] + [Condition(modality, share, protocol) for share in shares if share > 0]


def image_and_text(dataset: Dataset) -> tuple[str, str]:
    """The modalities the DGMRec protocol calls image and text: ``text``, and ``visual`` or else the other one."""
    names = list(dataset.modalities)
    if "text" not in names or len(names) < 2:
        raise GatedRecError(f"the DGMRec protocol needs a 'text' modality and another one; the data set has "
                            f"{', '.join(names) or 'none'}: use --protocol sweep")
    image = "visual" if "visual" in names else next(name for name in names if name != "text")
    return image, "text"


def missing_mask(dataset: Dataset, condition: Condition, seed: int) -> np.ndarray:
    """(items, modalities) True where the condition takes a modality away; the same for every model and seed."""
    rng = np.random.default_rng([seed, zlib.crc32(condition.key.encode())])
    if condition.is_clean:
        return np.zeros((dataset.n_items, len(dataset.modalities)), dtype=bool)
    if condition.level == DGMRec:
        return dgmrec_missing(dataset, *image_and_text(dataset), rng)
    return sweep_missing(dataset, condition.modality, condition.share, rng)


def damaged(dataset: Dataset, condition: Condition, seed: int) -> tuple[Dataset, dict[str, np.ndarray]]:
    result = without(dataset, missing_mask(dataset, condition, seed))
    return result, presence_groups(result)


def presence_groups(dataset: Dataset) -> dict[str, np.ndarray]:
    """Items by the modalities they have: all items, every modality, each one alone, none."""
    presence = np.stack([modality.present for modality in dataset.modalities.values()], axis=1)
    counts = presence.sum(axis=1)
    groups = {"all": np.ones(dataset.n_items, dtype=bool), "every modality": counts == presence.shape[1]}
    if presence.shape[1] > 1:
        for index, name in enumerate(dataset.modalities):
            groups[f"{name} only"] = presence[:, index] & (counts == 1)
    groups["none"] = counts == 0
    return groups


def save_masks(dataset: Dataset, conditions_: list[Condition], seed: int, folder: Path) -> None:
    """Each condition's mask as masks/<condition>.npy, (items, modalities) True where taken away."""
    folder.mkdir(parents=True, exist_ok=True)
    for condition in conditions_:
        write_npy(folder / f"{condition.key}.npy", missing_mask(dataset, condition, seed))
