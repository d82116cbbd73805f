"""The normalised user-item graph and LightGCN propagation over it."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F


def bipartite_adjacency(train: sp.csr_matrix) -> sp.csr_matrix:
    """A = [[0, R], [R^T, 0]] over users then items."""
    return sp.bmat([[None, train], [train.T, None]], format="csr", dtype=np.float32)


def normalized_adjacency(train: sp.csr_matrix) -> sp.csr_matrix:
    """Â = D^-1/2 A D^-1/2 for A = [[0, R], [R^T, 0]], no self-loops; isolated nodes get all-zero rows."""
    return symmetric_normalize(bipartite_adjacency(train))


def row_normalize(adjacency: sp.csr_matrix) -> sp.csr_matrix:
    """D^-1 A with D the row sums: each row averages its entries; rows of degree 0 stay zero."""
    return (degree_power(adjacency, -1.0) @ adjacency).tocsr().astype(np.float32)


def symmetric_normalize(adjacency: sp.csr_matrix) -> sp.csr_matrix:
    """D^-1/2 A D^-1/2 with D the row sums; rows of degree 0 stay zero."""
    scale = degree_power(adjacency, -0.5)
    return scaled_sorted(scale, adjacency, scale)


def degree_power(matrix: sp.csr_matrix, exponent: float) -> sp.dia_matrix:
    """D^exponent as a diagonal float32 matrix, D the row sums; 0 for rows of degree 0."""
    degree = np.asarray(matrix.sum(axis=1)).ravel()
    powered = np.zeros_like(degree)
    np.power(degree, exponent, out=powered, where=degree > 0)
    return sp.diags(powered.astype(np.float32))


def scaled_sorted(left: sp.dia_matrix, matrix: sp.csr_matrix, right: sp.dia_matrix) -> sp.csr_matrix:
    """left M right in float32 CSR with sorted indices."""
    normalized = (left @ matrix @ right).tocsr().astype(np.float32)
    normalized.sort_indices()
    return normalized


def to_torch_csr(matrix: sp.csr_matrix, device: torch.device | str = "cpu") -> torch.Tensor:
    """A torch CSR tensor; 32-bit indices when they fit: half the memory of 64-bit ones, and the CPU product
    (an embedding bag) takes either at the same speed. On the CPU it shares the matrix's arrays where their
    types already fit (a batch's row blocks are built four times per step; copying them took two thirds of the
    conversion): the matrix must not be changed in place afterwards."""
    matrix = matrix.tocsr()
    index_type = np.int32 if max(matrix.nnz, *matrix.shape) < 2**31 else np.int64
    return csr_tensor(torch.from_numpy(matrix.indptr.astype(index_type, copy=False)),
                      torch.from_numpy(matrix.indices.astype(index_type, copy=False)),
                      torch.from_numpy(matrix.data.astype(np.float32, copy=False)), matrix.shape, device)


def csr_tensor(row_starts: torch.Tensor, columns: torch.Tensor, values: torch.Tensor, size: tuple[int, int],
               device: torch.device | str = "cpu") -> torch.Tensor:
    """A torch CSR tensor of the given arrays, unchecked (they are built right) and without the beta warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        return torch.sparse_csr_tensor(row_starts, columns, values, size=size, device=device, check_invariants=False)


