"""How far each item's modality agrees with what its interactions say: the gate's reliability input.

For item i and modality m, with x_j the centred features of the items that have m: the collaborative view of i
is the mean, over i's training users u, of the mean features of u's other items,
c_i = Σ_{u ∋ i} (Σ_{j ∈ N(u), j ≠ i} x_j) / (n_u - 1) (up to a positive factor, which a cosine ignores), and the
agreement is a_i = cos(x_i, c_i). An image that shows what the item's buyers also buy agrees; a blurred, wrong
or random one does not, and the features alone cannot tell (a random vector with the features' mean and
covariance looks like any other item's). The agreements are standardised over the items that have one; an item
without training interactions, without the modality or without a user who bought another item with it gets 0,
the average. Only the training interactions are read.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def modality_agreement(interactions: sp.csr_matrix, features: np.ndarray, present: np.ndarray) -> np.ndarray:
    """(items,) standardised agreement of each item's features with its users' other items (0: unknown)."""
    centred = np.where(present[:, None], features - features[present].mean(axis=0), 0.0).astype(np.float32)
    bought = (interactions > 0).astype(np.float32).tocsr()
    others = bought @ present.astype(np.float32) - 1.0  # per user: the other items that have the modality
    weight = np.divide(1.0, others, out=np.zeros_like(others), where=others > 0)
    user_sums = sp.diags(weight) @ (bought @ centred)
    collaborative = bought.T @ user_sums - centred * (bought.T @ weight)[:, None]
    norms = np.linalg.norm(centred, axis=1) * np.linalg.norm(collaborative, axis=1)
    known = present & (norms > 1e-12)
    agreement = np.zeros(len(features), dtype=np.float32)
    agreement[known] = (centred[known] * collaborative[known]).sum(axis=1) / norms[known]
    if known.sum() > 1:
        values = agreement[known]
        agreement[known] = (values - values.mean()) / max(float(values.std()), 1e-6)
    return agreement


def agreement_table(interactions: sp.csr_matrix, features: list[np.ndarray], presence: np.ndarray) -> np.ndarray:
    """(items, modalities): each modality's agreement, one column each."""
    columns = [modality_agreement(interactions, table, presence[:, index]) for index, table in enumerate(features)]
    return np.stack(columns, axis=1)
