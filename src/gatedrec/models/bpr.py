"""BPR-MF (Rendle et al., UAI 2009): a free embedding per user and item, scored by dot product."""

from __future__ import annotations

import torch
from torch import nn

from gatedrec.models.base import Embeddings, Recommender


class BPR(Recommender):
    def __init__(self, dataset, params, device):
        super().__init__(dataset, params, device)
        dim = int(params["embedding_size"])
        self.user_emb = nn.Parameter(nn.init.xavier_normal_(torch.empty(self.n_users, dim)))
        self.item_emb = nn.Parameter(nn.init.xavier_normal_(torch.empty(self.n_items, dim)))

    def forward(self) -> Embeddings:
        return Embeddings(self.user_emb, self.item_emb, self.user_emb, self.item_emb)
