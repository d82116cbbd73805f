"""A frozen content item-item graph that lets items with similar content share what their interactions
taught them: h = S^L x with S = Σ_m w_m S_m over the modalities' kNN graphs S_m (as in FREEDOM).

The mixture weights w are fixed (the modality named ``text`` weighs ``text_weight``, the others share
the rest; FREEDOM uses 0.9 text), learned (ours: w = softmax of one logit per modality, trained with
the model, so the data decide which modality's neighbours to trust) or per item by agreement (ours: item i's
fixed weights times exp(prior a_i^m), renormalised, with a_i^m its modality's agreement with its interactions,
gatedrec.models.reliability: an item whose text contradicts its buyers takes its neighbours from its image).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from gatedrec.cache import cached_sparse, content_key
from gatedrec.data import Modality
from gatedrec.errors import GatedRecError
from gatedrec.models.graph import SparseOperator, knn_item_graph, repeated_spmm_rows, spmm, spmm_rows
from gatedrec.models.reliability import modality_agreement

MIXES = ("fixed", "learned", "agreement")
KNN_GRAPH_VERSION = "cosine, self included, rows sum to one"
LOGIT_LR_SCALE = 10.0  # one logit per modality: at the embeddings' rate it would barely move in a run


class ContentItemGraph(nn.Module):
    def __init__(self, modalities: dict[str, Modality], k: int, layers: int, mix: str, text_weight: float,
                 device: torch.device | str = "cpu", interactions: sp.csr_matrix | None = None,
                 agreement_prior: float = 0.0):
        super().__init__()
        if mix not in MIXES:
            raise GatedRecError(f"item_graph_mix '{mix}' is unknown; choose one of {', '.join(MIXES)}")
        self.layers = layers
        graphs = [cached_knn_graph(m, k) for m in modalities.values()]
        self.logits = None
        if mix == "learned":
            self.logits = nn.Parameter(torch.zeros(len(graphs)))
            self.operators = [SparseOperator(graph, device, symmetric=False) for graph in graphs]
        else:  # one product with the mixed graph instead of one per modality
            trust = agreement_trust(modalities, interactions, agreement_prior) if mix == "agreement" else None
            self.operators = [SparseOperator(mixed_graph(modalities, graphs, text_weight, trust), device,
                                             symmetric=False)]

    def weights(self) -> torch.Tensor:
        """The modality graphs' weights in the mix (learned ones only: a fixed mix is one graph)."""
        return torch.softmax(self.logits, dim=0)

    def forward(self, table: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Rows ``rows`` (all when None) of S^L table."""
        if self.logits is None:
            return repeated_spmm_rows(self.operators[0], table, self.layers, rows)
        weights = self.weights()
        for _ in range(self.layers - 1):
            table = sum(weight * spmm(operator, table) for weight, operator in zip(weights, self.operators))
        if self.layers == 0:
            return table if rows is None else table.index_select(0, rows)
        parts = [spmm(operator, table) if rows is None else spmm_rows(operator, table, rows)
                 for operator in self.operators]
        return sum(weight * part for weight, part in zip(weights, parts))

    def parameter_groups(self) -> list[dict]:
        return [{"params": [self.logits], "lr_scale": LOGIT_LR_SCALE}] if self.logits is not None else []


def cached_knn_graph(modality: Modality, k: int, candidates: np.ndarray | None = None,
                     queries: np.ndarray | None = None) -> sp.csr_matrix:
    """The modality's kNN graph (rows for ``queries``, neighbours among ``candidates``, when given), from the
    disk cache when the same features were seen before."""
    key = content_key(KNN_GRAPH_VERSION, modality.features, modality.present, k, candidates, queries)
    return cached_sparse("knn", key,
                         lambda: knn_item_graph(modality.features, modality.present, k, candidates, queries))


def agreement_trust(modalities: dict[str, Modality], interactions: sp.csr_matrix, prior: float) -> np.ndarray:
    """(items, modalities) exp(prior a_i^m): how much more than its fixed weight each item trusts each modality."""
    agreement = np.stack([modality_agreement(interactions, m.features, m.present) for m in modalities.values()],
                         axis=1)
    return np.exp(prior * agreement)


def mixed_graph(modalities: dict[str, Modality], graphs: list[sp.csr_matrix], text_weight: float,
                trust: np.ndarray | None = None) -> sp.csr_matrix:
    """Σ_m w_m S_m with each item's weights renormalised over the modalities it has: an item without an
    image takes all its neighbours from its text graph (masked, as in the gate), rows still sum to one.
    ``trust`` (items, modalities), when given, multiplies each item's weights before the renormalisation."""
    presence = np.stack([m.present for m in modalities.values()], axis=1)
    weighted = presence * trust if trust is not None else presence
    row_weights = per_item_mix(weighted, fixed_weights(list(modalities), text_weight))
    parts = [sp.diags(row_weights[:, index].astype(np.float32)) @ graph for index, graph in enumerate(graphs)]
    return sum(parts[1:], parts[0]).tocsr()


def per_item_mix(presence: np.ndarray, weights: list[float]) -> np.ndarray:
    """(items, modalities) each item's modality weights renormalised over the modalities it has (zero for an
    item with none)."""
    presence = presence.astype(np.float64)  # or any non-negative per-item factors, zero where absent
    row_total = presence @ np.array(weights)
    return np.divide(presence * np.array(weights), row_total[:, None], out=np.zeros_like(presence),
                     where=row_total[:, None] > 0)


def warm_neighbour_graph(modalities: dict[str, Modality], warm: np.ndarray, k: int,
                         text_weight: float) -> sp.csr_matrix:
    """Rows of the cold items (not ``warm``): each cold item's k content-nearest warm items per modality,
    mixed as the item graph mixes them; a modality the cold item lacks adds nothing."""
    graphs = [cached_knn_graph(m, k, candidates=warm, queries=~warm) for m in modalities.values()]
    return mixed_graph(modalities, graphs, text_weight)


def fixed_weights(names: list[str], text_weight: float) -> list[float]:
    """``text_weight`` for the modality named text and the rest shared by the others; equal weights when
    no modality is named text or it is the only one."""
    if "text" in names and len(names) > 1:
        return [text_weight if name == "text" else (1 - text_weight) / (len(names) - 1) for name in names]
    return [1 / len(names)] * len(names)


def rescaled_to_norm(neighbour_mean: torch.Tensor, neighbour_norm: torch.Tensor, scale: float) -> torch.Tensor:
    """The neighbours' weighted mean embedding stretched to their weighted mean norm, times ``scale`` (a plain
    mean is shorter than its parts and would rank every item made of it low)."""
    return neighbour_mean * (neighbour_norm / neighbour_mean.norm(dim=1, keepdim=True).clamp(min=1e-12)) * scale
