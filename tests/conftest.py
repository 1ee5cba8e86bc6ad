"""Test-wide settings: quiet progress bars, a private cache folder, a fixed seed."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("CROSSFLOW_PROGRESS", "0")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """Point the project's cache at a fresh folder for one test."""
    monkeypatch.setenv("CROSSFLOW_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"
