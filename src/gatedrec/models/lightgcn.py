"""LightGCN (He et al., SIGIR 2020).

E^(0) = [user embeddings; item embeddings], E^(k+1) = Â E^(k) with Â = D^-1/2 A D^-1/2 of the training
graph, final E = mean(E^(0), ..., E^(K)); score y_ui = e_u · e_i. No weights, no non-linearity.

edge_dropout p > 0 (a switch, as in FREEDOM): each epoch trains on a subgraph keeping a share 1 - p of
the training edges, drawn without replacement with probability ∝ 1/sqrt(d_u d_i), so edges between
high-degree nodes are dropped most; evaluation always uses the full graph.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from gatedrec.models.base import Embeddings, RecommenderModel
from gatedrec.models.graph import BipartiteGraph, SparseOperator, propagate_all, propagate_rows

# rows (None: all items) -> what a model adds to those items' propagated embeddings
ItemTerm = Callable[[torch.Tensor | None], torch.Tensor]


class LightGCN(RecommenderModel):
    def __init__(self, dataset, params, device):
        super().__init__(dataset, params, device)
        dim = int(params["embedding_size"])
        self.n_layers = int(params["n_layers"])
        self.user_emb = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_users, dim)))
        self.item_emb = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_items, dim)))
        self.train_matrix, self.device = dataset.train, device
        self.adjacency = self.graph_operator(dataset.train)
        self.edge_dropout = float(params["edge_dropout"])
        self.epoch_adjacency = self.adjacency

    def graph_operator(self, train: sp.csr_matrix) -> BipartiteGraph | SparseOperator:
        """The propagation matrix of a set of training interactions: Â = D^-1/2 A D^-1/2, kept as its two sides."""
        return BipartiteGraph(train, self.device)

    def start_epoch(self, rng: np.random.Generator) -> None:
        if self.edge_dropout > 0:
            kept = degree_sensitive_subgraph(self.train_matrix, 1.0 - self.edge_dropout, rng)
            self.epoch_adjacency = self.graph_operator(kept)

    def propagate(self, item_ego: torch.Tensor, users=None, items=None, item_term: ItemTerm | None = None,
                  distinct_items: Distinct | None = None) -> Embeddings:
        """Final and ego embeddings of all users and items, or of the rows ``users`` and ``items``. ``item_term``
        gives what a model adds to the propagated embeddings of the items asked for (all when None): it is asked
        once per distinct item of a batch (a batch's positives and negatives repeat items). ``distinct_items``:
        distinct(items), when the caller has it already."""
        adjacency = self.epoch_adjacency if self.training else self.adjacency
        if users is None:
            final_users, final_items = propagate_all(adjacency, self.user_emb, item_ego, self.n_layers)
            return Embeddings(final_users, with_term(final_items, item_term, None), self.user_emb, item_ego)
        user_rows, user_where = distinct(users, self.n_users)
        item_rows, item_where = distinct_items or distinct(items, self.n_items)
        final_users, final_items, *egos = propagate_rows(adjacency, self.user_emb, item_ego, self.n_layers, user_rows,
                                                         item_rows)
        tables = (final_users, with_term(final_items, item_term, item_rows), *egos)
        wheres = (user_where, item_where, user_where, item_where)
        return Embeddings(*(table.index_select(0, where) for table, where in zip(tables, wheres)))

    def forward(self, users=None, items=None) -> Embeddings:
        return self.propagate(self.item_emb, users, items)


class Distinct(NamedTuple):
    rows: torch.Tensor  # the distinct ids, ascending
    where: torch.Tensor  # each id's position among them


def distinct(ids: torch.Tensor, size: int) -> Distinct:
    """The distinct ids among ``size`` possible ones (0 to size - 1) and where each id lies among them. Ids that
    cover much of their range are marked in a mask instead of sorted: half torch.unique's time for a batch's
    items on Baby, twice it for its users."""
    if 4 * len(ids) < size:
        return Distinct(*torch.unique(ids, return_inverse=True))
    rows = torch.zeros(size, dtype=torch.bool, device=ids.device).index_fill_(0, ids, True).nonzero().squeeze(1)
    position = torch.empty(size, dtype=torch.long, device=ids.device)
    position.index_copy_(0, rows, torch.arange(len(rows), device=ids.device))
    return Distinct(rows, position.index_select(0, ids))


def with_term(final_items: torch.Tensor, item_term: ItemTerm | None, rows: torch.Tensor | None) -> torch.Tensor:
    return final_items if item_term is None else final_items + item_term(rows)


def degree_sensitive_subgraph(train: sp.csr_matrix, keep_share: float, rng: np.random.Generator) -> sp.csr_matrix:
    """Keep round(keep_share · edges) edges, drawn without replacement with weight 1/sqrt(d_u d_i)
    (Gumbel top-k: the kept set has exactly the law of sequential weighted sampling)."""
    coo = train.tocoo()
    user_degree = np.asarray(train.sum(axis=1)).ravel()
    item_degree = np.asarray(train.sum(axis=0)).ravel()
    log_weight = -0.5 * (np.log(user_degree[coo.row]) + np.log(item_degree[coo.col]))
    keys = log_weight + rng.gumbel(size=coo.nnz)
    n_keep = max(1, int(round(keep_share * coo.nnz)))
    kept = np.argpartition(-keys, n_keep - 1)[:n_keep]
    return sp.csr_matrix((coo.data[kept], (coo.row[kept], coo.col[kept])), shape=train.shape)
