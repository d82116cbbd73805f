"""BPR-MF (Rendle et al., UAI 2009): a free embedding per user and item, scored by dot product."""

from __future__ import annotations

import torch
from torch import nn

from gatedrec.models.base import Embeddings, RecommenderModel


class BPR(RecommenderModel):
    def __init__(self, dataset, params, device):
        super().__init__(dataset, params, device)
        dim = int(params["embedding_size"])
        self.user_emb = nn.Parameter(nn.init.xavier_normal_(torch.empty(self.n_users, dim)))
        self.item_emb = nn.Parameter(nn.init.xavier_normal_(torch.empty(self.n_items, dim)))

    def forward(self, users=None, items=None) -> Embeddings:
        user_rows = self.user_emb if users is None else self.user_emb.index_select(0, users)
        item_rows = self.item_emb if items is None else self.item_emb.index_select(0, items)
        return Embeddings(user_rows, item_rows, user_rows, item_rows)
