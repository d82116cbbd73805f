"""Per-item fusion of modality features into one content vector (RLMultimodalRec's gate and its ablations)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from gatedrec.data import Modality
from gatedrec.errors import GatedRecError
from gatedrec.models.reliability import agreement_table
from gatedrec.system import native_bfloat16

FUSIONS = ("gate", "concat", "mean", "sum", "none")
GATES = ("element", "scalar")
FEATURE_NORMS = ("l2", "standard", "none")
PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def check_fusion(fusion: str, modality_names: list[str]) -> None:
    single = [f"{name}-only" for name in modality_names]
    if fusion not in FUSIONS and fusion not in single:
        raise GatedRecError(f"fusion '{fusion}' is unknown; choose one of {', '.join(FUSIONS + tuple(single))}")


@dataclass
class FeatureTransform:
    """How one modality's raw features become the fusion's input, kept so that a new item's features take the
    same way: centred and projected onto the principal components (``basis``, when the features were wider
    than max_feature_dim), then scaled (``norm``: l2, standard with ``scale`` = (mean, std), or none)."""

    norm: str
    mean: np.ndarray | None = None
    basis: np.ndarray | None = None
    scale: tuple[np.ndarray, np.ndarray] | None = None

    def reduce(self, raw: np.ndarray) -> np.ndarray:
        if self.basis is None:
            return raw.astype(np.float32, copy=True)
        centred = torch.from_numpy(np.ascontiguousarray(raw, dtype=np.float32)) - torch.from_numpy(self.mean)
        return (centred @ torch.from_numpy(self.basis)).numpy()

    def rescale(self, reduced: np.ndarray) -> np.ndarray:
        if self.norm == "l2":
            return reduced / np.maximum(np.linalg.norm(reduced, axis=1, keepdims=True), 1e-12)
        if self.norm == "standard":
            mean, std = self.scale
            return (reduced - mean) / std
        return reduced

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """The fusion's input rows for raw feature rows (all of which have the modality)."""
        return self.rescale(self.reduce(raw)).astype(np.float32)


def fit_feature_transform(modality: Modality, how: str, max_dim: int = 0) -> tuple[np.ndarray, FeatureTransform]:
    """The modality's features as the fusion takes them (reduced to max_dim principal components when wider,
    then scaled; absent rows zero) and the transform that made them."""
    if how not in FEATURE_NORMS:
        raise GatedRecError(f"feature_norm '{how}' is unknown; choose one of {', '.join(FEATURE_NORMS)}")
    reduced, mean, basis = principal_components(modality.features, modality.present, max_dim)
    features = reduced.astype(np.float32, copy=True)
    present = features[modality.present]
    scale = (present.mean(axis=0), np.maximum(present.std(axis=0), 1e-6)) if how == "standard" else None
    transform = FeatureTransform(how, mean, basis, scale)
    features[modality.present] = transform.rescale(present)
    features[~modality.present] = 0.0
    return features, transform


def normalize_features(modality: Modality, how: str) -> np.ndarray:
    """Scale features of present items; absent rows stay zero."""
    return fit_feature_transform(modality, how)[0]


