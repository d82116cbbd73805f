"""Content-only item-kNN: nothing is trained. score(u, i) = mean over the user's training items j of
Σ_m cos(x_i^m, x_j^m), the cosine similarity of each modality's raw features (a modality either item lacks
adds 0), i.e. item-kNN on content with every training item as a neighbour. It ranks items nobody has
bought as readily as any other: the reference point for cold-start items.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from gatedrec.models.base import Embeddings, RecommenderModel
from gatedrec.models.fusion import normalize_features


class ContentKNN(RecommenderModel):
    needs_modalities = True
    trainable = False

    def __init__(self, dataset, params, device):
        super().__init__(dataset, params, device)
        content = np.concatenate([normalize_features(m, "l2") for m in dataset.modalities.values()], axis=1)
        counts = np.maximum(np.asarray(dataset.train.sum(axis=1)).ravel(), 1.0)
        profiles = sp.diags(1.0 / counts) @ dataset.train @ content
        self.register_buffer("item_content", torch.from_numpy(content))
        self.register_buffer("user_profiles", torch.from_numpy(np.asarray(profiles, dtype=np.float32)))

    def forward(self, users=None, items=None) -> Embeddings:
        user_rows = self.user_profiles if users is None else self.user_profiles[users]
        item_rows = self.item_content if items is None else self.item_content[items]
        return Embeddings(user_rows, item_rows, user_rows, item_rows)
