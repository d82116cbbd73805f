"""Training pairs with uniformly sampled negatives, never a user's training positive."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp


class NegativeSampler:
    """Shuffles the training pairs of an epoch and draws one negative per positive, vectorised.

    Negatives are uniform over the items with a training interaction: an item nobody has bought yet (a
    cold item) is unknown at training time, as in a shop, so it is never pushed down as a negative. Draws
    that hit one of the user's training positives are redrawn until none is left. Users who have interacted
    with every such item have no negative and are not trained.
    """

    def __init__(self, train: sp.csr_matrix):
        train = train.tocsr()
        train.sort_indices()
        self.n_items = train.shape[1]
        counts = np.diff(train.indptr)
        self.users = np.repeat(np.arange(train.shape[0]), counts)
        self.items = train.indices.astype(np.int64)
        self.positive_keys = self.users * self.n_items + self.items
        self.candidates = np.flatnonzero(np.bincount(self.items, minlength=self.n_items) > 0)
        trainable = counts[self.users] < len(self.candidates)
        self.users, self.items = self.users[trainable], self.items[trainable]

    @property
    def n_pairs(self) -> int:
        return len(self.users)

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users * self.n_items + items
        positions = np.minimum(np.searchsorted(self.positive_keys, keys), len(self.positive_keys) - 1)
        return self.positive_keys[positions] == keys

    def negatives(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        items = self.candidates[rng.integers(0, len(self.candidates), len(users))]
        redraw = np.flatnonzero(self.is_positive(users, items))
        while len(redraw):
            items[redraw] = self.candidates[rng.integers(0, len(self.candidates), len(redraw))]
            redraw = redraw[self.is_positive(users[redraw], items[redraw])]
        return items

    def epoch(self, batch_size: int, rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Batches of (users, positive items, negative items) covering every training pair once."""
        order = rng.permutation(self.n_pairs)
        users, positives = self.users[order], self.items[order]
        negatives = self.negatives(users, rng)
        for start in range(0, self.n_pairs, batch_size):
            stop = start + batch_size
            yield users[start:stop], positives[start:stop], negatives[start:stop]

    def n_batches(self, batch_size: int) -> int:
        return -(-self.n_pairs // batch_size)
