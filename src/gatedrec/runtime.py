"""Process-wide settings for fast, repeatable runs."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import time

# glibc mallopt parameters
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
HEAP_BLOCK_LIMIT = 32 * 1024 * 1024  # glibc's largest allowed mmap threshold


# training pairs below which one thread is the default: an epoch's products are then too small to share out (on
# the 2-core VM one thread beat two on amazon-scientific-mm and lastfm-2k-multimodal even on an idle machine)
SMALL_PROBLEM_PAIRS = 100_000
# how long the cores' use by other processes is sampled before a large problem's thread count is chosen
LOAD_SAMPLE_SECONDS = 0.25


def default_threads(training_pairs: int) -> int:
    """threads=0: one thread below SMALL_PROBLEM_PAIRS training pairs; above, one per core that other processes
    leave free (at least one). PyTorch's threads spin while they wait for each other: beside one busy process,
    two threads made generated Baby-size epochs 3.2 times as long as one thread, and amazon-scientific-mm's 3.0
    times (benchmarks/threads.py). Letting them sleep instead (OMP_WAIT_POLICY=PASSIVE) cured that but made two
    threads on an idle machine slower than one."""
    if training_pairs < SMALL_PROBLEM_PAIRS:
        return 1
    cores = usable_cores()
    busy = cores_busy_elsewhere(LOAD_SAMPLE_SECONDS)
    return cores if busy is None else max(1, min(cores, cores - round(busy)))


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cores_busy_elsewhere(seconds: float) -> float | None:
    """How many cores other processes kept busy over ``seconds`` (this one sleeps meanwhile), from /proc/stat;
    None where there is no /proc/stat."""
    first = cpu_times()
    if first is None:
        return None
    time.sleep(seconds)
    second = cpu_times()
    total, idle = (after - before for after, before in zip(second, first))
    return (total - idle) / total * (os.cpu_count() or 1) if total > 0 else 0.0


def cpu_times() -> tuple[int, int] | None:
    """(all, idle) jiffies of the machine's CPUs so far; idle counts I/O wait too."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = [int(value) for value in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(fields[:8]), fields[3] + fields[4]


def configure_torch(threads: int = 0, training_pairs: int | None = None) -> None:
    """Deterministic kernels make a run repeatable bit for bit (resume relies on it); on the CPU they are
    also no slower here (the index backward then sorts instead of accumulating atomically). Their side
    effect of filling every new tensor with NaN (a guard against reading uninitialised memory) is turned
    off: it costs an extra pass over every new buffer, and the code never reads one before writing it.
    ``threads`` 0: default_threads(training_pairs) where the problem's size is given, else PyTorch's own."""
    import torch

    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False
    if threads == 0 and training_pairs is not None:
        threads = default_threads(training_pairs)
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
