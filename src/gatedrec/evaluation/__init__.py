"""Ranking metrics and the full-ranking evaluator."""

from gatedrec.evaluation.evaluator import Evaluator, top_k_lowest_id_on_ties
from gatedrec.evaluation.metrics import METRICS, TOPKS, mean_metrics, per_user_metrics

__all__ = ["METRICS", "TOPKS", "Evaluator", "mean_metrics", "per_user_metrics", "top_k_lowest_id_on_ties"]
