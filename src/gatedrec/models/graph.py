"""The normalised user-item graph and LightGCN propagation over it."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch


def normalized_adjacency(train: sp.csr_matrix) -> sp.csr_matrix:
    """Â = D^-1/2 A D^-1/2 for A = [[0, R], [R^T, 0]], no self-loops; isolated nodes get all-zero rows."""
    bipartite = sp.bmat([[None, train], [train.T, None]], format="csr", dtype=np.float32)
    return symmetric_normalize(bipartite)


def symmetric_normalize(adjacency: sp.csr_matrix) -> sp.csr_matrix:
    """D^-1/2 A D^-1/2 with D the row sums; rows of degree 0 stay zero."""
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    inverse_sqrt = np.zeros_like(degree)
    np.power(degree, -0.5, out=inverse_sqrt, where=degree > 0)
    scale = sp.diags(inverse_sqrt.astype(np.float32))
    normalized = (scale @ adjacency @ scale).tocsr().astype(np.float32)
    normalized.sort_indices()
    return normalized


def to_torch_csr(matrix: sp.csr_matrix, device: torch.device | str = "cpu") -> torch.Tensor:
    matrix = matrix.tocsr()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        return torch.sparse_csr_tensor(
            torch.from_numpy(matrix.indptr.astype(np.int64)),
            torch.from_numpy(matrix.indices.astype(np.int64)),
            torch.from_numpy(matrix.data.astype(np.float32)),
            size=matrix.shape,
            device=device,
            check_invariants=False,
        )


class SymmetricOperator:
    """A symmetric sparse matrix Â (torch.sparse CSR) that also hands out its row blocks Â[rows], for
    propagating only to the nodes a batch needs."""

    def __init__(self, matrix: sp.csr_matrix, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.matrix = matrix.tocsr().astype(np.float32)
        self.torch_matrix = to_torch_csr(self.matrix, self.device)

    def row_block(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Â[rows] and its transpose as torch CSR tensors."""
        block = self.matrix[rows.cpu().numpy()]
        return to_torch_csr(block, self.device), to_torch_csr(block.T.tocsr(), self.device)


class _Spmm(torch.autograd.Function):
    """M X for a constant sparse M, with the gradient M^T G from a transpose given up front."""

    @staticmethod
    def forward(ctx, dense: torch.Tensor, matrix: torch.Tensor, transpose: torch.Tensor) -> torch.Tensor:
        ctx.transpose = transpose
        return torch.sparse.mm(matrix, dense.detach())

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return torch.sparse.mm(ctx.transpose, grad_output), None, None


def symmetric_spmm(operator: SymmetricOperator, dense: torch.Tensor) -> torch.Tensor:
    """Â X; Â is symmetric, so it is its own transpose in the gradient and none is ever built."""
    return _Spmm.apply(dense, operator.torch_matrix, operator.torch_matrix)


def light_propagate_rows(adjacency: SymmetricOperator, ego: torch.Tensor, n_layers: int, rows: torch.Tensor) -> torch.Tensor:
    """Rows ``rows`` of light_propagate(adjacency, ego, n_layers); the last layer is computed for those
    rows only, which saves one full sparse product forward and one backward per batch."""
    total = ego[rows]
    if n_layers == 0:
        return total
    layer = ego
    for _ in range(n_layers - 1):
        layer = symmetric_spmm(adjacency, layer)
        total = total + layer[rows]
    block, block_t = adjacency.row_block(rows)
    return (total + _Spmm.apply(layer, block, block_t)) / (n_layers + 1)


def light_propagate(adjacency: SymmetricOperator, ego: torch.Tensor, n_layers: int) -> torch.Tensor:
    """LightGCN: E^(k+1) = Â E^(k); returns mean(E^(0), ..., E^(K))."""
    layer_sum = ego
    layer = ego
    for _ in range(n_layers):
        layer = symmetric_spmm(adjacency, layer)
        layer_sum = layer_sum + layer
    return layer_sum / (n_layers + 1)


def knn_item_graph(features: np.ndarray, present: np.ndarray, k: int, block_rows: int = 2048) -> sp.csr_matrix:
    """Symmetrically normalised cosine k-nearest-neighbour graph of items, built block by block.

    Only items that have the modality get neighbours; the dense items x items similarity never exists
    whole, at most ``block_rows`` rows of it at a time.
    """
    n_items = features.shape[0]
    rows = np.flatnonzero(present)
    unit = torch.from_numpy(features[rows])
    unit = unit / unit.norm(dim=1, keepdim=True).clamp(min=1e-12)
    k = min(k, len(rows) - 1)
    neighbour_parts = []
    for start in range(0, len(rows), block_rows):
        similarity = unit[start : start + block_rows] @ unit.T
        similarity[torch.arange(similarity.shape[0]), torch.arange(start, start + similarity.shape[0])] = -np.inf
        neighbour_parts.append(torch.topk(similarity, k, dim=1).indices.numpy())
    neighbours = rows[np.concatenate(neighbour_parts)]
    sources = np.repeat(rows, k)
    adjacency = sp.csr_matrix((np.ones(len(sources), np.float32), (sources, neighbours.ravel())), shape=(n_items,) * 2)
    return symmetric_normalize(adjacency)
