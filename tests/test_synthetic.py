import numpy as np

from gatedrec.data import load_mmrec
from gatedrec.data.synthetic import generate


def test_generation_is_deterministic_given_a_seed():
    first = generate(200, 80, 2500, {"visual": 8, "text": 4}, seed=7)
    second = generate(200, 80, 2500, {"visual": 8, "text": 4}, seed=7)
    assert (first.dataset.train != second.dataset.train).nnz == 0
    np.testing.assert_array_equal(first.dataset.modalities["visual"].features,
                                  second.dataset.modalities["visual"].features)
    other = generate(200, 80, 2500, {"visual": 8, "text": 4}, seed=8)
    assert (first.dataset.train != other.dataset.train).nnz > 0


def test_sizes_and_splits_are_sensible(small_generated):
    dataset = small_generated.dataset
    total = dataset.train.nnz + dataset.valid.nnz + dataset.test.nnz
    assert 3000 <= total <= 4000
    assert dataset.valid.nnz > 0 and dataset.test.nnz > 0
    assert (dataset.train.multiply(dataset.test)).nnz == 0
    assert set(small_generated.item_group.tolist()) == {0, 1}


def test_clean_view_carries_more_signal_than_noisy_view(small_generated):
    """Items of a group are closer to each other in their clean view: the planted structure is real."""
    dataset = small_generated.dataset
    visual = dataset.modalities["visual"].features
    clean = small_generated.item_group == 0
    assert np.var(visual[clean], axis=0).mean() < np.var(visual[~clean], axis=0).mean()


def test_saved_folder_loads_back(small_folder, small_generated):
    loaded = load_mmrec(small_folder)
    assert loaded.n_items == small_generated.dataset.n_items
    assert set(loaded.modalities) == {"visual", "text"}
    assert (loaded.test != small_generated.dataset.test).nnz == 0
