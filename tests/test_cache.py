import numpy as np
import scipy.sparse as sp

from gatedrec.cache import cache_dir, cached_sparse, content_key


def test_corrupt_or_unwritable_cache_only_costs_a_recomputation(tmp_path, monkeypatch):
    matrix = sp.csr_matrix(np.eye(3, dtype=np.float32))
    key = content_key(np.arange(3), "x")
    monkeypatch.setenv("GATEDREC_CACHE", str(tmp_path / "cache"))
    (cache_dir()).mkdir(parents=True)
    (cache_dir() / f"knn-{key}.npz").write_bytes(b"not a matrix")
    assert (cached_sparse("knn", key, lambda: matrix) != matrix).nnz == 0
    assert (sp.load_npz(cache_dir() / f"knn-{key}.npz") != matrix).nnz == 0  # rewritten whole
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("GATEDREC_CACHE", str(blocker / "cache"))  # a folder inside a file: unwritable
    assert (cached_sparse("knn", key, lambda: matrix) != matrix).nnz == 0


def test_content_key_sees_values_dtype_and_shape():
    values = np.arange(6, dtype=np.float32)
    keys = {content_key(values), content_key(values.astype(np.float64)), content_key(values.reshape(2, 3)),
            content_key(values + 1), content_key(values, 1)}
    assert len(keys) == 5 and content_key(values) == content_key(values.copy())
