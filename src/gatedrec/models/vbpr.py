"""VBPR (He & McAuley, "VBPR: Visual Bayesian Personalized Ranking from Implicit Feedback", AAAI 2016),
in MMRec's form: an item is [e_i^id || W x_i + b], x_i the concatenation of all its modality features; a
user is one free vector of twice the embedding size; y_ui = e_u · e_i. L2 on the batch's user and item
vectors (content part included). A modality an item lacks contributes zeros to x_i.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gatedrec.models.base import Embeddings, RecommenderModel


class VBPR(RecommenderModel):
    needs_modalities = True

    def __init__(self, dataset, params, device):
        super().__init__(dataset, params, device)
        dim = int(params["embedding_size"])
        features = np.concatenate([m.features for m in dataset.modalities.values()], axis=1)
        self.register_buffer("features", torch.tensor(features, dtype=torch.float32))
        self.user_emb = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_users, 2 * dim)))
        self.item_emb = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_items, dim)))
        self.projection = nn.Linear(features.shape[1], dim)

    def forward(self, users=None, items=None) -> Embeddings:
        user_rows = self.user_emb if users is None else self.user_emb.index_select(0, users)
        item_ids = self.item_emb if items is None else self.item_emb.index_select(0, items)
        content = self.projection(self.features if items is None else self.features[items])
        item_rows = torch.cat([item_ids, content], dim=1)
        return Embeddings(user_rows, item_rows, user_rows, item_rows)
