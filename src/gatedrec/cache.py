"""A disk cache for data derived from item content (kNN graphs, encoded features), keyed by the contents
they come from: changed features or texts get a new key, never a stale entry (MMRec keys its cache by
name only).

The folder is $GATEDREC_CACHE, else ~/.cache/gatedrec. An unreadable entry is recomputed; an unwritable
folder only costs the recomputation next time.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from gatedrec.io import save_npy, write_atomic

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    return Path(os.environ.get("GATEDREC_CACHE") or Path.home() / ".cache" / "gatedrec")


def content_key(*parts) -> str:
    """A digest of arrays (dtype, shape and bytes) and plain values."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        if isinstance(part, np.ndarray):
            digest.update(f"{part.dtype}{part.shape}".encode())
            digest.update(np.ascontiguousarray(part).tobytes())
        else:
            digest.update(repr(part).encode())
    return digest.hexdigest()


def cached_sparse(name: str, key: str, compute: Callable[[], sp.csr_matrix]) -> sp.csr_matrix:
    return _cached(cache_dir() / f"{name}-{key}.npz", compute, _save_npz, lambda path: sp.load_npz(path).tocsr())


def cached_array(name: str, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
    return _cached(cache_dir() / f"{name}-{key}.npy", compute, save_npy, lambda path: np.load(path, allow_pickle=False))


def _cached(path: Path, compute, save, load):
    if path.exists():
        try:
            return load(path)
        except (OSError, ValueError) as error:
            log.warning("cache entry %s is unreadable (%s); recomputing it", path, error)
    value = compute()
    try:
        write_atomic(path, lambda tmp: save(tmp, value))
    except OSError as error:
        log.warning("cannot write the cache entry %s (%s); set GATEDREC_CACHE to a writable folder", path, error)
    return value


def _save_npz(path: Path, matrix: sp.csr_matrix) -> None:
    with open(path, "wb") as handle:
        sp.save_npz(handle, matrix)
