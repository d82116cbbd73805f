"""What each setting may be: every model parameter and training setting has a declared range (numbers) or set of
choices (text), checked when a configuration is built or changed, with one message that names the key, the
value and what is allowed. A setting's type is its default's (gatedrec.config coerces to it)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from gatedrec.errors import GatedRecError
from gatedrec.models.fusion import FEATURE_NORMS, FUSIONS, GATES, PRECISIONS
from gatedrec.models.item_graph import MIXES
from gatedrec.models.rlmultimodalrec import CONTENT_UPDATES, PLACEMENTS

ITEM_GRAPH_SOURCES = ("ego", "id")


@dataclass(frozen=True)
class Allowed:
    minimum: float | None = None
    maximum: float | None = None
    above_minimum: bool = False  # strictly greater than minimum
    below_maximum: bool = False  # strictly less than maximum
    choices: tuple[str, ...] = ()
    pattern: str | None = None  # a regular expression the text may match instead of a choice
    pattern_help: str = ""

    def admits(self, value) -> bool:
        if self.choices or self.pattern:
            return value in self.choices or (self.pattern is not None and re.fullmatch(self.pattern, str(value)))
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return True  # booleans and other types: the type check in gatedrec.config is all there is
        if isinstance(value, float) and not math.isfinite(value):
            return False
        low_ok = self.minimum is None or (value > self.minimum if self.above_minimum else value >= self.minimum)
        high_ok = self.maximum is None or (value < self.maximum if self.below_maximum else value <= self.maximum)
        return low_ok and high_ok

    def describe(self) -> str:
        if self.choices or self.pattern:
            options = list(self.choices) + ([self.pattern_help] if self.pattern_help else [])
            return "one of " + ", ".join(options)
        parts = []
        if self.minimum is not None:
            parts.append(f"{'>' if self.above_minimum else '>='} {self.minimum:g}")
        if self.maximum is not None:
            parts.append(f"{'<' if self.below_maximum else '<='} {self.maximum:g}")
        return " and ".join(parts) if parts else "a finite number"


def at_least(minimum: float) -> Allowed:
    return Allowed(minimum=minimum)


def above(minimum: float) -> Allowed:
    return Allowed(minimum=minimum, above_minimum=True)


SHARE = Allowed(minimum=0.0, maximum=1.0)
DROP_SHARE = Allowed(minimum=0.0, maximum=1.0, below_maximum=True)  # dropping every edge leaves nothing to learn

SETTINGS: dict[str, Allowed] = {
    # model parameters
    "embedding_size": at_least(1), "latent_dim": at_least(1), "feat_embed_dim": at_least(1),
    "n_layers": at_least(0), "item_graph_layers": at_least(0),
    "reg_weight": at_least(0.0), "cl_weight": at_least(0.0), "modality_loss_weight": at_least(0.0),
    "content_weight_decay": at_least(0.0), "gate_weight_decay": at_least(0.0), "content_loss_weight": at_least(0.0),
    "content_lr_scale": above(0.0), "gate_lr_scale": above(0.0), "cold_scale": above(0.0),
    "edge_dropout": DROP_SHARE, "dropout": DROP_SHARE,
    "text_graph_weight": SHARE, "lambda_coeff": SHARE,
    "negative_candidates": at_least(1), "knn_k": at_least(1), "cold_neighbours": at_least(1),
    "item_knn_k": at_least(0), "max_feature_dim": at_least(0),
    "fusion": Allowed(choices=FUSIONS, pattern=r".+-only", pattern_help="<modality>-only"),
    "gate": Allowed(choices=GATES), "gate_agreement": Allowed(), "agreement_prior": at_least(0.0),
    "placement": Allowed(choices=PLACEMENTS),
    "feature_norm": Allowed(choices=FEATURE_NORMS),
    "content_precision": Allowed(choices=("auto", *PRECISIONS)),
    "item_graph_on": Allowed(choices=ITEM_GRAPH_SOURCES),
    "item_graph_mix": Allowed(choices=MIXES),
    "content_updates": Allowed(choices=CONTENT_UPDATES),
    # training settings
    "epochs": at_least(1), "batch_size": at_least(1), "learning_rate": above(0.0), "patience": at_least(1),
    "eval_every": at_least(1), "seed": at_least(0), "threads": at_least(0), "mask_valid": Allowed(),
    "device": Allowed(pattern=r"cpu|cuda(:\d+)?", pattern_help="cpu, cuda, cuda:N"),
}


def check_setting(key: str, value) -> None:
    allowed = SETTINGS.get(key)
    if allowed is None:
        raise GatedRecError(f"setting '{key}' has no declared range; add it to gatedrec.settings.SETTINGS")
    if not allowed.admits(value):
        raise GatedRecError(f"setting '{key}' = {value!r} is not allowed: it must be {allowed.describe()}")
