"""Process-wide settings for fast, repeatable runs."""

from __future__ import annotations

import ctypes
import ctypes.util

import torch

# glibc mallopt parameters
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4


def configure_torch(threads: int = 0) -> None:
    """Deterministic kernels make a run repeatable bit for bit (resume relies on it); on the CPU they are
    also no slower here (the index backward then sorts instead of accumulating atomically). Their side
    effect of filling every new tensor with NaN (a guard against reading uninitialised memory) is turned
    off: it cost a full extra pass over each full-size buffer, a quarter of a LightGCN step."""
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False
    if threads > 0:
        torch.set_num_threads(threads)
    keep_freed_memory()


def keep_freed_memory() -> None:
    """By default glibc gives every large freed block back to the OS, so each full-size tensor of each
    training step is page-faulted in anew: that alone doubled the time of a sparse product here. Serve
    large blocks from the heap and keep freed memory for reuse instead (peak memory is unchanged: the
    same blocks are reused). A no-op where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return
    mallopt(M_MMAP_MAX, 0)
    mallopt(M_TRIM_THRESHOLD, 2**31 - 1)
