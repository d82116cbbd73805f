"""The one data object every model, trainer and evaluator works on."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from gatedrec.errors import GatedRecError

SPLITS = ("train", "valid", "test")


@dataclass
class Modality:
    """One item feature matrix; rows of items without this modality are zero and ``present`` is False."""

    features: np.ndarray
    present: np.ndarray

    @property
    def dim(self) -> int:
        return self.features.shape[1]


@dataclass
class Dataset:
    """Implicit feedback split into train/valid/test CSR matrices (users x items) plus item modalities."""

    name: str
    train: sp.csr_matrix
    valid: sp.csr_matrix
    test: sp.csr_matrix
    modalities: dict[str, Modality] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return self.train.shape[0]

    @property
    def n_items(self) -> int:
        return self.train.shape[1]

    @classmethod
    def from_labels(cls, name: str, users: np.ndarray, items: np.ndarray, labels: np.ndarray, n_users: int,
                    n_items: int, modalities: dict[str, Modality] | None = None) -> "Dataset":
        """A data set from interactions and their x_labels (0 train, 1 valid, 2 test)."""
        splits = {
            split: interaction_matrix(users[labels == code], items[labels == code], n_users, n_items)
            for code, split in enumerate(SPLITS)
        }
        return cls(name=name, modalities=modalities or {}, **splits)

    def labelled_interactions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Users, items and x_labels of every interaction, split by split."""
        matrices = [self.split(name).tocoo() for name in SPLITS]
        users = np.concatenate([matrix.row for matrix in matrices]).astype(np.int64)
        items = np.concatenate([matrix.col for matrix in matrices]).astype(np.int64)
        labels = np.concatenate([np.full(matrix.nnz, code, dtype=np.int64) for code, matrix in enumerate(matrices)])
        return users, items, labels

    @property
    def warm_items(self) -> np.ndarray:
        """Items with at least one training interaction; the others are cold."""
        return np.diff(self.train.tocsc().indptr) > 0

    def split(self, name: str) -> sp.csr_matrix:
        if name not in SPLITS:
            raise GatedRecError(f"unknown split '{name}'; choose one of {', '.join(SPLITS)}")
        return getattr(self, name)

    def require_modalities(self, model_name: str) -> None:
        if not self.modalities:
            raise GatedRecError(
                f"model '{model_name}' needs item features, but data set '{self.name}' has no modality; "
                "add feature files with --modality NAME=FILE, or train a collaborative model (bpr, lightgcn)"
            )

    def summary(self) -> dict:
        n_train = self.train.nnz
        return {
            "name": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "train": n_train,
            "valid": self.valid.nnz,
            "test": self.test.nnz,
            "density": (n_train + self.valid.nnz + self.test.nnz) / max(1, self.n_users * self.n_items),
            "modalities": {
                name: {"dim": modality.dim, "coverage": float(modality.present.mean())}
                for name, modality in self.modalities.items()
            },
        }


def interaction_matrix(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    """Binary CSR matrix with sorted column indices (the evaluator and sampler rely on the order)."""
    values = np.ones(len(users), dtype=np.float32)
    matrix = sp.csr_matrix((values, (users, items)), shape=(n_users, n_items))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    matrix.sort_indices()
    return matrix