class SparseOperator:
    """A constant sparse matrix M (torch.sparse CSR) with the transpose its gradient needs (M itself when
    ``symmetric``, so none is built), that also hands out row blocks M[rows], for propagating only to
    the nodes a batch needs."""

    def __init__(self, matrix: sp.csr_matrix, device: torch.device | str = "cpu", symmetric: bool = True,
                 tensors: tuple[torch.Tensor, torch.Tensor] | None = None):
        """``tensors``: M and M^T as torch CSR tensors, when already built (and shared with another operator)."""
        self.device = torch.device(device)
        self.matrix = matrix.tocsr().astype(np.float32)
        if tensors is None:
            torch_matrix = to_torch_csr(self.matrix, self.device)
            transpose = torch_matrix if symmetric else to_torch_csr(self.matrix.T.tocsr(), self.device)
            tensors = (torch_matrix, transpose)
        self.torch_matrix, self.torch_transpose = tensors

    def row_block(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """M[rows] and its transpose as torch CSR tensors."""
        block = self.matrix[rows.cpu().numpy()]
        return to_torch_csr(block, self.device), to_torch_csr(block.T.tocsr(), self.device)

    @functools.cached_property
    def padded_rows(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Each row's columns and values as (rows, width) tables, short rows padded with weight 0 (their own
        entries first, in order, so a sum over a padded row adds what the CSR row adds, then zeros); None
        when the widest row exceeds PADDED_MAX_WIDTH. Built on first use."""
        return padded_rows(self.matrix, self.device)


PADDED_MAX_WIDTH = 64


def padded_rows(matrix: sp.csr_matrix, device: torch.device) -> tuple[torch.Tensor, torch.Tensor] | None:
    lengths = np.diff(matrix.indptr)
    width = int(lengths.max(initial=0))
    if width == 0 or width > PADDED_MAX_WIDTH:
        return None
    slot = np.arange(matrix.nnz) - np.repeat(matrix.indptr[:-1], lengths)
    row = np.repeat(np.arange(matrix.shape[0]), lengths)
    columns = np.zeros((matrix.shape[0], width), dtype=np.int64)
    values = np.zeros((matrix.shape[0], width), dtype=np.float32)
    columns[row, slot], values[row, slot] = matrix.indices, matrix.data
    return torch.from_numpy(columns).to(device), torch.from_numpy(values).to(device)


def cpu_kernels(tensor: torch.Tensor) -> bool:
    """Whether products with ``tensor`` take the CPU's kernels (weighted embedding bags, padded rows) or
    torch.sparse's, which are the ones CUDA runs (a test switches this off on the CPU to check that both give
    the same numbers)."""
    return tensor.device.type == "cpu"


def sparse_dense_product(matrix: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    """M X for a torch CSR M. On CPU as a weighted embedding bag per row (row i of the result sums the rows
    of X at row i's columns, times its values): the same sums in the same order, two to three times faster
    than torch's CSR kernels, which zero-fill their output and then accumulate into it."""
    if cpu_kernels(matrix):
        return F.embedding_bag(matrix.col_indices(), dense, matrix.crow_indices(), mode="sum",
                               per_sample_weights=matrix.values(), include_last_offset=True)
    return torch.sparse.mm(matrix, dense)


class _Spmm(torch.autograd.Function):
    """M X for a constant sparse M, with the gradient M^T G from a transpose given up front."""

    @staticmethod
    def forward(ctx, dense: torch.Tensor, matrix: torch.Tensor, transpose: torch.Tensor) -> torch.Tensor:
        ctx.transpose = transpose
        return sparse_dense_product(matrix, dense.detach())

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return sparse_dense_product(ctx.transpose, grad_output.contiguous()), None, None


def spmm(operator: SparseOperator, dense: torch.Tensor) -> torch.Tensor:
    """M X, differentiable in X."""
    return _Spmm.apply(dense, operator.torch_matrix, operator.torch_transpose)


ROW_BLOCK_MAX_SHARE = 0.25


def spmm_rows(operator: SparseOperator, dense: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """(M X)[rows], differentiable in X (rows may repeat). A matrix with short rows (a kNN graph) sums each
    asked row straight from its padded row. Otherwise the rows are computed alone when they are few, else as
    the full product, indexed (cutting out and transposing a block of most rows costs more than it saves)."""
    padded = operator.padded_rows if cpu_kernels(dense) else None
    if padded is not None:
        return _PaddedRowsSpmm.apply(dense, rows, *padded, operator.torch_transpose)
    if len(rows) > ROW_BLOCK_MAX_SHARE * operator.matrix.shape[0]:
        return spmm(operator, dense).index_select(0, rows)
    block, block_t = operator.row_block(rows)
    return _Spmm.apply(dense, block, block_t)


class _PaddedRowsSpmm(torch.autograd.Function):
    """(M X)[rows] as one weighted embedding bag of fixed width over the asked rows' padded columns: no
    product for the rows not asked for, no gather of its result. The gradient M^T G, for G the output's
    gradient added into the asked rows, is one full transposed product."""

    @staticmethod
    def forward(ctx, dense, rows, columns, values, transpose):
        ctx.save_for_backward(rows)
        ctx.transpose, ctx.n_rows = transpose, columns.shape[0]
        return F.embedding_bag(columns.index_select(0, rows), dense.detach(), mode="sum",
                               per_sample_weights=values.index_select(0, rows))

    @staticmethod
    def backward(ctx, grad_output):
        (rows,) = ctx.saved_tensors
        grad_rows = grad_output.new_zeros(ctx.n_rows, grad_output.shape[1]).index_add_(0, rows, grad_output)
        return sparse_dense_product(ctx.transpose, grad_rows), None, None, None, None


def light_propagate_rows(
    adjacency: SparseOperator, ego: torch.Tensor, n_layers: int, rows: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``rows`` of light_propagate(adjacency, ego, n_layers), and of ego.

    Horner's form Σ_k Â^k E = E + Â(E + Â(E + ...)) restricts only the outermost product to the rows:
    one full sparse product fewer than the layer-by-layer sum, forward and backward, and no gather of
    intermediate layers."""
    if n_layers == 0:
        ego_rows = ego.index_select(0, rows)
        return ego_rows, ego_rows
    block, block_t = adjacency.row_block(rows)
    return _HornerRows.apply(ego, rows, n_layers, block, adjacency.torch_matrix, adjacency.torch_transpose, block_t)


class _HornerRows(torch.autograd.Function):
    """F = (E[rows] + M[rows] (E + M (E + ...))) / (K + 1) with K products, and E[rows], with the gradient
    written by hand: for h = M[rows]^T dF / (K + 1), dE = h + M^T (h + M^T (h + ...)) + (dF / (K + 1) +
    dE[rows]) scattered to rows. Autograd would zero-fill and add a full-size gradient per path into E;
    here each product writes one buffer and the rest is added into it in place."""

    @staticmethod
    def forward(ctx, ego, rows, n_layers, block, matrix, transpose, block_t):
        ctx.save_for_backward(rows)
        ctx.n_layers, ctx.transpose, ctx.block_t = n_layers, transpose, block_t
        ego = ego.detach()
        inner = ego
        for _ in range(n_layers - 1):
            inner = sparse_dense_product(matrix, inner).add_(ego)
        ego_rows = ego.index_select(0, rows)
        final = sparse_dense_product(block, inner).add_(ego_rows).div_(n_layers + 1)
        return final, ego_rows

    @staticmethod
    def backward(ctx, grad_final, grad_ego_rows):
        (rows,) = ctx.saved_tensors
        grad_final = grad_final.contiguous() / (ctx.n_layers + 1)
        spread = sparse_dense_product(ctx.block_t, grad_final)
        grad_ego = spread
        for _ in range(ctx.n_layers - 1):
            grad_ego = sparse_dense_product(ctx.transpose, grad_ego).add_(spread)
        grad_rows = grad_final if grad_ego_rows is None else grad_final + grad_ego_rows
        return grad_ego.index_add_(0, rows, grad_rows), None, None, None, None, None, None


def repeated_spmm_rows(operator: SparseOperator, dense: torch.Tensor, times: int,
                       rows: torch.Tensor | None = None) -> torch.Tensor:
    """Rows ``rows`` (all when None) of M^times X; the last product is computed for those rows only."""
    if times == 0:
        return dense if rows is None else dense.index_select(0, rows)
    for _ in range(times - 1):
        dense = spmm(operator, dense)
    return spmm(operator, dense) if rows is None else spmm_rows(operator, dense, rows)


class BipartiteGraph:
    """normalized_adjacency(train) = [[0, R], [R^T, 0]] kept as its two sides: the users' rows R and the items'
    rows R^T, each the other's transpose. A product with the whole graph is one product per side. Torch splits
    a product's rows evenly over its threads, and the whole graph's rows, users with a few entries each and
    then items with many, left one thread most of the work; the rows of one side are alike. On Baby, with two
    threads, the whole graph's product took 0.80-0.92 ms against 0.69-0.80 for its two sides, and a batch's
    rows 0.32-0.37 against 0.29-0.34. Nor does a batch need the user and item tables joined into one."""

    def __init__(self, train: sp.csr_matrix, device: torch.device | str = "cpu"):
        user_rows = normalized_user_rows(train)
        item_rows = user_rows.T.tocsr()
        tensors = (to_torch_csr(user_rows, device), to_torch_csr(item_rows, device))
        self.users = SparseOperator(user_rows, device, tensors=tensors)
        self.items = SparseOperator(item_rows, device, tensors=tensors[::-1])


def normalized_user_rows(train: sp.csr_matrix) -> sp.csr_matrix:
    """The users' rows of normalized_adjacency(train), D_u^-1/2 R D_i^-1/2, computed alone: the same numbers."""
    train = train.tocsr().astype(np.float32)
    # the items' degrees as row sums of R^T, as the whole graph's item rows give them
    return scaled_sorted(degree_power(train, -0.5), train, degree_power(train.T.tocsr(), -0.5))


def propagate_all(graph: BipartiteGraph | SparseOperator, user_ego: torch.Tensor, item_ego: torch.Tensor,
                  n_layers: int) -> tuple[torch.Tensor, torch.Tensor]:
    """light_propagate of the users' and items' ego tables: their final tables. ``graph``: the bipartite
    graph's two sides, or any operator over users then items (one with self-loops, say)."""
    if isinstance(graph, SparseOperator):
        final = light_propagate(graph, torch.cat([user_ego, item_ego]), n_layers)
        return tuple(final.split([len(user_ego), len(item_ego)]))
    if torch.is_grad_enabled():
        # joined and split again, so that each table's gradient sums what the propagation gives it before what
        # its other uses give (as when the whole graph propagated the joined table): the same numbers bit for bit
        user_ego, item_ego = torch.cat([user_ego, item_ego]).split([len(user_ego), len(item_ego)])
    layer_sums, layers = (user_ego, item_ego), (user_ego, item_ego)
    for _ in range(n_layers):
        layers = (spmm(graph.users, layers[1]), spmm(graph.items, layers[0]))
        layer_sums = (layer_sums[0] + layers[0], layer_sums[1] + layers[1])
    return layer_sums[0] / (n_layers + 1), layer_sums[1] / (n_layers + 1)


def propagate_rows(graph: BipartiteGraph | SparseOperator, user_ego: torch.Tensor, item_ego: torch.Tensor,
                   n_layers: int, user_rows: torch.Tensor, item_rows: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Rows ``user_rows`` and ``item_rows`` (each without repeats) of propagate_all's tables, then of the ego
    tables."""
    if isinstance(graph, SparseOperator):
        sizes = [len(user_rows), len(item_rows)]
        rows = torch.cat([user_rows, item_rows + len(user_ego)])
        final, egos = light_propagate_rows(graph, torch.cat([user_ego, item_ego]), n_layers, rows)
        return (*final.split(sizes), *egos.split(sizes))
    if n_layers == 0:
        ego_rows = (user_ego.index_select(0, user_rows), item_ego.index_select(0, item_rows))
        return (*ego_rows, *ego_rows)
    return _BipartiteHornerRows.apply(user_ego, item_ego, user_rows, item_rows, n_layers, graph)


class _BipartiteHornerRows(torch.autograd.Function):
    """_HornerRows side by side: X = E + Â(E + ...) as X_U = R X_I + E_U and X_I = R^T X_U + E_I, the users'
    rows F_U = (E_U[rows] + R[rows] X_I) / (K + 1) and the items' likewise; the gradient the same way."""

    @staticmethod
    def forward(ctx, user_ego, item_ego, user_rows, item_rows, n_layers, graph):
        user_block, user_block_t = graph.users.row_block(user_rows)
        item_block, item_block_t = graph.items.row_block(item_rows)
        ctx.save_for_backward(user_rows, item_rows)
        ctx.n_layers, ctx.graph, ctx.transposed_blocks = n_layers, graph, (user_block_t, item_block_t)
        users, items = user_ego.detach(), item_ego.detach()
        inner_users, inner_items = users, items
        for _ in range(n_layers - 1):
            inner_users, inner_items = (sparse_dense_product(graph.users.torch_matrix, inner_items).add_(users),
                                        sparse_dense_product(graph.items.torch_matrix, inner_users).add_(items))
        user_ego_rows, item_ego_rows = users.index_select(0, user_rows), items.index_select(0, item_rows)
        final_users = sparse_dense_product(user_block, inner_items).add_(user_ego_rows).div_(n_layers + 1)
        final_items = sparse_dense_product(item_block, inner_users).add_(item_ego_rows).div_(n_layers + 1)
        return final_users, final_items, user_ego_rows, item_ego_rows

    @staticmethod
    def backward(ctx, grad_final_users, grad_final_items, grad_user_ego_rows, grad_item_ego_rows):
        user_rows, item_rows = ctx.saved_tensors
        graph, (user_block_t, item_block_t) = ctx.graph, ctx.transposed_blocks
        grad_final_users = grad_final_users.contiguous() / (ctx.n_layers + 1)
        grad_final_items = grad_final_items.contiguous() / (ctx.n_layers + 1)
        spread_users = sparse_dense_product(item_block_t, grad_final_items)
        spread_items = sparse_dense_product(user_block_t, grad_final_users)
        grad_users, grad_items = spread_users, spread_items
        for _ in range(ctx.n_layers - 1):
            grad_users, grad_items = (sparse_dense_product(graph.items.torch_transpose, grad_items).add_(spread_users),
                                      sparse_dense_product(graph.users.torch_transpose, grad_users).add_(spread_items))
        for grad, rows, grad_final, grad_ego_rows in ((grad_users, user_rows, grad_final_users, grad_user_ego_rows),
                                                      (grad_items, item_rows, grad_final_items, grad_item_ego_rows)):
            grad.index_add_(0, rows, grad_final if grad_ego_rows is None else grad_final + grad_ego_rows)
        return grad_users, grad_items, None, None, None, None


def light_propagate(adjacency: SparseOperator, ego: torch.Tensor, n_layers: int) -> torch.Tensor:
    """LightGCN: E^(k+1) = Â E^(k); returns mean(E^(0), ..., E^(K))."""
    layer_sum = ego
    layer = ego
    for _ in range(n_layers):
        layer = spmm(adjacency, layer)
        layer_sum = layer_sum + layer
    return layer_sum / (n_layers + 1)


@torch.no_grad()
def nearest_columns(unit: torch.Tensor, column_unit: torch.Tensor, k: int, block_rows: int = 2048) -> torch.Tensor:
    """(rows, k) indices of each unit row's k most similar unit columns, found block by block so that the
    dense similarity never exists whole."""
    return torch.cat([
        torch.topk(unit[start : start + block_rows] @ column_unit.T, k, dim=1).indices
        for start in range(0, len(unit), block_rows)
    ])


def knn_item_graph(features: np.ndarray, present: np.ndarray, k: int, candidates: np.ndarray | None = None,
                   queries: np.ndarray | None = None, block_rows: int = 2048) -> sp.csr_matrix:
    """Cosine k-nearest-neighbour graph of items (the item itself counts as its nearest, as in FREEDOM),
    each row scaled to sum to one, built block by block.

    Only items that have the modality (and are among ``queries``, a boolean mask, when given) get
    neighbours, chosen among the items that have it (and among ``candidates`` when given); the dense
    items x items similarity never exists whole, at most ``block_rows`` rows of it at a time.
    """
    n_items = features.shape[0]
    rows = np.flatnonzero(present if queries is None else present & queries)
    columns = np.flatnonzero(present if candidates is None else present & candidates)
    k = min(k, len(columns))
    if k == 0 or len(rows) == 0:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    unit = unit_rows(features, rows)
    column_unit = unit if np.array_equal(rows, columns) else unit_rows(features, columns)
    neighbours = columns[nearest_columns(unit, column_unit, k, block_rows).numpy()]
    sources = np.repeat(rows, k)
    weights = np.full(len(sources), 1.0 / k, np.float32)
    return sp.csr_matrix((weights, (sources, neighbours.ravel())), shape=(n_items,) * 2)


def unit_rows(features: np.ndarray, rows: np.ndarray | None = None) -> torch.Tensor:
    """The rows ``rows`` of ``features`` (all when None), scaled to unit length."""
    selected = np.array(features, dtype=np.float32) if rows is None else features[rows]  # a copy of its own, writable
    unit = torch.from_numpy(np.ascontiguousarray(selected, dtype=np.float32))
    return unit / unit.norm(dim=1, keepdim=True).clamp(min=1e-12)


class SparseGraph:
    """A sparse matrix as (rows, columns, values) whose values may carry gradients (learned graphs, edge
    weights); the product gathers the columns' rows, scales and adds them into the rows."""

    def __init__(self, rows: torch.Tensor, columns: torch.Tensor, values: torch.Tensor, size: int):
        self.rows, self.columns, self.values, self.size = rows, columns, values, size

    def __matmul__(self, dense: torch.Tensor) -> torch.Tensor:
        out = dense.new_zeros(self.size, dense.shape[1])
        return out.index_add(0, self.rows, self.values.unsqueeze(1) * dense.index_select(0, self.columns))

    def scaled(self, weight) -> "SparseGraph":
        return SparseGraph(self.rows, self.columns, self.values * weight, self.size)

    def detached(self) -> "SparseGraph":
        return SparseGraph(self.rows, self.columns, self.values.detach(), self.size)

    @staticmethod
    def concat(graphs: list["SparseGraph"]) -> "SparseGraph":
        return SparseGraph(*(torch.cat([getattr(g, name) for g in graphs]) for name in ("rows", "columns", "values")),
                           graphs[0].size)

    def sym_normalized(self) -> "SparseGraph":
        """D^-1/2 A D^-1/2 with D the row sums (MMRec's compute_normalized_laplacian)."""
        degree = torch.zeros(self.size, dtype=self.values.dtype, device=self.values.device).index_add(
            0, self.rows, self.values)
        inverse_sqrt = torch.where(degree > 0, degree.clamp(min=1e-12).rsqrt(), torch.zeros_like(degree))
        values = self.values * inverse_sqrt.index_select(0, self.rows) * inverse_sqrt.index_select(0, self.columns)
        return SparseGraph(self.rows, self.columns, values, self.size)


    def softmax_by_row(self) -> "SparseGraph":
        """Values replaced by a softmax over each row's entries (attention over a node's in-edges)."""
        row_max = torch.full((self.size,), -torch.inf, dtype=self.values.dtype, device=self.values.device)
        row_max = row_max.scatter_reduce(0, self.rows, self.values.detach(), reduce="amax")
        exp = (self.values - row_max.index_select(0, self.rows)).exp()
        total = torch.zeros_like(row_max).index_add(0, self.rows, exp)
        return SparseGraph(self.rows, self.columns, exp / total.index_select(0, self.rows), self.size)
