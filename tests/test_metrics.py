import math

import numpy as np
import pytest
import torch

from gatedrec.evaluation import per_user_metrics, top_k_lowest_id_on_ties


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
