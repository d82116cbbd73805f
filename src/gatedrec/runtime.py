"""Process-wide settings for fast, repeatable runs."""

from __future__ import annotations

import ctypes
import ctypes.util

import torch

# glibc mallopt parameters
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
HEAP_BLOCK_LIMIT = 32 * 1024 * 1024  # glibc's largest allowed mmap threshold


def configure_torch(threads: int = 0) -> None:
    """Deterministic kernels make a run repeatable bit for bit (resume relies on it); on the CPU they are
    also no slower here (the index backward then sorts instead of accumulating atomically). Their side
    effect of filling every new tensor with NaN (a guard against reading uninitialised memory) is turned
    off: it costs an extra pass over every new buffer, and the code never reads one before writing it."""
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False
    if threads > 0:
        torch.set_num_threads(threads)
    keep_freed_memory()


def keep_freed_memory() -> None:
    """By default glibc gives every large freed block back to the OS, so each full-size tensor of each
    training step is page-faulted in anew: that alone doubled the time of a sparse product here. Serve
    blocks up to 32 MB from the heap and keep freed heap memory for reuse. Larger blocks stay mapped
    and unmapped one by one: served from a heap that is never trimmed, blocks of hundreds of MB (a
    kNN graph's similarity blocks) fragmented it to ten times the memory in use. A no-op where the C
    library is not glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return
    mallopt(M_MMAP_THRESHOLD, HEAP_BLOCK_LIMIT)
    mallopt(M_TRIM_THRESHOLD, 2**31 - 1)
