"""Pairwise ranking loss and embedding regularisation shared by the models."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bpr_loss(user_emb: torch.Tensor, pos_emb: torch.Tensor, neg_emb: torch.Tensor) -> torch.Tensor:
    """-mean log sigmoid(y_ui - y_uj)."""
    margin = (user_emb * (pos_emb - neg_emb)).sum(dim=1)
    return -F.logsigmoid(margin).mean()


def l2_per_example(*embeddings: torch.Tensor) -> torch.Tensor:
    """Squared L2 norm of the batch's embeddings divided by the batch size."""
    batch_size = embeddings[0].shape[0]
    return sum(embedding.pow(2).sum() for embedding in embeddings) / batch_size
