"""Per-user splits of interaction lists."""

from __future__ import annotations

import numpy as np

from gatedrec.errors import GatedRecError


def rank_within_user(users: np.ndarray, rng: np.random.Generator, times: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Each interaction's rank among its user's interactions (random, or latest first when ``times`` is
    given, ties broken at random), and each interaction's user count."""
    keys = (rng.random(len(users)), users) if times is None else (rng.random(len(users)), -times, users)
    order = np.lexsort(keys)
    counts = np.bincount(users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    ranks = np.empty(len(users), dtype=np.int64)
    ranks[order] = np.arange(len(users)) - np.repeat(starts, counts)
    return ranks, counts[users]


def mmrec_random_split(users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """x_labels by MMRec's rule: a user with n < 10 items keeps n-2 for train, 1 valid, 1 test; others hold
    out floor(0.2 n), half valid, half test. Users with fewer than 3 items keep everything in train."""
    ranks, counts = rank_within_user(users, rng)
    held_out = mmrec_held_out(counts)
    n_valid = held_out // 2
    labels = np.zeros(len(users), dtype=np.int64)
    labels[ranks < held_out] = 2
    labels[ranks < n_valid] = 1
    return labels


def mmrec_held_out(counts: np.ndarray) -> np.ndarray:
    """Held-out interactions per user by MMRec's rule (see mmrec_random_split)."""
    held_out = np.where(counts < 10, 2, (0.2 * counts).astype(np.int64))
    return np.where(counts < 3, 0, held_out)


def temporal_split(users: np.ndarray, times: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """MMRec's per-user counts, but a user's latest interactions are held out: the latest half of them
    (rounded up) in test, the earlier ones in valid."""
    ranks, counts = rank_within_user(users, rng, times)
    held_out = mmrec_held_out(counts)
    n_test = held_out - held_out // 2
    labels = np.zeros(len(users), dtype=np.int64)
    labels[ranks < held_out] = 1
    labels[ranks < n_test] = 2
    return labels


def leave_one_out_split(users: np.ndarray, times: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """Each user's latest interaction (a random one without times) in test, the one before in valid;
    users with fewer than 3 keep everything in train."""
    ranks, counts = rank_within_user(users, rng, times)
    labels = np.zeros(len(users), dtype=np.int64)
    labels[(ranks == 1) & (counts >= 3)] = 1
    labels[(ranks == 0) & (counts >= 3)] = 2
    return labels


COLD_ITEMS = "cold-items"


def parse_split(spec: str) -> tuple[float, int]:
    """``cold-items:SHARE[:SEED]`` as (share, seed); seed 0 when not given."""
    name, _, rest = spec.partition(":")
    share_text, _, seed_text = rest.partition(":")
    try:
        share, seed = float(share_text), int(seed_text or 0)
    except ValueError:
        share, seed = -1.0, 0
    if name != COLD_ITEMS or not 0 < share < 1:
        raise GatedRecError(
            f"--split '{spec}' must look like cold-items:SHARE[:SEED] with 0 < SHARE < 1, e.g. cold-items:0.2")
    return share, seed


def cold_item_labels(items: np.ndarray, labels: np.ndarray, n_items: int, share: float,
                     rng: np.random.Generator) -> np.ndarray:
    """Hold out ``share`` of the items entirely: half of them (by item) put all their interactions in valid,
    the other half in test; other items' interactions keep their labels."""
    held_out = rng.permutation(n_items)[: int(round(share * n_items))]
    item_label = np.full(n_items, -1, dtype=np.int64)
    item_label[held_out[: len(held_out) // 2]] = 1
    item_label[held_out[len(held_out) // 2 :]] = 2
    cold = item_label[items] >= 0
    return np.where(cold, item_label[items], labels)
