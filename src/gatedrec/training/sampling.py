"""Training pairs with sampled negatives, never a user's training positive: uniform, or the hardest of
several uniform draws."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

# a user x item bitmap of the training positives up to this size (256 MB) answers "is it a positive?" ten
# times faster than a binary search of the sorted pairs; larger data sets hash the pairs into a bitmap of at
# most this size, at least HASHED_BITS_PER_POSITIVE bits per positive, and search the sorted pairs only for
# the draws whose bit is set (their positives and about one other draw in 64): at 1,000,000 users the
# search alone took 1.4 s per million draws, most of an epoch's hard negatives
BITMAP_MAX_BITS = 1 << 31
HASHED_BITS_PER_POSITIVE = 64
FIBONACCI_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # 2^64 / golden ratio: spreads keys over the bits
# scores of (users (b,), items (n, b)) as an (n, b) array: item [j, k] scored for user k
PairScorer = Callable[[np.ndarray, np.ndarray], np.ndarray]
# training pairs whose hard negatives are drawn and scored at once: a few MB of candidate embeddings
HARD_NEGATIVE_CHUNK = 4096


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
        n_keys = train.shape[0] * self.n_items
        self.hash_bits = None  # None: the bitmap has one bit per key, and answers exactly
        if n_keys > BITMAP_MAX_BITS:
            wanted = max(1, HASHED_BITS_PER_POSITIVE * len(self.positive_keys))
            self.hash_bits = min(BITMAP_MAX_BITS.bit_length() - 1, (wanted - 1).bit_length())
        n_bits = n_keys if self.hash_bits is None else 1 << self.hash_bits
        self.positive_bits = packed_bits(np.sort(self.bit_of(self.positive_keys)), n_bits)
        self.candidates = np.flatnonzero(np.bincount(self.items, minlength=self.n_items) > 0)
        trainable = counts[self.users] < len(self.candidates)
        self.users, self.items = self.users[trainable], self.items[trainable]

    @property
    def n_pairs(self) -> int:
        return len(self.users)

    def bit_of(self, keys: np.ndarray) -> np.ndarray:
        """Each (user, item) key's bit in the bitmap: the key itself, or its top hash_bits of a Fibonacci hash."""
        if self.hash_bits is None:
            return keys
        hashed = keys.astype(np.uint64) * FIBONACCI_MULTIPLIER  # wraps modulo 2^64, as hashing wants
        return (hashed >> np.uint64(64 - self.hash_bits)).astype(np.int64)

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users * self.n_items + items
        bits = self.bit_of(keys)
        maybe = (np.take(self.positive_bits, bits >> 3) >> (bits & 7).astype(np.uint8)) & 1 == 1
        if self.hash_bits is None:
            return maybe
        confirmed = np.zeros(len(keys), dtype=bool)
        checked = np.flatnonzero(maybe)
        positions = np.minimum(np.searchsorted(self.positive_keys, keys[checked]), len(self.positive_keys) - 1)
        confirmed[checked] = self.positive_keys[positions] == keys[checked]
        return confirmed

    def negatives(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        # np.take: twice as fast as indexing with [] for these gathers
        items = np.take(self.candidates, rng.integers(0, len(self.candidates), len(users)))
        redraw = np.flatnonzero(self.is_positive(users, items))
        while len(redraw):
            items[redraw] = np.take(self.candidates, rng.integers(0, len(self.candidates), len(redraw)))
            redraw = redraw[self.is_positive(users[redraw], items[redraw])]
        return items

    def hardest_negatives(self, users: np.ndarray, rng: np.random.Generator, candidates: int,
                          score: PairScorer) -> np.ndarray:
        """The highest-scored of ``candidates`` uniform negatives per user (dynamic negative sampling)."""
        drawn = self.negatives(np.tile(users, candidates), rng).reshape(candidates, len(users))
        return drawn[score(users, drawn).argmax(axis=0), np.arange(len(users))]

    def epoch_hardest_negatives(self, users: np.ndarray, rng: np.random.Generator, candidates: int,
                                score: PairScorer, workers: int = 1) -> np.ndarray:
        """hardest_negatives for every pair of an epoch, in equal chunks of at most HARD_NEGATIVE_CHUNK pairs
        on ``workers`` threads (NumPy lets go of the interpreter while it draws, gathers and multiplies), each
        chunk with its own random stream spawned from ``rng``: the draws do not depend on which thread takes
        which chunk. Drawn while the model waits, they take half the time of drawing them batch by batch in
        a thread beside the training step, which competed with it for the cores."""
        n_chunks = -(-len(users) // HARD_NEGATIVE_CHUNK)
        size = -(-len(users) // max(1, n_chunks))  # equal chunks keep the threads equally busy
        starts = range(0, len(users), max(1, size))
        streams = rng.spawn(len(starts))

        def chunk(start: int, stream: np.random.Generator) -> np.ndarray:
            return self.hardest_negatives(users[start : start + size], stream, candidates, score)

        if workers == 1 or len(starts) == 1:
            chunks = list(map(chunk, starts, streams))
        else:
            with ThreadPoolExecutor(workers) as pool:
                chunks = list(pool.map(chunk, starts, streams))
        return np.concatenate(chunks) if chunks else np.empty(0, dtype=np.int64)

    def epoch(self, batch_size: int, rng: np.random.Generator, candidates: int = 1, score: PairScorer | None = None,
              workers: int = 1) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Batches of (users, positive items, negative items) covering every training pair once; with
        ``candidates`` > 1 each negative is the one ``score`` ranks highest among that many uniform draws
        (drawn for the whole epoch at its start, on ``workers`` threads)."""
        order = rng.permutation(self.n_pairs)
        users, positives = self.users[order], self.items[order]
        if candidates == 1:
            negatives = self.negatives(users, rng)
        else:
            negatives = self.epoch_hardest_negatives(users, rng, candidates, score, workers)
        for start in range(0, self.n_pairs, batch_size):
            batch = slice(start, start + batch_size)
            yield users[batch], positives[batch], negatives[batch]

    def n_batches(self, batch_size: int) -> int:
        return -(-self.n_pairs // batch_size)


def packed_bits(sorted_keys: np.ndarray, n_bits: int) -> np.ndarray:
    """A bitmap of ``n_bits`` bits, set at ``sorted_keys`` (ascending), eight to a byte with the lowest bit
    first (np.packbits' "little" order), built without first holding one byte per bit (eight times the
    memory: 2 GB at the bitmap's largest size)."""
    packed = np.zeros(-(-n_bits // 8), dtype=np.uint8)
    if len(sorted_keys) == 0:
        return packed
    byte = sorted_keys >> 3
    first_of_byte = np.flatnonzero(np.r_[True, byte[1:] != byte[:-1]])
    bit_values = (1 << (sorted_keys & 7)).astype(np.uint8)
    packed[byte[first_of_byte]] = np.bitwise_or.reduceat(bit_values, first_of_byte)
    return packed
