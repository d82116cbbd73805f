from __future__ import annotations

from pathlib import Path

import pytest

from gatedrec.data.synthetic import generate, save_mmrec

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def small_generated():
    return generate(300, 120, 4000, {"visual": 16, "text": 12}, seed=3)


@pytest.fixture(scope="session")
def small_folder(tmp_path_factory, small_generated):
    return save_mmrec(small_generated, tmp_path_factory.mktemp("data") / "small")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Each test session caches derived graphs in its own folder, never in the user's."""
    monkeypatch.setenv("GATEDREC_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
