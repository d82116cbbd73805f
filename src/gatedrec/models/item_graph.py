"""A frozen content item-item graph that lets items with similar content share what their interactions
taught them: h = Σ_m w_m S_m^L x over the modalities' kNN graphs S_m (as in FREEDOM).

The mixture weights w are fixed (the modality named ``text`` weighs ``text_weight``, the others share
the rest; FREEDOM uses 0.9 text) or learned (ours: w = softmax of one logit per modality, trained with
the model, so the data decide which modality's neighbours to trust).
"""

from __future__ import annotations

import torch
from torch import nn

from gatedrec.data import Modality
from gatedrec.errors import GatedRecError
from gatedrec.models.graph import SparseOperator, knn_item_graph, repeated_spmm_rows

MIXES = ("fixed", "learned")
LOGIT_LR_SCALE = 10.0  # one logit per modality: at the embeddings' rate it would barely move in a run


class ContentItemGraph(nn.Module):
    def __init__(self, modalities: dict[str, Modality], k: int, layers: int, mix: str, text_weight: float,
                 device: torch.device | str = "cpu"):
        super().__init__()
        if mix not in MIXES:
            raise GatedRecError(f"item_graph_mix '{mix}' is unknown; choose one of {', '.join(MIXES)}")
        self.names = list(modalities)
        self.layers = layers
        self.operators = [SparseOperator(knn_item_graph(m.features, m.present, k), device, symmetric=False)
                          for m in modalities.values()]
        self.logits = nn.Parameter(torch.zeros(len(self.names))) if mix == "learned" else None
        self.register_buffer("fixed_weights", fixed_weights(self.names, text_weight))

    def weights(self) -> torch.Tensor:
        return torch.softmax(self.logits, dim=0) if self.logits is not None else self.fixed_weights

    def forward(self, table: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Rows ``rows`` (all when None) of Σ_m w_m S_m^L table."""
        parts = [repeated_spmm_rows(operator, table, self.layers, rows) for operator in self.operators]
        return sum(weight * part for weight, part in zip(self.weights(), parts))

    def parameter_groups(self) -> list[dict]:
        return [{"params": [self.logits], "lr_scale": LOGIT_LR_SCALE}] if self.logits is not None else []


def fixed_weights(names: list[str], text_weight: float) -> torch.Tensor:
    """``text_weight`` for the modality named text and the rest shared by the others; equal weights when
    no modality is named text or it is the only one."""
    if "text" in names and len(names) > 1:
        weights = [text_weight if name == "text" else (1 - text_weight) / (len(names) - 1) for name in names]
    else:
        weights = [1 / len(names)] * len(names)
    return torch.tensor(weights, dtype=torch.float32)
