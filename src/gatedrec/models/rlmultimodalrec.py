"""RLMultimodalRec (Liu et al., "Gated Multimodal Graph Learning for Personalized Recommendation", 2025).

p_i^m = W_m x_i^m + b_m; g_i = sigmoid(W_g [p_i^v || p_i^t] + b_g); c_i = g_i ⊙ p_i^v + (1 - g_i) ⊙ p_i^t
(a per-dimension softmax over modalities for M > 2, missing modalities masked). The item's ego embedding
is e_i^id + c_i (placement "ego"), or c_i alone ("content-only"), or c_i is added after propagation
("late"). A K-layer LightGCN propagates the ego embeddings; y_ui = e_u · e_i; BPR loss with L2 on the
batch's ego embeddings, weight decay on projections and gate. The gate is the explanation: mean(g_i) is
item i's visual share.

The gate's reliability input (ours, on by default: gate_agreement): the gate's logits also get W_a a_i, with
a_i^m each modality's agreement with the item's interactions (the cosine between its features and the mean
features of the items its users also bought; gatedrec.models.reliability), W_a starting at agreement_prior
times a_m - a_last. The default gate is scalar, without weight decay: with the paper's element gate at weight
decay 1e-2 every item got the same share.

Ours, on by default (item_knn_k > 0; 0 turns it off): a frozen content item-item graph S (each modality's
cosine kNN graph of the raw features, mixed 0.9 text + 0.1 the rest, or a learned mix) adds S^L e_i^(0)
to the final item embeddings, so items with similar content share what their interactions taught them
(FREEDOM's frozen graph; here over the gated ego embeddings, or the ID embeddings with item_graph_on=id).
Hard negatives (ours, on by default: negative_candidates > 1; 1 is the paper's uniform sampler): each
training negative is the best-scored of several uniform draws under the model at the epoch's start (dynamic
negative sampling, Zhang et al., SIGIR 2013; see gatedrec.training.sampling).
Batch content updates (ours, content_updates=batch): a training step computes the content of its batch's
items only and takes every other item's as last computed (all items' at the epoch's first batch), as
GNNAutoScale keeps historical embeddings (Fey et al., ICML 2021); the paper computes all items' at every
step (content_updates=all). Evaluation always computes every item's content.
Cold items (ours): an item without training interactions has no learnt ID embedding and no graph edge;
it is ranked from content alone, taking the mean final embedding of its cold_neighbours content-nearest
warm items (rescaled to their mean norm, times cold_scale). Training never sees it (negatives are drawn
from warm items).

Defaults (the paper's two layers, 8 negative candidates, the item graph on over the ego embeddings with 3
neighbours per modality, text weight 0.9, 64 principal components of each wider modality, batch content
updates) were chosen on validation over the shared data sets by benchmarks/tune_defaults.py.
"""

from __future__ import annotations

import numpy as np
import torch

from gatedrec.errors import GatedRecError
from gatedrec.models.base import Embeddings
from gatedrec.models.losses import bpr_loss
from gatedrec.models.graph import SparseOperator, spmm_rows
from gatedrec.models.item_graph import ContentItemGraph, rescaled_to_norm, warm_neighbour_graph
from gatedrec.models.fusion import ModalityFusion
from gatedrec.models.lightgcn import ItemTerm, LightGCN, distinct

PLACEMENTS = ("ego", "late", "content-only")
CONTENT_UPDATES = ("all", "batch")


