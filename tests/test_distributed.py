import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from gatedrec.cli import main
from gatedrec.distributed import Group, rank_device
from gatedrec.errors import GatedRecError

# two processes see the same batches and average their gradients: only the order of float sums differs
TOLERANCE = 0.02


def test_shards_cover_each_batch_once():
    arrays = (np.arange(11), np.arange(11) * 10)
    shards = [Group(rank, 3).shard(arrays) for rank in range(3)]
    np.testing.assert_array_equal(np.concatenate([shard[0] for shard in shards]), arrays[0])
    np.testing.assert_array_equal(np.concatenate([shard[1] for shard in shards]), arrays[1])
    assert Group().shard(arrays) is arrays


def test_each_rank_of_a_node_takes_its_own_card(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert rank_device(torch.device("cuda")) == torch.device("cuda:1")
    assert rank_device(torch.device("cuda:0")) == torch.device("cuda:0")  # asked for by number: kept
    assert rank_device(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setenv("LOCAL_RANK", "2")
    with pytest.raises(GatedRecError, match="local rank 2 finds 2 CUDA device.*--nproc_per_node 2"):
        rank_device(torch.device("cuda"))


@pytest.mark.parametrize("model", ["lightgcn", "rlmultimodalrec"])
def test_two_processes_match_one(tmp_path, small_folder, model):
    common = ["train", "--data", str(small_folder), "--model", model, "--epochs", "6", "--seed", "1",
              "--set", "batch_size=512", "--quiet"]
    assert main(common + ["--out", str(tmp_path / "one")]) == 0
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "gatedrec", *common, "--out", str(tmp_path / "two")]
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert two["processes"] == 2 and one["processes"] == 1
    assert two["epochs_run"] == one["epochs_run"] == 6
    assert two["valid"]["recall@20"] == pytest.approx(one["valid"]["recall@20"], abs=TOLERANCE)
    # epoch by epoch, not only at the best epoch: two nearly equal epochs may swap which one is best, and
    # test Recall@20 at the best epoch then compares different epochs
    for step_two, step_one in zip(two["history"], one["history"], strict=True):
        assert step_two["recall@20"] == pytest.approx(step_one["recall@20"], abs=TOLERANCE)
        assert step_two["loss"] == pytest.approx(step_one["loss"], rel=0.01)
    log_lines = (tmp_path / "two" / "train.log").read_text().splitlines()
    assert sum(line.startswith("epoch") for line in log_lines) == 6  # rank 0 alone writes
