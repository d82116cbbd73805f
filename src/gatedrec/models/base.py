"""What every model offers the trainer and the evaluator."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from gatedrec.data import Dataset
from gatedrec.models.losses import bpr_loss, l2_per_example


class Embeddings(NamedTuple):
    users: torch.Tensor
    items: torch.Tensor
    user_ego: torch.Tensor
    item_ego: torch.Tensor


class RecommenderModel(nn.Module, ABC):
    """A model scores a user-item pair by the dot product of their final embeddings.

    Subclasses build their parameters from ``dataset`` (training split only) and ``params`` (the model's
    YAML defaults with the user's overrides) and define ``forward`` returning ``Embeddings``.
    """

    needs_modalities = False
    trainable = True  # False: nothing to fit; the trainer only evaluates

    def __init__(self, dataset: Dataset, params: dict, device: torch.device):
        super().__init__()
        if self.needs_modalities:
            dataset.require_modalities(type(self).__name__.lower())
        self.n_users, self.n_items = dataset.n_users, dataset.n_items
        self.reg_weight = float(params["reg_weight"])
        # each training negative is the best-scored of this many uniform draws (1 = uniform sampling)
        self.negative_candidates = int(params.get("negative_candidates", 1))

    @abstractmethod
    def forward(self, users: torch.Tensor | None = None, items: torch.Tensor | None = None) -> Embeddings:
        """Final and ego embeddings of all users and items or, given ``users`` and ``items``, of those rows
        (in that order, repeats allowed), which a model may compute more cheaply than all of them."""

    def loss(self, users: torch.Tensor, pos_items: torch.Tensor, neg_items: torch.Tensor) -> torch.Tensor:
        return self.embedding_loss(self(users, torch.cat([pos_items, neg_items])))

    def embedding_loss(self, batch: Embeddings) -> torch.Tensor:
        """BPR with one negative per positive plus λ · squared L2 of the batch's ego embeddings / batch size.

        ``batch`` holds the rows of the batch's users and of its positive then negative items."""
        n_pairs = batch.users.shape[0]
        positives, negatives = batch.items.split(n_pairs)
        ranking = bpr_loss(batch.users, positives, negatives)
        positive_egos, negative_egos = batch.item_ego.split(n_pairs)
        reg = l2_per_example(batch.user_ego, positive_egos, negative_egos)
        return ranking + self.reg_weight * reg

    @torch.no_grad()
    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final user and item embeddings for ranking."""
        emb = self()
        return emb.users, emb.items

    def start_epoch(self, rng: np.random.Generator) -> None:
        """Per-epoch resampling (e.g. of the training graph); nothing by default."""

    def parameter_groups(self) -> list[dict]:
        """Optimiser parameter groups; a group may set ``weight_decay`` and ``lr_scale`` (times the learning rate)."""
        return [{"params": list(self.parameters())}]

    @torch.no_grad()
    def explain(self) -> dict:
        """Per-item explanations (e.g. modality shares); empty for models without any."""
        return {}


class NodeRepresentationRecommender(RecommenderModel):
    """A model whose users and items are the rows of one representation of all graph nodes (users first),
    recomputed at every step (MMGCN, GRCN), with MMRec's loss for them: BPR plus reg_weight times the mean
    squared ID embedding of the batch's nodes and a model-specific penalty."""

    id_embedding: torch.Tensor

    @abstractmethod
    def representation(self) -> torch.Tensor:
        """(users + items, dim) node representations."""

    def extra_penalty(self, users: torch.Tensor) -> torch.Tensor:
        return torch.zeros((), device=users.device)

    def forward(self, users=None, items=None) -> Embeddings:
        nodes = self.representation()
        user_rows, item_rows = nodes.split([self.n_users, self.n_items])
        if users is not None:
            user_rows, item_rows = user_rows.index_select(0, users), item_rows.index_select(0, items)
        return Embeddings(user_rows, item_rows, user_rows, item_rows)

    def loss(self, users, pos_items, neg_items):
        items = torch.cat([pos_items, neg_items])
        batch = self(users, items)
        n_pairs = len(users)
        ranking = bpr_loss(batch.users, *batch.items.split(n_pairs))
        user_ids = self.id_embedding.index_select(0, users.repeat(2))
        item_ids = self.id_embedding.index_select(0, self.n_users + items)
        ids = (user_ids.pow(2) + item_ids.pow(2)).mean()
        return ranking + self.reg_weight * (ids + self.extra_penalty(users))