class RLMultimodalRec(LightGCN):
    needs_modalities = True

    def __init__(self, dataset, params, device):
        super().__init__(dataset, params, device)
        self.placement = params["placement"]
        if self.placement not in PLACEMENTS:
            raise GatedRecError(f"placement '{self.placement}' is unknown; choose one of {', '.join(PLACEMENTS)}")
        self.fusion = None
        if params["fusion"] != "none":
            self.fusion = ModalityFusion(
                dataset.modalities, int(params["embedding_size"]), params["fusion"], params["gate"],
                params["feature_norm"], int(params["max_feature_dim"]), params["content_precision"],
                dataset.train if params["gate_agreement"] else None, float(params["agreement_prior"]),
            )
        elif self.placement == "content-only":
            raise GatedRecError("placement 'content-only' needs content; pick a fusion other than 'none'")
        self.content_weight_decay = float(params["content_weight_decay"])
        self.gate_weight_decay = float(params["gate_weight_decay"])
        self.content_loss_weight = float(params["content_loss_weight"])
        self.content_lr_scale = float(params["content_lr_scale"])
        self.gate_lr_scale = float(params["gate_lr_scale"])
        self.item_graph = None
        if int(params["item_knn_k"]) > 0:
            self.item_graph = ContentItemGraph(
                dataset.modalities, int(params["item_knn_k"]), int(params["item_graph_layers"]),
                params["item_graph_mix"], float(params["text_graph_weight"]), device, dataset.train,
                float(params["agreement_prior"]),
            )
        self.item_graph_on = params["item_graph_on"]
        self.content_updates = params["content_updates"]
        if self.content_updates not in CONTENT_UPDATES:
            raise GatedRecError(f"content_updates '{self.content_updates}' is unknown; choose one of "
                                f"{', '.join(CONTENT_UPDATES)}")
        self.register_buffer("last_content", torch.empty(0), persistent=False)
        warm = dataset.warm_items
        self.register_buffer("cold_rows", torch.from_numpy(np.flatnonzero(~warm)), persistent=False)
        if len(self.cold_rows):
            self.keep_cold_ids_zero()
        self.cold_graph = None
        if len(self.cold_rows) and self.fusion is not None:
            graph = warm_neighbour_graph(dataset.modalities, warm, int(params["cold_neighbours"]),
                                         float(params["text_graph_weight"]))
            self.cold_graph = SparseOperator(graph, device, symmetric=False)
            self.cold_scale = float(params["cold_scale"])

    def keep_cold_ids_zero(self) -> None:
        """An item without training interactions (cold) keeps only its content: its ID embedding is zero and
        stays so (its gradient, which only the item graph gives it, is cleared as it arrives, so Adam never
        moves it; a loaded state is cleared too). Cheaper than masking the ID table at every step: two
        passes over it forward and backward."""
        self.clear_cold_ids()
        self.item_emb.register_post_accumulate_grad_hook(self.clear_cold_gradients)
        self.register_load_state_dict_post_hook(lambda module, incompatible_keys: module.clear_cold_ids())

    @torch.no_grad()
    def clear_cold_ids(self) -> None:
        self.item_emb.index_fill_(0, self.cold_rows, 0.0)

    def clear_cold_gradients(self, item_emb: torch.Tensor) -> None:
        item_emb.grad.index_fill_(0, self.cold_rows, 0.0)

    def forward(self, users=None, items=None) -> Embeddings:
        return self.embeddings_and_content(users, items)[0]

    def loss(self, users, pos_items, neg_items):
        """The base BPR loss, plus (content_loss_weight > 0, ours) BPR on the content vectors alone."""
        batch, content = self.embeddings_and_content(users, torch.cat([pos_items, neg_items]))
        total = self.embedding_loss(batch)
        if self.content_loss_weight > 0 and content is not None:
            content_scores = (content.index_select(0, pos_items), content.index_select(0, neg_items))
            total = total + self.content_loss_weight * bpr_loss(batch.users, *content_scores)
        return total

    def start_epoch(self, rng: np.random.Generator) -> None:
        super().start_epoch(rng)
        self.last_content = self.last_content.new_empty(0)  # recomputed for every item at the epoch's first batch

    def content(self, batch_items: torch.Tensor | None = None) -> torch.Tensor | None:
        """Every item's content vector. With content_updates=batch, while training on a batch whose distinct
        items are ``batch_items``: those computed afresh, the others as last computed (all of them at the
        epoch's first batch)."""
        if self.fusion is None:
            return None
        if not self.updates_batch_content(batch_items):
            return self.fusion()
        return self.with_fresh_content(batch_items)

    def updates_batch_content(self, batch_items: torch.Tensor | None) -> bool:
        return batch_items is not None and self.training and self.content_updates == "batch"

    def with_fresh_content(self, batch_items: torch.Tensor, base: torch.Tensor | None = None) -> torch.Tensor:
        """The kept content with the batch's items computed afresh (and kept), plus ``base`` when given."""
        return _WithFreshRows.apply(self.fusion(batch_items), batch_items, self.kept_content(), base)

    def kept_content(self) -> torch.Tensor:
        """Every item's content as last computed (computed for all at the epoch's first batch)."""
        if len(self.last_content) == 0:
            with torch.no_grad():
                self.last_content = self.fusion()
        return self.last_content

    def ego_and_content(self, batch_items: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The items' ego embeddings and every item's content vector (None when only the ego embeddings need it:
        a training step with batch content updates sums the two in one pass)."""
        if (self.fusion is not None and self.placement == "ego" and self.content_loss_weight == 0
                and self.updates_batch_content(batch_items)):
            return self.with_fresh_content(batch_items, self.item_emb), None
        content = self.content(batch_items)
        if content is None or self.placement == "late":
            return self.item_emb, content
        return (self.item_emb + content if self.placement == "ego" else content), content

    def embeddings_and_content(self, users=None, items=None) -> tuple[Embeddings, torch.Tensor | None]:
        """Embeddings (all, or the rows asked for) and every item's content vector (None where not needed)."""
        batch_items = distinct(items, self.n_items) if users is not None else None
        item_ego, content = self.ego_and_content(batch_items.rows if batch_items is not None else None)
        propagated = self.propagate(item_ego, users, items, self.item_terms(item_ego, content), batch_items)
        if self.cold_graph is not None and items is None:
            propagated = propagated._replace(items=self.with_cold_items(propagated.items))
        return propagated, content

    def item_terms(self, item_ego: torch.Tensor, content: torch.Tensor | None) -> ItemTerm | None:
        """What is added to the items' propagated embeddings: the content (placement late) and the item graph's
        spread of the ego (or ID) embeddings; None when neither."""
        late = content is not None and self.placement == "late"
        if not late and self.item_graph is None:
            return None
        source = self.item_emb if self.item_graph_on == "id" else item_ego

        def terms(rows: torch.Tensor | None) -> torch.Tensor:
            spread = self.item_graph(source, rows) if self.item_graph is not None else 0
            if not late:
                return spread
            return spread + (content if rows is None else content.index_select(0, rows))

        return terms

    def with_cold_items(self, final_items: torch.Tensor) -> torch.Tensor:
        """Cold items take the mean final embedding of their content-nearest warm items, rescaled to those
        items' mean norm (a plain mean is shorter than its parts and would rank every cold item low) times
        cold_scale (how far cold items are trusted against warm ones; it only matters at ranking time)."""
        neighbour_mean = spmm_rows(self.cold_graph, final_items, self.cold_rows)
        neighbour_norm = spmm_rows(self.cold_graph, final_items.norm(dim=1, keepdim=True), self.cold_rows)
        cold = rescaled_to_norm(neighbour_mean, neighbour_norm, self.cold_scale)
        return final_items.index_copy(0, self.cold_rows, cold)

    def parameter_groups(self) -> list[dict]:
        embeddings = [self.user_emb, self.item_emb]
        graph_groups = self.item_graph.parameter_groups() if self.item_graph is not None else []
        if self.fusion is None:
            return [{"params": embeddings}, *graph_groups]
        gate = self.fusion.gate_parameters()
        gate_ids = {id(parameter) for parameter in gate}
        projections = [parameter for parameter in self.fusion.parameters() if id(parameter) not in gate_ids]
        groups = [
            {"params": embeddings},
            *graph_groups,
            {"params": projections, "weight_decay": self.content_weight_decay, "lr_scale": self.content_lr_scale},
        ]
        if gate:
            groups.append({"params": gate, "weight_decay": self.gate_weight_decay,
                           "lr_scale": self.content_lr_scale * self.gate_lr_scale})
        return groups

    @torch.no_grad()
    def explain(self) -> dict[str, np.ndarray]:
        """Per-item share of each modality in the fused content (the gate's reading)."""
        return self.fusion.modality_shares() if self.fusion is not None else {}


class _WithFreshRows(torch.autograd.Function):
    """The kept content table with the rows ``rows`` overwritten in place by ``fresh`` (the kept table, a buffer
    without gradients, then holds them for the next step), plus ``base`` when given (the ID embeddings). The
    gradient passes to ``base`` as it is and to ``fresh`` as its rows. Autograd's index_copy and sum would copy
    the kept table and, as the sum hands one gradient to both of its terms, copy that gradient for the ID
    table: two item-sized copies per step, about 0.03 of LightGCN's epoch on generated Baby."""

    @staticmethod
    def forward(ctx, fresh, rows, kept, base):
        kept.index_copy_(0, rows, fresh.detach())
        ctx.save_for_backward(rows)
        return kept.clone() if base is None else torch.add(base, kept)

    @staticmethod
    def backward(ctx, grad):
        (rows,) = ctx.saved_tensors
        return grad.index_select(0, rows), None, None, grad if ctx.needs_input_grad[3] else None
