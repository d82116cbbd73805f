"""Top-K ranking metrics from a hit matrix.

``hits[u, r]`` is True when the item user u ranks at position r (0-based) is one of the user's held-out
items; ``n_relevant[u]`` is the number of held-out items. Definitions (binary relevance):
Recall@K = hits / n_relevant; Precision@K = hits / K; Hit@K = 1 if any hit;
NDCG@K = Σ_r hit_r / log2(r + 2) divided by the IDCG over min(n_relevant, K) positions;
MAP@K = Σ_r Precision@(r+1) · hit_r / min(n_relevant, K).
"""

from __future__ import annotations

import numpy as np

METRICS = ("recall", "ndcg", "precision", "map", "hit")
TOPKS = (5, 10, 20, 50)


def per_user_metrics(hits: np.ndarray, n_relevant: np.ndarray, topks=TOPKS) -> dict[str, np.ndarray]:
    """Per-user values of every metric at every K, keyed ``metric@K``."""
    hits = hits.astype(np.float64)
    if hits.shape[1] < max(topks):  # a catalogue smaller than K: the missing positions hold no hit
        hits = np.pad(hits, ((0, 0), (0, max(topks) - hits.shape[1])))
    n_relevant = n_relevant.astype(np.float64)
    positions = np.arange(1, hits.shape[1] + 1, dtype=np.float64)
    discounts = 1.0 / np.log2(positions + 1.0)
    cumulative_hits = np.cumsum(hits, axis=1)
    dcg = np.cumsum(hits * discounts, axis=1)
    ideal = np.cumsum(discounts)
    precision_sum = np.cumsum(hits * cumulative_hits / positions, axis=1)
    results = {}
    for k in topks:
        hit_count = cumulative_hits[:, k - 1]
        relevant_in_k = np.minimum(n_relevant, k)
        results[f"recall@{k}"] = hit_count / n_relevant
        results[f"ndcg@{k}"] = dcg[:, k - 1] / ideal[relevant_in_k.astype(np.int64) - 1]
        results[f"precision@{k}"] = hit_count / k
        results[f"map@{k}"] = precision_sum[:, k - 1] / relevant_in_k
        results[f"hit@{k}"] = (hit_count > 0).astype(np.float64)
    return results


def mean_metrics(per_user: dict[str, np.ndarray]) -> dict[str, float]:
    return {name: float(values.mean()) for name, values in per_user.items()}
