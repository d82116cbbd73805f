import numpy as np
import pytest
import scipy.sparse as sp
import torch

from gatedrec.data import Modality
from gatedrec.models import graph
from gatedrec.models.item_graph import ContentItemGraph
from gatedrec.models.lightgcn import degree_sensitive_subgraph, distinct
from gatedrec.models.graph import (
    BipartiteGraph,
    SparseOperator,
    repeated_spmm_rows,
    knn_item_graph,
    light_propagate,
    light_propagate_rows,
    normalized_adjacency,
    normalized_user_rows,
    propagate_all,
    propagate_rows,
    row_normalize,
    sparse_dense_product,
    spmm,
    to_torch_csr,
)


def dense_reference(train: np.ndarray) -> np.ndarray:
    n_users, n_items = train.shape
    adjacency = np.zeros((n_users + n_items,) * 2)
    adjacency[:n_users, n_users:] = train
    adjacency[n_users:, :n_users] = train.T
    degree = adjacency.sum(axis=1)
    scale = np.where(degree > 0, degree, np.inf) ** -0.5
    return scale[:, None] * adjacency * scale[None, :]


def test_normalized_adjacency_matches_dense_reference():
    rng = np.random.default_rng(0)
    train = (rng.random((7, 5)) < 0.4).astype(np.float32)
    train[3] = 0  # an isolated user gets an all-zero row
    result = normalized_adjacency(sp.csr_matrix(train)).toarray()
    np.testing.assert_allclose(result, dense_reference(train), rtol=1e-6, atol=1e-7)
    assert np.all(result.diagonal() == 0)


def test_row_normalized_rows_average_their_entries_and_empty_rows_stay_zero():
    weights = np.array([[0, 2, 2], [0, 0, 0], [1, 3, 0]], dtype=np.float32)
    result = row_normalize(sp.csr_matrix(weights)).toarray()
    np.testing.assert_allclose(result, [[0, 0.5, 0.5], [0, 0, 0], [0.25, 0.75, 0]])
    assert result.dtype == np.float32


def test_propagation_and_its_gradient_match_dense_maths():
    rng = np.random.default_rng(1)
    train = (rng.random((6, 4)) < 0.5).astype(np.float32)
    dense = torch.tensor(dense_reference(train), dtype=torch.float32)
    sparse = SparseOperator(normalized_adjacency(sp.csr_matrix(train)))
    ego = torch.randn(10, 3, requires_grad=True)
    out = light_propagate(sparse, ego, 2)
    expected = (ego + dense @ ego + dense @ dense @ ego) / 3
    torch.testing.assert_close(out, expected)
    weights = torch.randn(10, 3)
    (grad,) = torch.autograd.grad((out * weights).sum(), ego)
    ego_ref = ego.detach().clone().requires_grad_(True)
    ((ego_ref + dense @ ego_ref + dense @ dense @ ego_ref) / 3 * weights).sum().backward()
    torch.testing.assert_close(grad, ego_ref.grad)
    torch.testing.assert_close(spmm(sparse, ego.detach()), dense @ ego.detach())


@pytest.mark.parametrize("shape, density", [((9, 6), 0.3), ((4, 5), 0.0), ((0, 3), 0.5)])
def test_sparse_dense_product_matches_the_dense_product_with_empty_rows_or_no_entries(shape, density):
    rng = np.random.default_rng(4)
    matrix = (rng.random(shape) < density) * rng.random(shape)
    if shape[0] > 2:
        matrix[2] = 0  # a row without entries gives a zero row
    dense = torch.randn(shape[1], 3)
    product = sparse_dense_product(to_torch_csr(sp.csr_matrix(matrix)), dense)
    torch.testing.assert_close(product, torch.tensor(matrix, dtype=torch.float32) @ dense)


