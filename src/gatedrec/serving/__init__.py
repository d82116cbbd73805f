"""Serving a trained run: the Recommender API, the run's serving artefact, and the HTTP app."""

from gatedrec.serving.artifact import export_run
from gatedrec.serving.recommender import Conflict, Explanation, NewItem, Recommender, UnknownId

__all__ = ["Conflict", "Explanation", "NewItem", "Recommender", "UnknownId", "export_run"]
