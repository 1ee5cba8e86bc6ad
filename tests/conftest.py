"""Test-wide settings: quiet progress bars, a private cache folder, a fixed seed."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("CROSSFLOW_PROGRESS", "0")


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Unit tests use small tensors: one thread is fastest, and a busy machine cannot stall it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """Point the project's cache at a fresh folder for one test."""
    monkeypatch.setenv("CROSSFLOW_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"