def principal_components(features: np.ndarray, present: np.ndarray,
                         max_dim: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Features of more than ``max_dim`` dimensions are replaced by their top ``max_dim`` principal
    component scores (randomised SVD, once): the projection W_m x then costs max_dim, not d_m, per item
    and step, and spans the directions in which the items actually differ. Returns the scores and the
    (1, d) mean and (d, max_dim) basis that made them (None and None where the features are kept as given)."""
    if max_dim <= 0 or features.shape[1] <= max_dim:
        return features, None, None
    rows = torch.from_numpy(np.ascontiguousarray(features[present]))
    mean = rows.mean(dim=0, keepdim=True)
    n_components = min(max_dim, rows.shape[0])  # fewer items than max_dim span fewer directions
    _, _, basis = torch.svd_lowrank(rows - mean, q=n_components, niter=2)
    reduced = np.zeros((features.shape[0], n_components), dtype=np.float32)
    reduced[present] = ((rows - mean) @ basis).numpy()
    return reduced, mean.numpy(), basis.numpy()


def product_precision(name: str, device_type: str) -> torch.dtype:
    """float32 or bfloat16; auto is bfloat16 on a CPU that multiplies bfloat16 natively (AVX512-BF16 or AMX:
    the content products then take half the time at the same accuracy) and float32 everywhere else."""
    if name == "auto":
        name = "bfloat16" if device_type == "cpu" and native_bfloat16() else "float32"
    if name not in PRECISIONS:
        raise GatedRecError(f"content_precision '{name}' is unknown; choose one of auto, {', '.join(PRECISIONS)}")
    return PRECISIONS[name]


class ModalityFusion(nn.Module):
    """c_i = Σ_m w_im ⊙ (W_m x_i^m + b_m) with weights from the chosen fusion.

    gate: w_i = softmax over modalities of the logits (W_g [p_i^1 || ... || p_i^M] + b_g, 0), per dimension
    (element) or one per modality (scalar); for two modalities this is g_i = sigmoid(W_g [p_i^1 || p_i^2] + b_g).
    A modality an item lacks is masked out of the softmax. With ``interactions`` (the training matrix) the
    gate also reads each item's agreement a_i^m of every modality with its users' other items
    (gatedrec.models.reliability): the logits gain W_a a_i, so the gate can turn from a modality that
    contradicts the item's interactions; W_a starts at ``agreement_prior`` times a_m - a_last per free logit. mean / sum / <name>-only use fixed weights over the present
    modalities; concat mixes the concatenation with one linear layer. When some items lack a modality, a
    learned offset per modality is added to the content of the items that lack it.
    """

    def __init__(
        self, modalities: dict[str, Modality], dim: int, fusion: str, gate: str, feature_norm: str,
        max_feature_dim: int = 0, precision: str = "float32", interactions: sp.csr_matrix | None = None,
        agreement_prior: float = 0.0,
    ):
        super().__init__()
        self.names = list(modalities)
        check_fusion(fusion, self.names)
        if gate not in GATES:
            raise GatedRecError(f"gate '{gate}' is unknown; choose one of {', '.join(GATES)}")
        product_precision(precision, "cpu")  # refuses an unknown name now, not at the first step
        self.precision = precision
        self.fusion = fusion
        self.transforms: list[FeatureTransform] = []  # raw features -> the fusion's input, for new items
        for index, modality in enumerate(modalities.values()):
            features, transform = fit_feature_transform(modality, feature_norm, max_feature_dim)
            self.register_buffer(f"features_{index}", torch.from_numpy(features))
            self.transforms.append(transform)
        presence = np.stack([modality.present for modality in modalities.values()], axis=1)
        self.register_buffer("present", torch.from_numpy(presence))
        self.all_present = bool(presence.all())  # then masking changes nothing and is skipped
        self.copies: dict[str, tuple[tuple, list[torch.Tensor]]] = {}  # name -> (what they were made from, tables)
        widths = [getattr(self, f"features_{index}").shape[1] for index in range(len(self.names))]
        self.projections = nn.ModuleList(nn.Linear(width, dim) for width in widths)
        n_modalities = len(self.names)
        if fusion == "gate" and n_modalities > 1:
            # the last modality's logit is fixed at 0: for two modalities g = sigmoid(W_g [p^1 || p^2] + b_g)
            self.gate = nn.Linear(n_modalities * dim, (n_modalities - 1) * (dim if gate == "element" else 1))
            if interactions is not None:
                agreement = agreement_table(interactions, [table.numpy() for table in self.feature_tables()], presence)
                self.register_buffer("agreement", torch.from_numpy(agreement))
                self.agreement_gate = nn.Linear(n_modalities, self.gate.out_features, bias=False)
                with torch.no_grad():
                    self.agreement_gate.weight.copy_(agreement_prior * prior_weights(n_modalities, dim, gate))
        if fusion == "concat":
            self.mix = nn.Linear(n_modalities * dim, dim)
        if not self.all_present:
            # masked out of the fusion, a missing modality still says something (which items lack an
            # image is not random): one learned offset per modality marks its absence
            self.absent = nn.Parameter(torch.zeros(n_modalities, dim))

    def gate_parameters(self) -> list[nn.Parameter]:
        """The gate's weights (its own and the agreements'), which take the gate's weight decay."""
        modules = [getattr(self, name) for name in ("gate", "agreement_gate") if hasattr(self, name)]
        return [parameter for module in modules for parameter in module.parameters()]

    def projections_of_features(self, rows: torch.Tensor | None = None) -> list[torch.Tensor]:
        """W_m x^m + b_m of the items ``rows`` (all when None), one (items, dim) table per modality."""
        tables = self.product_features()
        if rows is not None:
            tables = [table.index_select(0, rows) for table in tables]
        return [projection(features) for features, projection in zip(tables, self.projections)]

    def presence(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        """(items, modalities): whether each of the items ``rows`` (all when None) has each modality."""
        return self.present if rows is None else self.present.index_select(0, rows)

    def feature_tables(self) -> list[torch.Tensor]:
        return [getattr(self, f"features_{index}") for index in range(len(self.projections))]

    def copies_key(self) -> tuple:
        """What copies of the feature tables are made from: the products' number type and the tables as they
        stand (a copy is kept until they change: moved, or written by loading a state)."""
        return (self.product_dtype(), *((table.data_ptr(), table._version) for table in self.feature_tables()))

    def kept(self, name: str, make: Callable[[], list[torch.Tensor]]) -> list[torch.Tensor]:
        """The tables ``make`` builds from the feature tables, built once and kept under ``name`` until the
        feature tables change."""
        key = self.copies_key()
        if name not in self.copies or self.copies[name][0] != key:
            self.copies[name] = (key, make())
        return self.copies[name][1]

    def product_features(self) -> list[torch.Tensor]:
        """The feature tables in the products' number type. A bfloat16 copy is made once and kept (cast at
        every step, it took a quarter of the content's time)."""
        dtype = self.product_dtype()
        if dtype == torch.float32:
            return self.feature_tables()
        return self.kept("cast", lambda: [table.to(dtype) for table in self.feature_tables()])

    def product_tables(self, rows: torch.Tensor | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each feature table in the products' number type with a column of ones appended, X̃ = [X | 1], and its
        transpose. X̃ [W^T; b] is the projection with its bias added by the product (no item-sized copy of the
        bias first), and X̃^T G holds X^T G and the column sums of G (the biases' gradients) in one product.
        For all items while gradients are recorded, the transpose is a contiguous copy, made once and kept: that
        product reads it row by row, a third faster than through a transposed view. Otherwise (a batch's rows:
        copying them into a transposed layout costs more than the products save; no gradients: no backward
        reads it) a transposed view."""
        augmented = self.kept("augmented", lambda: [
            torch.cat([table, table.new_ones(len(table), 1)], dim=1).to(self.product_dtype())
            for table in self.feature_tables()])
        if rows is not None:
            augmented = [table.index_select(0, rows) for table in augmented]
        elif torch.is_grad_enabled():
            transposes = self.kept("transposed", lambda: [table.t().contiguous() for table in augmented])
            return list(zip(augmented, transposes))
        return [(table, table.t()) for table in augmented]

    def product_dtype(self) -> torch.dtype:
        return product_precision(self.precision, self.features_0.device.type)

    def projected(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        """(items, modalities, dim) projections of the items ``rows`` (all when None), zero where an item lacks
        the modality."""
        return self.stacked(self.projections_of_features(rows), self.presence(rows), self.all_present)

    @staticmethod
    def stacked(projections: list[torch.Tensor], present: torch.Tensor, all_present: bool) -> torch.Tensor:
        stacked = torch.stack(projections, dim=1)
        return stacked if all_present else stacked * present.unsqueeze(-1)

    def weights(self, projected: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """(items, modalities, dim or 1) fusion weights over the present modalities of the projected items
        ``rows`` (all when None)."""
        return self.weights_given(projected, self.presence(rows), self.all_present, self.logit_offset(rows))

    def logit_offset(self, rows: torch.Tensor | None = None) -> torch.Tensor | None:
        """W_a a_i, what the items' agreements add to the gate's logits (None without them)."""
        if not hasattr(self, "agreement_gate"):
            return None
        agreement = self.agreement if rows is None else self.agreement.index_select(0, rows)
        return self.agreement_gate(agreement)

    def weights_given(self, projected: torch.Tensor, presence: torch.Tensor, all_present: bool,
                      offset: torch.Tensor | None = None) -> torch.Tensor:
        """Fusion weights; ``offset``: what is added to the gate's logits (W_a a_i), None for nothing."""
        present = presence.unsqueeze(-1).to(projected.dtype)
        if self.fusion == "gate" and hasattr(self, "gate"):
            free_logits = self.gate(projected.flatten(1))
            if offset is not None:
                free_logits = free_logits + offset
            free_logits = free_logits.view(projected.shape[0], len(self.names) - 1, -1)
            logits = torch.cat([free_logits, torch.zeros_like(free_logits[:, :1])], dim=1)
            if all_present:
                return torch.softmax(logits, dim=1)
            logits = logits.masked_fill(present == 0, float("-inf"))
            return torch.nan_to_num(torch.softmax(logits, dim=1), nan=0.0)
        if self.fusion == "mean":
            return present / present.sum(dim=1, keepdim=True).clamp(min=1)
        if self.fusion.endswith("-only"):
            chosen = torch.zeros_like(present)
            chosen[:, self.names.index(self.fusion[: -len("-only")])] = 1.0
            return chosen * present
        return present  # sum, and a gate over a single modality

    def forward(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Content vectors of the items ``rows`` (all when None)."""
        if self.fusion == "gate" and self.all_present and len(self.names) == 2:
            (first, second), gate = self.projections, self.gate
            parameters = (first.weight, first.bias, second.weight, second.bias, gate.weight, gate.bias)
            return _TwoModalityGate.apply(*parameters, self.logit_offset(rows), self.product_tables(rows))
        with self.products_in_precision():
            return self.fused(rows)[0].float()

    def products_in_precision(self) -> torch.autocast:
        """The projections' and gate's matrix products in ``precision`` (bfloat16 halves their time on CPUs
        with native bfloat16 products), everything else in float32."""
        dtype = self.product_dtype()
        return torch.autocast(self.features_0.device.type, dtype=dtype, enabled=dtype != torch.float32)

    def fused(self, rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Content vectors (items, dim) of the items ``rows`` (all when None) and their fusion weights (None
        for concat)."""
        return self.fuse(self.projections_of_features(rows), self.presence(rows), self.all_present,
                         self.logit_offset(rows))

    def fuse(self, projections: list[torch.Tensor], presence: torch.Tensor, all_present: bool,
             offset: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Content vectors and fusion weights of items from their projections W_m x^m + b_m and ``presence``
        (items, modalities); ``all_present``: every item has every modality (masking is skipped); ``offset``:
        what the items' agreements add to the gate's logits (None for new items: their agreement is unknown)."""
        projected = self.stacked(projections, presence, all_present)
        weights = None if self.fusion == "concat" else self.weights_given(projected, presence, all_present, offset)
        content = self.mix(projected.flatten(1)) if weights is None else (weights * projected).sum(dim=1)
        if hasattr(self, "absent"):
            content = content + (~presence).to(content.dtype) @ self.absent
        return content, weights

    @torch.no_grad()
    def content_of(self, features: list[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray | None]:
        """Content vectors and per-modality shares (None for concat) of new items from their raw features, one
        (items, d_m) array per modality, None where no item has it, NaN rows where an item lacks it."""
        n_items = next(len(table) for table in features if table is not None)
        parameter = self.projections[0].weight
        presence = torch.zeros(n_items, len(self.names), dtype=torch.bool)
        projections = []
        for index, (table, transform, projection) in enumerate(zip(features, self.transforms, self.projections)):
            inputs = torch.zeros(n_items, projection.in_features)
            if table is not None:
                has = ~np.isnan(table).any(axis=1)
                presence[:, index] = torch.from_numpy(has)
                if has.any():
                    inputs[torch.from_numpy(has)] = torch.from_numpy(transform.apply(table[has]))
            projections.append(projection(inputs.to(parameter.device)))
        content, weights = self.fuse(projections, presence.to(parameter.device), bool(presence.all()))
        shares = None if weights is None else weights.mean(dim=-1).cpu().numpy()
        return content.cpu().numpy(), shares

    @torch.no_grad()
    def modality_shares(self) -> dict[str, np.ndarray]:
        """Each item's mean weight per modality: the share of the item's content that comes from it (in float32
        whatever the products' precision: an explanation's shares sum to one, and a new item's are the same)."""
        projections = [projection(table) for table, projection in zip(self.feature_tables(), self.projections)]
        _, weights = self.fuse(projections, self.presence(), self.all_present, self.logit_offset())
        if weights is None:
            return {}
        shares = weights.float().mean(dim=-1).cpu().numpy()
        return {name: shares[:, index] for index, name in enumerate(self.names)}


def prior_weights(n_modalities: int, dim: int, gate: str) -> torch.Tensor:
    """W_a's starting point for a prior of 1: modality m's free logit (its logit less the last modality's, which is
    fixed at 0) starts at a_m - a_last, so at the start the more agreeing modality weighs more."""
    per_modality = dim if gate == "element" else 1
    weights = torch.zeros((n_modalities - 1) * per_modality, n_modalities)
    for index in range(n_modalities - 1):
        rows = slice(index * per_modality, (index + 1) * per_modality)
        weights[rows, index], weights[rows, -1] = 1.0, -1.0
    return weights


class _TwoModalityGate(torch.autograd.Function):
    """c = p^2 + g ⊙ (p^1 - p^2), g = sigmoid(W_g [p^1 || p^2] + b_g + o), p^m = X_m W_m^T + b_m (o: the items'
    logit offset from their agreements, or None), with the
    products in the feature tables' number type and the rest in float32, and the backward written by hand.
    For h^1 = dc ⊙ g, h^2 = dc - h^1 and l = dc ⊙ (p^1 - p^2) ⊙ g ⊙ (1 - g) (summed over dimensions for a
    scalar gate), with W_g^m the block of W_g that reads p^m: dp^m = h^m + l W_g^m, dW_m = dp^m^T X_m,
    db_m = Σ dp^m, dW_g^m = l^T p^m. Autograd's version of the same graph casts, stacks and zero-fills a
    dozen more item-sized buffers per step and reads each X_m through a transposed view (tables: (X̃_m, X̃_m^T)
    per modality, X̃ = [X | 1], from ModalityFusion.product_tables)."""

    @staticmethod
    def forward(ctx, first_weight, first_bias, second_weight, second_bias, gate_weight, gate_bias, offset, tables):
        (first_table, first_transpose), (second_table, second_transpose) = tables
        dtype = first_table.dtype
        weights_with_bias = (with_bias(first_weight, first_bias), with_bias(second_weight, second_bias))
        first = first_table @ weights_with_bias[0].to(dtype)
        second = second_table @ weights_with_bias[1].to(dtype)
        dim = first_weight.shape[0]
        gate_blocks = gate_weight.to(dtype).t().split(dim)
        # the logits as two products into one buffer: no item-sized [p^1 || p^2], and faster here than its one product
        logits = torch.addmm(gate_bias.to(dtype), first, gate_blocks[0]).addmm_(second, gate_blocks[1]).float()
        gate = (logits if offset is None else logits.add_(offset)).sigmoid_()
        transposes = (first_transpose, second_transpose)
        needs_projections = not all(_takes_feature_route(transpose, dim) for transpose in transposes)
        difference = first.float().sub(second) if needs_projections else first.float().sub_(second)
        projections = (first, second) if needs_projections else (None, None)
        ctx.save_for_backward(gate, difference, *projections, *weights_with_bias, gate_weight)
        ctx.transposes = transposes
        ctx.has_offset = offset is not None
        return torch.addcmul(second, gate, difference)  # in float32, as gate and difference are

    @staticmethod
    def backward(ctx, grad_content):
        gate, difference, *projections, first_with_bias, second_with_bias, gate_weight = ctx.saved_tensors
        through_first = grad_content * gate
        grad_logits = through_first * difference
        if gate.shape[1] == 1:
            grad_logits = grad_logits.sum(dim=1, keepdim=True)
        grad_logits.addcmul_(grad_logits, gate, value=-1.0)
        dim = grad_content.shape[1]
        logits_products = grad_logits.to(ctx.transposes[0].dtype)
        modalities = zip(ctx.transposes, (through_first, grad_content - through_first), projections,
                         (first_with_bias, second_with_bias))
        grads, gate_grads, logits_sums = [], [], []
        for index, (transpose, through, projected, weight_with_bias) in enumerate(modalities):
            gate_block = gate_weight[:, index * dim: (index + 1) * dim]
            if _takes_feature_route(transpose, dim):
                grad_with_bias, gate_grad, logits_sum = _feature_route(transpose, through, logits_products, gate_block,
                                                                       weight_with_bias)
                logits_sums.append(logits_sum)
            else:
                grad_with_bias, gate_grad = _projection_route(transpose, through, logits_products, gate_block,
                                                              projected)
            grads += [grad_with_bias[:-1].t(), grad_with_bias[-1]]
            gate_grads.append(gate_grad)
        logits_sum = logits_sums[0] if logits_sums else grad_logits.sum(dim=0)
        return *grads, torch.cat(gate_grads, dim=1), logits_sum, grad_logits if ctx.has_offset else None, None


def with_bias(weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """[W^T; b]: X̃ [W^T; b] = X W^T + b for X̃ = [X | 1]."""
    return torch.cat([weight.t(), bias.unsqueeze(0)])


def _takes_feature_route(transpose: torch.Tensor, dim: int) -> bool:
    """Whether a modality's gradients come cheaper from the features' side: features (X̃^T's rows less the
    ones) narrower than twice the output (then the projections need not be kept for the backward)."""
    return transpose.shape[0] - 1 < 2 * dim


def _projection_route(transpose, through, logits_products, gate_block, projected):
    """One modality's gradients through dp = h + l W_g^m: [dW^T; db] = X̃^T dp and dW_g^m = l^T p. Its
    products cost D + 2 dim per item and output dimension (D = the features' width)."""
    dtype = transpose.dtype
    through_gate = logits_products @ gate_block.to(dtype)
    grad_projected = torch.add(through, through_gate, out=through_gate.new_empty(through.shape))
    return (transpose @ grad_projected).float(), (logits_products.t() @ projected).float()


def _feature_route(transpose, through, logits_products, gate_block, weight_with_bias):
    """The same gradients from the features' side: with A = X̃^T h and B = X̃^T l (their last rows Σ h and
    Σ l), [dW^T; db] = A + B W_g^m and dW_g^m = B^T [W^T; b]; also gives Σ l, the gate bias's gradient. Its
    products cost 2 D per item and output dimension: cheaper than the projection route when the features
    are narrower than twice the output."""
    dtype = transpose.dtype
    by_through = (transpose @ through.to(dtype)).float()
    by_logits = (transpose @ logits_products).float()
    return torch.addmm(by_through, by_logits, gate_block), by_logits.t() @ weight_with_bias, by_logits[-1]


class RawProjections(nn.Module):
    """One linear map W_m x_i^m per modality of the raw (unnormalised) features, computed for the items
    asked for: the modality terms of FREEDOM's and BM3's losses."""

    def __init__(self, modalities: dict[str, Modality], dim: int, device: torch.device | str = "cpu",
                 xavier_normal: bool = False):
        super().__init__()
        self.features = [torch.tensor(m.features, device=device) for m in modalities.values()]
        self.projections = nn.ModuleList(nn.Linear(features.shape[1], dim) for features in self.features)
        if xavier_normal:
            for projection in self.projections:
                nn.init.xavier_normal_(projection.weight)

    def forward(self, items: torch.Tensor) -> list[torch.Tensor]:
        return [projection(features[items]) for features, projection in zip(self.features, self.projections)]
