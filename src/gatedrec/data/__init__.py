"""Loading, validating and generating data sets."""

from gatedrec.data.dataset import Dataset, Modality, interaction_matrix
from gatedrec.data.mmrec import load_mmrec

__all__ = ["Dataset", "Modality", "interaction_matrix", "load_mmrec"]
