import numpy as np
import pytest
import scipy.sparse as sp

from gatedrec.training import NegativeSampler, sampling
from gatedrec.training.sampling import packed_bits


def test_negatives_are_never_training_positives():
    rng = np.random.default_rng(0)
    train = sp.csr_matrix((rng.random((50, 12)) < 0.7).astype(np.float32))
    sampler = NegativeSampler(train)
    dense = train.toarray() > 0
    for users, positives, negatives in sampler.epoch(64, rng):
        assert np.all(dense[users, positives])
        assert not np.any(dense[users, negatives])


def test_an_epoch_covers_every_training_pair_once():
    rng = np.random.default_rng(1)
    train = sp.csr_matrix((rng.random((30, 20)) < 0.3).astype(np.float32))
    sampler = NegativeSampler(train)
    pairs = [(u, i) for users, items, _ in sampler.epoch(7, rng) for u, i in zip(users, items)]
    assert sorted(pairs) == sorted(zip(*train.nonzero()))


def test_positives_bitmap_answers_as_the_sorted_pairs_do():
    rng = np.random.default_rng(3)
    train = sp.csr_matrix((rng.random((37, 29)) < 0.2).astype(np.float32))
    sampler = NegativeSampler(train)
    keys = sampler.positive_keys
    expected = np.zeros(train.shape[0] * train.shape[1], dtype=bool)
    expected[keys] = True
    np.testing.assert_array_equal(sampler.positive_bits, np.packbits(expected, bitorder="little"))
    users, items = np.divmod(np.arange(train.shape[0] * train.shape[1]), train.shape[1])
    np.testing.assert_array_equal(sampler.is_positive(users, items), train.toarray().ravel() > 0)
    assert not packed_bits(np.array([], dtype=np.int64), 20).any()


@pytest.mark.parametrize("max_bits", [64, 1024])
def test_hashed_bitmap_of_a_large_data_set_answers_exactly(monkeypatch, max_bits):
    """Beyond BITMAP_MAX_BITS user x item pairs the bitmap is hashed: a set bit may be another pair's, so
    those draws are confirmed by searching the sorted pairs (at 64 bits nearly every bit is set)."""
    monkeypatch.setattr(sampling, "BITMAP_MAX_BITS", max_bits)
    rng = np.random.default_rng(4)
    train = sp.csr_matrix((rng.random((41, 31)) < 0.1).astype(np.float32))
    sampler = NegativeSampler(train)
    assert sampler.hash_bits is not None and len(sampler.positive_bits) * 8 <= max_bits
    users, items = np.divmod(np.arange(train.shape[0] * train.shape[1]), train.shape[1])
    np.testing.assert_array_equal(sampler.is_positive(users, items), train.toarray().ravel() > 0)
    for users, _, negatives in sampler.epoch(32, rng):
        assert not np.any(train.toarray()[users, negatives] > 0)


def test_user_with_every_item_is_not_trained():
    train = sp.csr_matrix(np.array([[1, 1, 1], [1, 0, 0]], dtype=np.float32))
    sampler = NegativeSampler(train)
    assert set(sampler.users.tolist()) == {1}


def test_hard_negative_is_the_best_scored_of_its_candidates(monkeypatch):
    monkeypatch.setattr(sampling, "HARD_NEGATIVE_CHUNK", 10)  # several chunks per epoch
    rng = np.random.default_rng(2)
    train = sp.csr_matrix((rng.random((40, 30)) < 0.2).astype(np.float32))
    sampler = NegativeSampler(train)
    dense = train.toarray() > 0
    scored_users, drawn = [], []

    def score_by_item_id(users, items):
        scored_users.append(users.copy())
        drawn.append(items.copy())
        return items.astype(float)

    batches = list(sampler.epoch(16, rng, candidates=5, score=score_by_item_id))
    users, negatives = (np.concatenate([batch[index] for batch in batches]) for index in (0, 2))
    drawn = np.concatenate(drawn, axis=1)
    assert drawn.shape == (5, sampler.n_pairs)
    np.testing.assert_array_equal(np.concatenate(scored_users), users)
    assert not np.any(dense[users[None, :], drawn])
    np.testing.assert_array_equal(negatives, drawn.max(axis=0))


def test_hard_negatives_do_not_depend_on_the_number_of_threads(monkeypatch):
    monkeypatch.setattr(sampling, "HARD_NEGATIVE_CHUNK", 7)
    rng = np.random.default_rng(5)
    train = sp.csr_matrix((rng.random((60, 40)) < 0.2).astype(np.float32))
    sampler = NegativeSampler(train)
    scores = rng.standard_normal((60, 40))

    def epoch_negatives(workers):
        batches = sampler.epoch(16, np.random.default_rng(6), 4, lambda users, items: scores[users, items], workers)
        return np.concatenate([batch[2] for batch in batches])

    np.testing.assert_array_equal(epoch_negatives(1), epoch_negatives(3))


def test_hard_negatives_are_harder_than_uniform_ones():
    rng = np.random.default_rng(3)
    train = sp.csr_matrix((rng.random((200, 100)) < 0.1).astype(np.float32))
    sampler = NegativeSampler(train)

    def negatives(candidates):
        batches = sampler.epoch(64, np.random.default_rng(4), candidates, lambda users, items: items.astype(float))
        return np.concatenate([batch[2] for batch in batches])

    assert negatives(8).mean() > negatives(1).mean() + 20
