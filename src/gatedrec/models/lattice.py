"""LATTICE (Zhang et al., "Mining Latent Structures for Multimedia Recommendation", MM 2021), in MMRec's form.

Per modality m, the raw features x^m (fine-tuned during training) are projected, f^m = W_m x^m + b_m; a
learned item-item graph keeps each item's k most cosine-similar items under f^m, weighted by that
similarity. The learned graphs are mixed by softmax-weighted modality weights and sym-normalised,
L = D^-1/2 A D^-1/2, then mixed with the equally weighted original graphs (the same construction on the
raw features, frozen): S = (1 - λ) L + λ Σ_m w_m L_m^orig. h = S^n_layers e^id. The user-item part is
LightGCN over D^-1 (A + I) (row-normalised, self-loops, as MMRec's LATTICE) with two layers; the final
item is its LightGCN embedding + h / ||h||. As in MMRec, the learned graph is rebuilt (with gradient) at
the first batch of each epoch and held fixed for the others, and rebuilt for evaluation; BPR plus
reg_weight · ½ squared L2 of the batch's final embeddings / batch size.

Graphs are kept sparse (k entries per row, top-k found in blocks): MMRec holds dense items x items
matrices.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from gatedrec.models.base import Embeddings
from gatedrec.models.graph import SparseGraph, SparseOperator, bipartite_adjacency, nearest_columns, row_normalize
from gatedrec.models.lightgcn import LightGCN
from gatedrec.models.losses import bpr_loss



def knn_graph(features: torch.Tensor, k: int) -> SparseGraph:
    """Each row's k largest cosine similarities (itself included), values differentiable in ``features``."""
    unit = F.normalize(features, dim=1)
    columns = nearest_columns(unit, unit, k).reshape(-1)
    rows = torch.arange(len(unit), device=unit.device).repeat_interleave(k)
    values = (unit.index_select(0, rows) * unit.index_select(0, columns)).sum(dim=1)
    return SparseGraph(rows, columns, values, len(unit))


def random_walk_adjacency(train: sp.csr_matrix) -> sp.csr_matrix:
    """D^-1 (A + I) for the bipartite A = [[0, R], [R^T, 0]]."""
    bipartite = bipartite_adjacency(train)
    return row_normalize(bipartite + sp.eye(bipartite.shape[0], dtype=np.float32, format="csr"))


class LATTICE(LightGCN):
    needs_modalities = True

    def __init__(self, dataset, params, device):
        super().__init__(dataset, params, device)
        self.k, self.item_layers = int(params["knn_k"]), int(params["item_graph_layers"])
        self.lambda_coeff = float(params["lambda_coeff"])
        raw = [torch.tensor(m.features, dtype=torch.float32, device=device) for m in dataset.modalities.values()]
        self.features = nn.ParameterList(nn.Parameter(table) for table in raw)
        self.projections = nn.ModuleList(nn.Linear(table.shape[1], int(params["feat_embed_dim"])) for table in raw)
        self.modal_weight = nn.Parameter(torch.full((len(raw),), 1.0 / len(raw)))
        self.original = [knn_graph(table, self.k).sym_normalized().detached() for table in raw]
        self.rebuild = True
        self.item_graph: SparseGraph | None = None

    def graph_operator(self, train: sp.csr_matrix) -> SparseOperator:
        return SparseOperator(random_walk_adjacency(train), self.device, symmetric=False)

    def start_epoch(self, rng: np.random.Generator) -> None:
        super().start_epoch(rng)
        self.rebuild = True

    def build_item_graph(self) -> SparseGraph:
        weights = torch.softmax(self.modal_weight, dim=0)
        learned = SparseGraph.concat([
            knn_graph(projection(table), self.k).scaled(weight)
            for table, projection, weight in zip(self.features, self.projections, weights)
        ]).sym_normalized()
        original = SparseGraph.concat([graph.scaled(weight) for graph, weight in zip(self.original, weights)])
        return SparseGraph.concat([learned.scaled(1.0 - self.lambda_coeff), original.scaled(self.lambda_coeff)])

    def current_item_graph(self) -> SparseGraph:
        """Rebuilt with gradient at an epoch's first batch and for evaluation; held fixed otherwise."""
        if not self.training or self.rebuild or self.item_graph is None:
            graph = self.build_item_graph()
            self.item_graph = graph.detached()
            self.rebuild = False
            return graph
        return self.item_graph

    def forward(self, users=None, items=None) -> Embeddings:
        graph = self.current_item_graph()
        h = self.item_emb
        for _ in range(self.item_layers):
            h = graph @ h
        return self.propagate(self.item_emb, users, items,
                              lambda rows: F.normalize(h if rows is None else h.index_select(0, rows), dim=1))

    def embedding_loss(self, batch: Embeddings) -> torch.Tensor:
        n_pairs = batch.users.shape[0]
        positives, negatives = batch.items.split(n_pairs)
        squared = 0.5 * (batch.users.pow(2).sum() + positives.pow(2).sum() + negatives.pow(2).sum()) / n_pairs
        return bpr_loss(batch.users, positives, negatives) + self.reg_weight * squared
