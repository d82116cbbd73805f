"""The thread count by problem size and by the cores other processes leave free."""

import subprocess
import sys

import torch

from gatedrec import runtime
from gatedrec.runtime import SMALL_PROBLEM_PAIRS, configure_torch, default_threads


def test_small_problems_take_one_thread():
    assert default_threads(SMALL_PROBLEM_PAIRS - 1) == 1


def test_large_problems_take_the_cores_other_processes_leave(monkeypatch):
    monkeypatch.setattr(runtime, "usable_cores", lambda: 4)
    for busy, expected in ((0.1, 4), (1.2, 3), (3.9, 1), (7.5, 1)):
        monkeypatch.setattr(runtime, "cores_busy_elsewhere", lambda seconds, busy=busy: busy)
        assert default_threads(SMALL_PROBLEM_PAIRS) == expected
    monkeypatch.setattr(runtime, "cores_busy_elsewhere", lambda seconds: None)  # no /proc/stat
    assert default_threads(SMALL_PROBLEM_PAIRS) == 4


def test_a_busy_process_is_seen_as_a_busy_core():
    spinner = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 20\n"
                                                      "while time.time() < end:\n    pass\n"])
    try:
        runtime.cores_busy_elsewhere(0.3)  # the spinner's start-up
        assert runtime.cores_busy_elsewhere(0.5) >= 0.7
    finally:
        spinner.kill()
        spinner.wait()


def test_an_explicit_thread_count_wins():
    before = torch.get_num_threads()
    try:
        configure_torch(threads=2, training_pairs=10)
        assert torch.get_num_threads() == 2
        configure_torch(threads=0, training_pairs=10)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
