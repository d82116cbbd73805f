"""From raw interactions to the kept ones: rating threshold, one interaction per (user, item), iterative
k-core, then contiguous ids."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gatedrec.errors import GatedRecError
from gatedrec.prepare.raw import Interactions


@dataclass
class KeptInteractions:
    """Interactions with contiguous ids 0..n-1 (ordered by raw id) and the raw ids of those indices."""

    users: np.ndarray
    items: np.ndarray
    times: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray


def keep_interactions(raw: Interactions, min_user: int, min_item: int, min_rating: float | None) -> KeptInteractions:
    keep = np.ones(len(raw.users), dtype=bool)
    if min_rating is not None:
        if np.isnan(raw.ratings).all():
            raise GatedRecError("--min-rating was given but the interactions carry no rating")
        keep &= raw.ratings >= min_rating
    keep &= first_of_each_pair(raw.users, raw.items, raw.times)
    users, items, times = raw.users[keep], raw.items[keep], raw.times[keep]
    core = k_core(users, items, min_user, min_item)
    if not core.any():
        raise GatedRecError(
            f"no interaction is left after the {min_user}-core on users and {min_item}-core on items; "
            "lower --min-user / --min-item"
        )
    users, items, times = users[core], items[core], times[core]
    user_ids, users = _relabel(users, raw.user_ids)
    item_ids, items = _relabel(items, raw.item_ids)
    return KeptInteractions(users, items, times, user_ids, item_ids)


def first_of_each_pair(users: np.ndarray, items: np.ndarray, times: np.ndarray) -> np.ndarray:
    """True for the earliest interaction of each (user, item) pair (the first in the file on ties)."""
    order = np.lexsort((np.arange(len(users)), np.nan_to_num(times, nan=np.inf), items, users))
    pair = np.column_stack([users[order], items[order]])
    first = np.ones(len(order), dtype=bool)
    first[1:] = (pair[1:] != pair[:-1]).any(axis=1)
    keep = np.zeros(len(users), dtype=bool)
    keep[order[first]] = True
    return keep


def k_core(users: np.ndarray, items: np.ndarray, min_user: int, min_item: int) -> np.ndarray:
    """Interactions left once users with fewer than ``min_user`` and items with fewer than ``min_item``
    interactions are removed, repeatedly, until none is left to remove."""
    keep = np.ones(len(users), dtype=bool)
    while True:
        user_counts = np.bincount(users[keep], minlength=users.max(initial=-1) + 1)
        item_counts = np.bincount(items[keep], minlength=items.max(initial=-1) + 1)
        still = keep & (user_counts[users] >= min_user) & (item_counts[items] >= min_item)
        if still.sum() == keep.sum():
            return still
        keep = still


def _relabel(codes: np.ndarray, raw_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous ids for the used codes, in the order of their raw ids (deterministic across runs)."""
    used = np.unique(codes)
    names = np.asarray(raw_ids, dtype=object)[used]
    order = np.argsort(names.astype(str), kind="stable")
    new_id = np.empty(len(used), dtype=np.int64)
    new_id[order] = np.arange(len(used))
    lookup = np.full(codes.max() + 1, -1, dtype=np.int64)
    lookup[used] = new_id
    return names[order], lookup[codes]
