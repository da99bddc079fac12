"""Shared fixtures: every test runs in its own temporary working directory
(RecBole writes log/, log_tensorboard/ and saved/ into the current one) and
with a clean sys.argv (RecBole's Config reads --key=value from it)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_datasets() -> Path:
    return Path(os.environ.get("RECBOLE_COMPRESS_SHARED_DATA", REPO.parent / "shared" / "datasets"))


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test on large real data (deselect with -m 'not slow')")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["pytest"])
    yield


@pytest.fixture
def shared_data() -> Path:
    path = shared_datasets()
    if not path.is_dir():
        pytest.skip(f"shared datasets not found at {path} (set RECBOLE_COMPRESS_SHARED_DATA)")
    return path


# tiny, fast settings for runs on ml-100k
TINY = {"epochs": 1, "show_progress": False, "train_batch_size": 4096, "eval_batch_size": 4096, "state": "WARNING"}
