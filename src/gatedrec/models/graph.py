"""The normalised user-item graph and LightGCN propagation over it."""

from __future__ import annotations

import functools
import warnings
from concurrent.futures import ThreadPoolExecutor

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
    """A symmetric sparse matrix that multiplies dense tensors.

    On the CPU it uses SciPy's CSR kernel, which releases the GIL, on row blocks of equal non-zero
    count in parallel threads (one per torch thread): about twice as fast as torch.sparse there.
    Other devices use torch.sparse CSR.
    """

    def __init__(self, matrix: sp.csr_matrix, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.shape = matrix.shape
        self.row_blocks: list[tuple[int, int, sp.csr_matrix]] = []
        self.torch_matrix = None
        if self.device.type == "cpu":
            matrix = matrix.tocsr().astype(np.float32)
            bounds = _balanced_row_bounds(matrix.indptr, max(1, torch.get_num_threads()))
            self.row_blocks = [(start, stop, matrix[start:stop]) for start, stop in zip(bounds[:-1], bounds[1:])]
        else:
            self.torch_matrix = to_torch_csr(matrix, self.device)

    def __matmul__(self, dense: torch.Tensor) -> torch.Tensor:
        if self.torch_matrix is not None:
            return torch.sparse.mm(self.torch_matrix, dense.detach())
        dense_array = dense.detach().contiguous().numpy()
        result = np.empty((self.shape[0], dense_array.shape[1]), dtype=np.float32)

        def multiply(block: tuple[int, int, sp.csr_matrix]) -> None:
            start, stop, rows = block
            result[start:stop] = rows @ dense_array

        if len(self.row_blocks) == 1:
            multiply(self.row_blocks[0])
        else:
            list(_thread_pool().map(multiply, self.row_blocks))
        return torch.from_numpy(result)


def _balanced_row_bounds(indptr: np.ndarray, n_blocks: int) -> list[int]:
    targets = np.linspace(0, indptr[-1], n_blocks + 1)[1:-1]
    inner = np.searchsorted(indptr, targets).tolist()
    return sorted({0, *inner, len(indptr) - 1})


@functools.lru_cache(maxsize=1)
def _thread_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=max(1, torch.get_num_threads()), thread_name_prefix="gatedrec-spmm")


class _SymmetricSpmm(torch.autograd.Function):
    """Â X with the gradient Â^T G = Â G, since Â is symmetric: no transpose is ever built."""

    @staticmethod
    def forward(ctx, dense: torch.Tensor, operator: SymmetricOperator) -> torch.Tensor:
        ctx.operator = operator
        return operator @ dense

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return ctx.operator @ grad_output, None


def symmetric_spmm(operator: SymmetricOperator, dense: torch.Tensor) -> torch.Tensor:
    return _SymmetricSpmm.apply(dense, operator)


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