@pytest.mark.parametrize("symmetric", [True, False])
def test_propagation_to_selected_rows_matches_full_propagation_and_its_gradient(symmetric):
    rng = np.random.default_rng(2)
    matrix = normalized_adjacency(sp.csr_matrix((rng.random((6, 5)) < 0.5).astype(np.float32)))
    if not symmetric:  # e.g. a row-normalised graph
        matrix = sp.csr_matrix(matrix.toarray() * rng.random((11, 11)))
    adjacency = SparseOperator(matrix, symmetric=symmetric)
    rows = torch.tensor([0, 3, 7, 10])
    weights = torch.randn(len(rows), 3)
    for n_layers in (0, 1, 2, 3):
        ego_full = torch.randn(11, 3, requires_grad=True)
        ego_rows = ego_full.detach().clone().requires_grad_(True)
        full = light_propagate(adjacency, ego_full, n_layers)[rows]
        selected, selected_ego = light_propagate_rows(adjacency, ego_rows, n_layers, rows)
        torch.testing.assert_close(selected, full)
        torch.testing.assert_close(selected_ego, ego_rows[rows])
        ((full + ego_full[rows] ** 2) * weights).sum().backward()
        ((selected + selected_ego**2) * weights).sum().backward()
        torch.testing.assert_close(ego_rows.grad, ego_full.grad)


def test_the_users_rows_alone_are_those_of_the_whole_normalised_graph():
    rng = np.random.default_rng(5)
    train = (rng.random((9, 7)) < 0.4).astype(np.float32)
    train[3] = 0  # a user and an item without interactions
    train[:, 4] = 0
    whole = normalized_adjacency(sp.csr_matrix(train))
    alone = normalized_user_rows(sp.csr_matrix(train))
    expected = whole[:9, 9:].tocsr()
    expected.sort_indices()
    for name in ("indptr", "indices", "data"):  # equal bit for bit, not merely close
        np.testing.assert_array_equal(getattr(alone, name), getattr(expected, name))


def test_bipartite_propagation_is_the_whole_graphs_bit_for_bit_with_the_same_gradients():
    rng = np.random.default_rng(6)
    train = sp.csr_matrix((rng.random((40, 25)) < 0.2).astype(np.float32))
    bipartite, whole = BipartiteGraph(train), SparseOperator(normalized_adjacency(train))
    user_rows, item_rows = torch.tensor([0, 7, 8, 39]), torch.tensor([2, 3, 24])
    for n_layers in (0, 1, 2, 3):
        results = []
        for graph_form in (bipartite, whole):
            torch.manual_seed(n_layers)
            users, items = torch.randn(40, 4, requires_grad=True), torch.randn(25, 4, requires_grad=True)
            rows = propagate_rows(graph_form, users, items, n_layers, user_rows, item_rows)
            every = propagate_all(graph_form, users, items, n_layers)
            weights = torch.randn(4)
            loss = sum((table * weights).sum() for table in rows) + sum(table.square().sum() for table in every)
            loss.backward()
            results.append([*rows, *every, users.grad, items.grad])
        for ours, reference in zip(*results):
            assert torch.equal(ours, reference)


@pytest.mark.parametrize("padded_max_width", [64, 0])  # rows from padded rows, or from a block or the full product
def test_product_with_a_non_symmetric_operator_has_the_transposed_gradient(padded_max_width, monkeypatch):
    monkeypatch.setattr(graph, "PADDED_MAX_WIDTH", padded_max_width)
    rng = np.random.default_rng(2)
    dense = (rng.random((7, 7)) < 0.4) * rng.random((7, 7))
    operator = SparseOperator(sp.csr_matrix(dense), symmetric=False)
    x = torch.randn(7, 3, requires_grad=True)
    weights = torch.randn(7, 3)
    (spmm(operator, x) * weights).sum().backward()
    matrix = torch.tensor(dense, dtype=torch.float32)
    torch.testing.assert_close(x.grad, matrix.T @ weights)
    rows = torch.tensor([5, 0, 5])
    x.grad = None
    (repeated_spmm_rows(operator, x, 2, rows) * weights[:3]).sum().backward()
    torch.testing.assert_close(repeated_spmm_rows(operator, x, 2, rows), (matrix @ matrix @ x)[rows])
    torch.testing.assert_close(x.grad, (matrix @ matrix)[rows].T @ weights[:3])


