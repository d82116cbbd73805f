"""MMGCN (Wei et al., "MMGCN: Multi-modal Graph Convolution Network for Personalized Recommendation of
Micro-video", MM 2019), in MMRec's form.

One graph network per modality over the user-item graph. Its input is [p_u ; x_i^m]: a free user
preference vector and the item's features, L2-normalised; as in MMRec the text modality enters raw and
every other one through a linear layer to latent_dim. Each of n_layers
layers: h = lrelu(mean over neighbours of x W), x̂ = lrelu(W' x) + e^id, x = lrelu(G [h ; x̂]). A node's
representation is the mean over modalities; y_ui = r_u · r_i. Loss: BPR plus reg_weight · (mean squared
ID embedding of the batch's users and items + mean squared preference of the first projected modality,
MMRec's visual one).

Differences from MMRec's code, which follow the paper: the ID embeddings and user preferences are
trained (MMRec keeps them as plain tensors outside the optimiser); the layer count is read from
n_layers (MMRec's code runs 3 layers whatever its YAML says; 3 is the default here).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gatedrec.models.base import NodeRepresentationRecommender
from gatedrec.models.graph import SparseOperator, bipartite_adjacency, row_normalize, spmm


class ModalityGraphNetwork(nn.Module):
    def __init__(self, features: np.ndarray, n_users: int, dim: int, n_layers: int, latent_dim: int | None):
        super().__init__()
        self.register_buffer("features", torch.tensor(features, dtype=torch.float32))
        width = features.shape[1]
        self.projection = nn.Linear(width, latent_dim) if latent_dim else None
        input_dim = latent_dim if self.projection is not None else width
        self.preference = nn.Parameter(nn.init.xavier_normal_(torch.empty(n_users, input_dim)))
        widths = [input_dim] + [dim] * n_layers
        self.convolutions = nn.ParameterList(
            nn.Parameter(nn.init.xavier_normal_(torch.empty(width_in, width_in))) for width_in in widths[:-1]
        )
        self.linears = nn.ModuleList(nn.Linear(width_in, dim) for width_in in widths[:-1])
        self.combines = nn.ModuleList(nn.Linear(width_in + dim, dim) for width_in in widths[:-1])
        for module in [*self.linears, *self.combines]:
            nn.init.xavier_normal_(module.weight)

    def forward(self, aggregation: SparseOperator, id_embedding: torch.Tensor) -> torch.Tensor:
        items = self.projection(self.features) if self.projection is not None else self.features
        x = F.normalize(torch.cat([self.preference, items]), dim=1)
        for convolution, linear, combine in zip(self.convolutions, self.linears, self.combines):
            h = F.leaky_relu(spmm(aggregation, x @ convolution))
            x_hat = F.leaky_relu(linear(x)) + id_embedding
            x = F.leaky_relu(combine(torch.cat([h, x_hat], dim=1)))
        return x


class MMGCN(NodeRepresentationRecommender):
    needs_modalities = True

    def __init__(self, dataset, params, device):
        super().__init__(dataset, params, device)
        dim = int(params["embedding_size"])
        self.aggregation = SparseOperator(row_normalize(bipartite_adjacency(dataset.train)), device, symmetric=False)
        self.id_embedding = nn.Parameter(nn.init.xavier_normal_(torch.empty(self.n_users + self.n_items, dim)))
        self.networks = nn.ModuleList(
            ModalityGraphNetwork(m.features, self.n_users, dim, int(params["n_layers"]),
                                 None if name == "text" else int(params["latent_dim"]))
            for name, m in dataset.modalities.items()
        )
        projected = [network for network in self.networks if network.projection is not None]
        self.regularised_preference = (projected or list(self.networks))[0]

    def representation(self) -> torch.Tensor:
        return sum(network(self.aggregation, self.id_embedding) for network in self.networks) / len(self.networks)

    def extra_penalty(self, users: torch.Tensor) -> torch.Tensor:
        return self.regularised_preference.preference.pow(2).mean()
