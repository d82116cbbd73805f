"""GRCN (Wei et al., "Graph-Refined Convolutional Network for Multimedia Recommendation with Implicit
Feedback", MM 2020), in MMRec's form.

Per modality, items' content c_i^m = norm(lrelu(W_m x_i^m)) and a free user preference p_u^m (normalised)
meet in one attention layer over the user-item graph (both directions): a_ij = softmax over i's in-edges
of <x_i, x_j>; the modality's representation is x + Σ_j a_ij x_j. Before it, n_layers routing rounds
move each user's preference towards its items (p_u <- norm(p_u + Σ_i a_ui c_i)). The refined graph: each
edge's weight is the largest over modalities of a_ij^m times the source node's learned confidence in that
modality, clipped at zero (pruning). The ID part is two weight-only graph layers over the refined graph, e + h1 + h2
on normalised ID embeddings. A node is [ID part ; each modality's representation]; y_ui = r_u · r_i.
Loss: BPR plus reg_weight · (mean squared ID embedding of the batch's nodes + mean squared preferences).

Differences from MMRec's code, which follow the paper: routing rounds update the users (MMRec's edge
direction sends its routing messages to the items only, leaving the preferences unchanged).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gatedrec.models.base import NodeRepresentationRecommender
from gatedrec.models.graph import SparseGraph


class ContentAttention(nn.Module):
    def __init__(self, features, n_users: int, dim: int, routing: int):
        super().__init__()
        self.register_buffer("features", torch.tensor(features, dtype=torch.float32))
        self.projection = nn.Linear(features.shape[1], dim)
        nn.init.xavier_normal_(self.projection.weight)
        self.preference = nn.Parameter(nn.init.xavier_normal_(torch.empty(n_users, dim)))
        self.routing = routing

    def forward(self, to_users: SparseGraph, both_ways: SparseGraph) -> tuple[torch.Tensor, torch.Tensor]:
        """The modality's node representations and its attention weight of every edge in ``both_ways``."""
        content = F.normalize(F.leaky_relu(self.projection(self.features)), dim=1)
        preference = F.normalize(self.preference, dim=1)
        for _ in range(self.routing):
            nodes = torch.cat([preference, content])
            attention = attended(to_users, nodes)
            preference = F.normalize(preference + attention @ nodes, dim=1)
        nodes = torch.cat([preference, content])
        attention = attended(both_ways, nodes)
        return nodes + attention @ nodes, attention.values


def attended(graph: SparseGraph, nodes: torch.Tensor) -> SparseGraph:
    """Edge weights softmax_j <x_i, x_j> over each node i's in-edges."""
    scores = (nodes.index_select(0, graph.rows) * nodes.index_select(0, graph.columns)).sum(dim=1)
    return SparseGraph(graph.rows, graph.columns, scores, graph.size).softmax_by_row()


class GRCN(NodeRepresentationRecommender):
    needs_modalities = True

    def __init__(self, dataset, params, device):
        super().__init__(dataset, params, device)
        dim, n_nodes = int(params["embedding_size"]), self.n_users + self.n_items
        train = dataset.train.tocoo()
        users = torch.as_tensor(train.row, dtype=torch.long, device=device)
        items = torch.as_tensor(train.col, dtype=torch.long, device=device) + self.n_users
        ones = torch.ones(len(users), device=device)
        self.to_users = SparseGraph(users, items, ones, self.n_users)  # routing updates the users alone
        self.both_ways = SparseGraph(torch.cat([users, items]), torch.cat([items, users]), ones.repeat(2), n_nodes)
        self.id_embedding = nn.Parameter(nn.init.xavier_normal_(torch.empty(n_nodes, dim)))
        self.modalities = nn.ModuleList(
            ContentAttention(m.features, self.n_users, int(params["latent_dim"]), int(params["n_layers"]))
            for m in dataset.modalities.values()
        )
        self.confidence = nn.Parameter(nn.init.xavier_normal_(torch.empty(n_nodes, len(self.modalities))))

    def representation(self) -> torch.Tensor:
        parts = [modality(self.to_users, self.both_ways) for modality in self.modalities]
        attention = torch.stack([weights for _, weights in parts], dim=1)
        # as in GRCN, an edge i <- j is weighted by its source j's confidence in each modality
        confidence = self.confidence.index_select(0, self.both_ways.columns)
        weights = torch.relu((attention * confidence).max(dim=1).values)
        refined = SparseGraph(self.both_ways.rows, self.both_ways.columns, weights, self.both_ways.size)
        x = F.normalize(self.id_embedding, dim=1)
        first = refined @ x
        second = refined @ first
        return torch.cat([x + first + second, *(nodes for nodes, _ in parts)], dim=1)

    def extra_penalty(self, users: torch.Tensor) -> torch.Tensor:
        return sum(modality.preference.index_select(0, users).pow(2).mean() for modality in self.modalities)
