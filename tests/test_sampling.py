import numpy as np
import scipy.sparse as sp

from gatedrec.training import NegativeSampler


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


def test_user_with_every_item_is_not_trained():
    train = sp.csr_matrix(np.array([[1, 1, 1], [1, 0, 0]], dtype=np.float32))
    sampler = NegativeSampler(train)
    assert set(sampler.users.tolist()) == {1}
