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


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one thread is fastest, and on a loaded 2-core machine more
    threads only spin against each other (minutes instead of seconds)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def load_splits(model: str, config_dict: dict, dataset: str = "ml-100k", with_dataset: bool = False):
    """RecBole's (train, valid, test) loaders for ``model``, seeded as RecBole seeds
    a run (the split is random: same seed, same split). Outside the per-test fixtures
    (module-scoped callers), so sys.argv is cleared here too. ``with_dataset``: also
    return the whole dataset first."""
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import init_seed

    from recbole_compress import Config

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["pytest"])
        config = Config(model=model, dataset=dataset, config_dict=dict(config_dict))
        init_seed(config["seed"], config["reproducibility"])
        full = create_dataset(config)
        loaders = data_preparation(config, full)
    return (full, *loaders) if with_dataset else loaders