def test_content_item_graph_weighs_text_as_asked_or_learns_the_mix():
    pairs = np.array([[1, 0.1], [1, 0.2], [0.1, 1], [0.2, 1]], dtype=np.float32)
    present = np.ones(4, dtype=bool)
    # text pairs items 0-1 and 2-3, visual pairs 0-2 and 1-3
    modalities = {"visual": Modality(pairs[[0, 2, 1, 3]], present), "text": Modality(pairs, present)}
    fixed = ContentItemGraph(modalities, k=2, layers=1, mix="fixed", text_weight=0.9)
    matrix = fixed(torch.eye(4))  # S I = S
    torch.testing.assert_close(matrix[0], torch.tensor([0.5, 0.45, 0.05, 0.0]))
    torch.testing.assert_close(fixed(torch.eye(4), torch.tensor([2, 0])), fixed(torch.eye(4))[[2, 0]])
    learned = ContentItemGraph(modalities, k=2, layers=1, mix="learned", text_weight=0.9)
    torch.testing.assert_close(learned.weights(), torch.tensor([0.5, 0.5]))
    learned(torch.eye(4))[0, 1].backward()  # only the text graph links items 0 and 1
    assert learned.logits.grad[1] > 0 > learned.logits.grad[0]
    assert learned.parameter_groups()[0]["params"] == [learned.logits] and not fixed.parameter_groups()


def test_knn_item_graph_links_items_with_similar_content():
    features = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [5, 5]], dtype=np.float32)
    present = np.array([True, True, True, True, False])
    graph = knn_item_graph(features, present, k=2, block_rows=2).toarray()
    assert graph[0, 0] > 0 and graph[0, 1] > 0 and graph[2, 3] > 0
    np.testing.assert_allclose(graph[:4].sum(axis=1), 1.0)
    assert graph[0, 2] == 0 and graph[1, 3] == 0
    assert not graph[4].any() and not graph[:, 4].any()


def test_knn_item_graph_gives_neighbours_only_to_the_queried_items_among_the_candidates():
    rng = np.random.default_rng(5)
    features, present = rng.random((40, 6)).astype(np.float32), rng.random(40) < 0.9
    queries, candidates = rng.random(40) < 0.3, rng.random(40) < 0.7
    graph = knn_item_graph(features, present, k=3, candidates=candidates, queries=queries, block_rows=7).toarray()
    every_row = knn_item_graph(features, present, k=3, candidates=candidates).toarray()
    np.testing.assert_array_equal(graph[queries], every_row[queries])
    assert not graph[~queries].any() and not graph[:, ~(candidates & present)].any()


def test_degree_sensitive_subgraph_keeps_a_share_of_the_edges_and_prefers_low_degree_ones():
    rng = np.random.default_rng(4)
    dense = (rng.random((60, 40)) < 0.2).astype(np.float32)
    dense[0, :] = 1  # a user connected to every item: its edges should be dropped most
    train = sp.csr_matrix(dense)
    kept_counts = np.zeros(2)
    for _ in range(20):
        kept = degree_sensitive_subgraph(train, 0.5, rng)
        assert kept.nnz == round(0.5 * train.nnz)
        assert (kept - kept.multiply(train)).nnz == 0  # a subset of the training edges
        kept_counts += [kept[0].nnz / train[0].nnz, kept[1:].nnz / train[1:].nnz]
    assert kept_counts[0] < kept_counts[1]


