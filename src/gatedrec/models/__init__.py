"""Model registry: a model is a class in its own file plus a YAML of defaults in configs/."""

from __future__ import annotations

from importlib import resources

import yaml

from gatedrec.errors import GatedRecError
from gatedrec.models.base import Embeddings, RecommenderModel
from gatedrec.models.bm3 import BM3
from gatedrec.models.bpr import BPR
from gatedrec.models.content_knn import ContentKNN
from gatedrec.models.freedom import FREEDOM
from gatedrec.models.grcn import GRCN
from gatedrec.models.lattice import LATTICE
from gatedrec.models.lightgcn import LightGCN
from gatedrec.models.mmgcn import MMGCN
from gatedrec.models.rlmultimodalrec import RLMultimodalRec
from gatedrec.models.vbpr import VBPR

MODELS: dict[str, type[RecommenderModel]] = {
    "bpr": BPR,
    "lightgcn": LightGCN,
    "vbpr": VBPR,
    "mmgcn": MMGCN,
    "grcn": GRCN,
    "lattice": LATTICE,
    "freedom": FREEDOM,
    "bm3": BM3,
    "rlmultimodalrec": RLMultimodalRec,
    "content_knn": ContentKNN,
}


def model_class(name: str) -> type[RecommenderModel]:
    if name not in MODELS:
        raise GatedRecError(f"unknown model '{name}'; choose one of {', '.join(MODELS)}")
    return MODELS[name]


def model_spec(name: str) -> dict:
    """The model's YAML: ``params`` (defaults) and ``grid`` (hyper-parameter search space)."""
    model_class(name)
    text = resources.files("gatedrec.models").joinpath("configs", f"{name}.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def default_params(name: str) -> dict:
    return dict(model_spec(name)["params"])


__all__ = ["MODELS", "Embeddings", "RecommenderModel", "default_params", "model_class", "model_spec"]
