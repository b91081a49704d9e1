"""Shared fixtures: seeding, and the location of the real data sets (../shared/data)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _data_root() -> Path:
    env = os.environ.get("ADVLAB_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """One intra-op thread: the test models are small, and on a shared 2-core machine two
    OpenMP threads competing with another process made attacks 30-100x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The folder of real data sets; tests that need it skip with the reason when it is absent."""
    root = _data_root()
    if not root.is_dir():
        pytest.skip(f"real data sets not found at {root} (set ADVLAB_DATA or put ../shared beside "
                    "the checkout)")
    return root


def require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"data file {path} is absent")
    return path