def test_fixed_and_learned_item_graphs_agree_at_equal_weights_for_any_depth():
    rng = np.random.default_rng(0)
    present = np.ones(30, dtype=bool)
    modalities = {"visual": Modality(rng.random((30, 5)).astype(np.float32), present),
                  "text": Modality(rng.random((30, 4)).astype(np.float32), present)}
    table, rows = torch.randn(30, 3), torch.tensor([3, 1, 3])
    for layers in (1, 2):
        fixed = ContentItemGraph(modalities, k=4, layers=layers, mix="fixed", text_weight=0.5)
        learned = ContentItemGraph(modalities, k=4, layers=layers, mix="learned", text_weight=0.5)
        torch.testing.assert_close(fixed(table), learned(table))
        torch.testing.assert_close(fixed(table, rows), learned(table)[rows])


def test_knn_graphs_are_cached_by_feature_contents(monkeypatch):
    import gatedrec.models.item_graph as item_graph

    rng = np.random.default_rng(5)
    modality = Modality(rng.random((20, 4)).astype(np.float32), np.ones(20, dtype=bool))
    first = item_graph.cached_knn_graph(modality, 3)
    calls = []
    monkeypatch.setattr(item_graph, "knn_item_graph", lambda *args: calls.append(args) or first)
    again = item_graph.cached_knn_graph(modality, 3)
    assert not calls and (again != first).nnz == 0  # served from the cache
    changed = Modality(modality.features.copy(), modality.present)
    changed.features[0, 0] += 1.0
    item_graph.cached_knn_graph(changed, 3)
    item_graph.cached_knn_graph(modality, 4)
    assert len(calls) == 2  # new contents or a new k: a new key, computed afresh


@pytest.mark.parametrize("n_ids", [3, 40, 500])  # few ids of many (sorted), and many (marked in a mask)
def test_distinct_ids_are_torch_uniques_with_where_each_id_lies(n_ids):
    ids = torch.randint(0, 100, (n_ids,), generator=torch.Generator().manual_seed(n_ids))
    rows, where = distinct(ids, 100)
    expected_rows, expected_where = torch.unique(ids, return_inverse=True)
    torch.testing.assert_close(rows, expected_rows)
    torch.testing.assert_close(where, expected_where)
    torch.testing.assert_close(rows[where], ids)


def test_agreement_mix_takes_an_items_neighbours_from_the_modality_that_agrees_with_its_buyers():
    """Items bought in pairs of the same cluster; the text of the first half is random. With the agreement mix,
    those items take most of their neighbours from their image graph, the others from their text graph."""
    rng = np.random.default_rng(0)
    n_items = 80
    cluster = np.arange(n_items) % 8
    centres = rng.standard_normal((8, 6))
    visual = (centres[cluster] + 0.1 * rng.standard_normal((n_items, 6))).astype(np.float32)
    text = (centres[cluster] + 0.1 * rng.standard_normal((n_items, 6))).astype(np.float32)
    random_text = np.arange(n_items) < n_items // 2
    text[random_text] = rng.standard_normal((random_text.sum(), 6)).astype(np.float32)
    users = np.repeat(np.arange(400), 2)
    first = rng.integers(0, n_items, 400)
    items = np.stack([first, (first + 8 * rng.integers(1, 10, 400)) % n_items], axis=1).ravel()
    bought = sp.csr_matrix((np.ones(800, dtype=np.float32), (users, items)), shape=(400, n_items))
    present = np.ones(n_items, dtype=bool)
    modalities = {"visual": Modality(visual, present), "text": Modality(text, present)}
    graphs = {mix: ContentItemGraph(modalities, k=3, layers=1, mix=mix, text_weight=0.5, interactions=bought,
                                    agreement_prior=2.0) for mix in ("fixed", "agreement")}
    probe = torch.eye(n_items)
    same_cluster = torch.from_numpy((cluster[:, None] == cluster[None, :]).astype(np.float32))
    share = {mix: (graph(probe) * same_cluster).sum(dim=1).numpy() for mix, graph in graphs.items()}
    assert share["agreement"][random_text].mean() > share["fixed"][random_text].mean() + 0.08
    np.testing.assert_allclose(graphs["agreement"](probe).sum(dim=1).numpy(), 1.0, rtol=1e-5)  # rows sum to one
