"""Negative sampling and the trainer."""

from gatedrec.training.sampling import NegativeSampler
from gatedrec.training.trainer import Trainer, build_model

__all__ = ["NegativeSampler", "Trainer", "build_model"]
