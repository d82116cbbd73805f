import math

import numpy as np
import pytest
import torch

from gatedrec.evaluation import evaluator, per_user_metrics, top_k_lowest_id_on_ties


def test_metrics_match_hand_computed_values():
    # user 0: hits at ranks 1 and 3 out of 4 relevant; user 1: one relevant, hit at rank 2
    hits = np.array([[1, 0, 1, 0, 0], [0, 1, 0, 0, 0]], dtype=bool)
    values = per_user_metrics(hits, np.array([4, 1]), topks=(2, 5))
    assert values["recall@2"] == pytest.approx([1 / 4, 1.0])
    assert values["precision@2"] == pytest.approx([1 / 2, 1 / 2])
    assert values["hit@2"] == pytest.approx([1, 1])
    dcg0 = 1 + 1 / math.log2(4)
    idcg0_5 = sum(1 / math.log2(r + 2) for r in range(4))  # IDCG over min(4, 5) = 4 positions
    assert values["ndcg@5"] == pytest.approx([dcg0 / idcg0_5, (1 / math.log2(3)) / 1.0])
    idcg0_2 = 1 + 1 / math.log2(3)
    assert values["ndcg@2"] == pytest.approx([1 / idcg0_2, (1 / math.log2(3)) / 1.0])
    # MAP@5 of user 0: (P@1 + P@3) / min(4, 5) = (1 + 2/3) / 4; user 1: P@2 / 1
    assert values["map@5"] == pytest.approx([(1 + 2 / 3) / 4, 1 / 2])
    assert values["map@2"] == pytest.approx([1 / 2, 1 / 2])


def test_user_with_fewer_relevant_items_than_k_can_reach_one():
    hits = np.array([[1, 1, 0, 0]], dtype=bool)
    values = per_user_metrics(hits, np.array([2]), topks=(4,))
    assert values["recall@4"][0] == pytest.approx(1.0)
    assert values["ndcg@4"][0] == pytest.approx(1.0)
    assert values["map@4"][0] == pytest.approx(1.0)
    assert values["precision@4"][0] == pytest.approx(0.5)


def test_ties_are_broken_by_lower_item_id():
    scores = torch.tensor([[0.5, 0.9, 0.5, 0.9, 0.1, 0.5], [3.0, 2.0, 1.0, 0.0, -1.0, -2.0]])
    ranked = top_k_lowest_id_on_ties(scores, 4)
    assert ranked.tolist() == [[1, 3, 0, 2], [0, 1, 2, 3]]


def test_boundary_tie_takes_lowest_ids():
    scores = torch.zeros(1, 10)
    scores[0, 7] = 1.0
    assert top_k_lowest_id_on_ties(scores, 3).tolist() == [[7, 0, 1]]


@pytest.mark.parametrize("n_items", [16 * 8, 16 * 8 + 5, 16 * 60 + 15, 3000])
@pytest.mark.parametrize("draw", ["distinct", "few values", "masked"])
def test_ranking_from_the_shortlist_is_the_full_rankings(n_items, draw):
    generator = torch.Generator().manual_seed(n_items)
    if draw == "distinct":
        scores = torch.randn(40, n_items, generator=generator)
    else:  # many ties, also between groups' maxima
        scores = torch.randint(0, 6, (40, n_items), generator=generator).float()
    if draw == "masked":  # as the evaluator masks training items; some rows have fewer scores left than k
        scores[torch.rand(40, n_items, generator=generator) < 0.9] = float("-inf")
        scores[:5, 3:] = float("-inf")
    for k in (1, 5, 20):
        expected = torch.sort(scores, dim=1, descending=True, stable=True)
        values, _ = evaluator.top_values(scores, k)
        assert torch.equal(values, expected.values[:, :k])
        assert torch.equal(top_k_lowest_id_on_ties(scores, k), expected.indices[:, :k])


@pytest.mark.parametrize(
    "score_block, rank_block, rank_min_users",
    [(1 << 24, 1 << 20, 128), (7 * 120, 3 * 120, 1), (7 * 120, 3 * 120, 4), (120, 120, 1)],
)
def test_evaluation_in_blocks_matches_ranking_every_user_at_once(small_generated, monkeypatch, score_block, rank_block,
                                                                 rank_min_users):
    dataset = small_generated.dataset
    monkeypatch.setattr(evaluator, "SCORE_BLOCK_ELEMENTS", score_block)
    monkeypatch.setattr(evaluator, "RANK_BLOCK_ELEMENTS", rank_block)
    monkeypatch.setattr(evaluator, "RANK_MIN_USERS", rank_min_users)
    generator = torch.Generator().manual_seed(0)
    user_emb = torch.randn(dataset.n_users, 8, generator=generator)
    item_emb = torch.randn(dataset.n_items, 8, generator=generator).round(decimals=1)  # some tied scores
    result = evaluator.Evaluator(dataset, topks=(5, 20)).evaluate_embeddings(user_emb, item_emb, "test")

    scores = (user_emb @ item_emb.T).numpy()
    scores[dataset.train.toarray() > 0] = -np.inf
    test = dataset.test.toarray() > 0
    users = np.flatnonzero(test.any(axis=1))
    ranked = np.stack([np.lexsort((np.arange(dataset.n_items), -scores[user]))[:20] for user in users])
    expected = per_user_metrics(test[users[:, None], ranked], test[users].sum(axis=1), (5, 20))
    for name in ("recall@5", "recall@20", "ndcg@20"):
        assert result[name] == pytest.approx(expected[name].mean())
