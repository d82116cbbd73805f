"""Per-user splits of interaction lists."""

from __future__ import annotations

import numpy as np


def rank_within_user(users: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random rank of each interaction among its user's interactions, and each interaction's user count."""
    order = np.lexsort((rng.random(len(users)), users))
    counts = np.bincount(users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    ranks = np.empty(len(users), dtype=np.int64)
    ranks[order] = np.arange(len(users)) - np.repeat(starts, counts)
    return ranks, counts[users]


def mmrec_random_split(users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """x_labels by MMRec's rule: a user with n < 10 items keeps n-2 for train, 1 valid, 1 test; others hold
    out floor(0.2 n), half valid, half test. Users with fewer than 3 items keep everything in train."""
    ranks, counts = rank_within_user(users, rng)
    held_out = np.where(counts < 10, 2, (0.2 * counts).astype(np.int64))
    held_out = np.where(counts < 3, 0, held_out)
    n_valid = held_out // 2
    labels = np.zeros(len(users), dtype=np.int64)
    labels[ranks < held_out] = 2
    labels[ranks < n_valid] = 1
    return labels
