"""FREEDOM (Zhou & Shen, "A Tale of Two Graphs: Freezing and Denoising Graph Structures for Multimodal
Recommendation", MM 2023).

Two graphs. A frozen item-item graph S: each modality's cosine kNN graph of the raw features (k
neighbours, the item itself included, rows normalised), mixed 0.9 text + 0.1 the rest; it gives
h = S^L e_item. The user-item graph is denoised by degree-sensitive edge pruning: each epoch trains
LightGCN on a share 1 - edge_dropout of the edges (the full graph at evaluation). Final user = LightGCN
user; final item = LightGCN item + h. Loss: BPR, plus modality_loss_weight · BPR of the final user
against each modality's linear projection of the raw features. As in FREEDOM, no L2 on embeddings.
"""

from __future__ import annotations

import torch

from gatedrec.models.base import Embeddings
from gatedrec.models.fusion import RawProjections
from gatedrec.models.item_graph import ContentItemGraph
from gatedrec.models.lightgcn import LightGCN
from gatedrec.models.losses import bpr_loss


class FREEDOM(LightGCN):
    needs_modalities = True

    def __init__(self, dataset, params, device):
        super().__init__(dataset, params, device)
        self.item_graph = ContentItemGraph(dataset.modalities, int(params["knn_k"]), int(params["item_graph_layers"]),
                                           "fixed", float(params["text_graph_weight"]), device)
        self.modality_loss_weight = float(params["modality_loss_weight"])
        self.raw = RawProjections(dataset.modalities, int(params["embedding_size"]), device)

    def forward(self, users=None, items=None) -> Embeddings:
        return self.propagate(self.item_emb, users, items, lambda rows: self.item_graph(self.item_emb, rows))

    def loss(self, users, pos_items, neg_items):
        batch = self(users, torch.cat([pos_items, neg_items]))
        total = self.embedding_loss(batch)
        if self.modality_loss_weight > 0:
            for positives, negatives in zip(self.raw(pos_items), self.raw(neg_items)):
                total = total + self.modality_loss_weight * bpr_loss(batch.users, positives, negatives)
        return total
