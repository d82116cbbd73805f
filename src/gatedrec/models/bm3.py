"""BM3 (Zhou et al., "Bootstrap Latent Representations for Multi-modal Recommendation", WWW 2023), in
MMRec's form.

No negative sampling. A LightGCN over ID embeddings gives h_u and h_i (+ e_i^id); a shared predictor
p(·) makes the online view, dropout on the detached embeddings the target view. For each training pair
(u, i): 1 - cos(p(h_u), target_i) + 1 - cos(p(h_i), target_u), plus, per modality m with f_i^m = W_m x_i^m,
cl_weight · [1 - cos(p(f_i^m), target_i) + 1 - cos(p(f_i^m), dropout(f_i^m))], plus reg_weight times the
Frobenius norms of all users' and items' embeddings divided by the number of items. Scores p(h_u) · p(h_i).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gatedrec.models.base import Embeddings
from gatedrec.models.fusion import RawProjections
from gatedrec.models.lightgcn import LightGCN


def negative_cosine(online: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return 1 - F.cosine_similarity(online, target.detach(), dim=-1).mean()


class BM3(LightGCN):
    needs_modalities = True

    def __init__(self, dataset, params, device):
        super().__init__(dataset, params, device)
        dim = int(params["embedding_size"])
        self.dropout = float(params["dropout"])
        self.cl_weight = float(params["cl_weight"])
        self.predictor = nn.Linear(dim, dim)
        nn.init.xavier_normal_(self.predictor.weight)
        self.raw = RawProjections(dataset.modalities, dim, device, xavier_normal=True)

    def graph_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        users, items, _, item_ids = self.propagate(self.item_emb)
        return users, items + item_ids

    def forward(self, users=None, items=None) -> Embeddings:
        all_users, all_items = self.graph_embeddings()
        user_rows = all_users if users is None else all_users.index_select(0, users)
        item_rows = all_items if items is None else all_items.index_select(0, items)
        return Embeddings(self.predictor(user_rows), self.predictor(item_rows), user_rows, item_rows)

    def loss(self, users, pos_items, neg_items):
        all_users, all_items = self.graph_embeddings()
        user_rows, item_rows = all_users.index_select(0, users), all_items.index_select(0, pos_items)
        with torch.no_grad():
            user_target = F.dropout(user_rows, self.dropout)
            item_target = F.dropout(item_rows, self.dropout)
        total = negative_cosine(self.predictor(user_rows), item_target)
        total = total + negative_cosine(self.predictor(item_rows), user_target)
        for content in self.raw(pos_items):
            with torch.no_grad():
                content_target = F.dropout(content, self.dropout)
            online = self.predictor(content)
            contrast = negative_cosine(online, item_target) + negative_cosine(online, content_target)
            total = total + self.cl_weight * contrast
        reg = (all_users.norm() + all_items.norm()) / self.n_items
        return total + self.reg_weight * reg
