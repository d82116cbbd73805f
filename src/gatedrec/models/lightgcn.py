"""LightGCN (He et al., SIGIR 2020).

E^(0) = [user embeddings; item embeddings], E^(k+1) = Â E^(k) with Â = D^-1/2 A D^-1/2 of the training
graph, final E = mean(E^(0), ..., E^(K)); score y_ui = e_u · e_i. No weights, no non-linearity.
"""

from __future__ import annotations

import torch
from torch import nn

from gatedrec.models.base import Embeddings, Recommender
from gatedrec.models.graph import SymmetricOperator, light_propagate, normalized_adjacency


class LightGCN(Recommender):
    def __init__(self, dataset, params, device):
        super().__init__(dataset, params, device)
        dim = int(params["embedding_size"])
        self.n_layers = int(params["n_layers"])
        self.user_emb = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_users, dim)))
        self.item_emb = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_items, dim)))
        self.adjacency = SymmetricOperator(normalized_adjacency(dataset.train), device)

    def propagate(self, item_ego: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        final = light_propagate(self.adjacency, torch.cat([self.user_emb, item_ego]), self.n_layers)
        return final[: self.n_users], final[self.n_users :]

    def forward(self) -> Embeddings:
        users, items = self.propagate(self.item_emb)
        return Embeddings(users, items, self.user_emb, self.item_emb)
