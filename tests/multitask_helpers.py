"""Shared set-up of the multi-task tests: the real CTR/CVR samples and a slice of the
ml-100k funnel converted into a temporary folder, and their loaders."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import shared_datasets

TINY_MT = {"epochs": 2, "mlp_hidden_sizes": [16, 8], "embedding_size": 4, "show_progress": False, "state": "WARNING",
           "train_batch_size": 32, "eval_batch_size": 64}


def convert_samples(root: Path) -> Path:
    """ali-ccp-sample, aliexpress-sample and a 3,000-interaction ml-100k funnel under ``root``."""
    import recbole

    from recbole_compress.data import convert_dataset

    shared = shared_datasets()
    if not (shared / "ali-ccp-sample").is_dir():
        pytest.skip(f"shared datasets not found at {shared} (set RECBOLE_COMPRESS_SHARED_DATA)")
    for name in ("ali-ccp-sample", "aliexpress-sample"):
        convert_dataset("ctcvr", shared / name, root / name)
    ml = Path(recbole.__file__).resolve().parent / "dataset_example" / "ml-100k"
    src = root / "ml-slice"
    src.mkdir()
    lines = (ml / "ml-100k.inter").read_text().splitlines()
    (src / "ml-slice.inter").write_text("\n".join(lines[:3001]) + "\n")
    for suffix in ("user", "item"):
        (src / f"ml-slice.{suffix}").write_text((ml / f"ml-100k.{suffix}").read_text())
    convert_dataset("funnel", src, root / "funnel-slice", negatives=2)
    return root


def funnel_settings(extra=None) -> dict:
    """The ml-100k-funnel yaml's keys for the slice (its own name has no yaml)."""
    return {
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id", "click", "conversion"], "user": ["user_id", "age", "gender", "occupation"],
                     "item": ["item_id", "release_year", "class"]},
        "task_label_fields": ["click", "conversion"], **(extra or {}),
    }


def load(model: str, dataset: str, root: Path, extra=None):
    """(config, train, valid, test) of ``model`` on ``dataset`` as run_recbole_compress builds them."""
    from recbole.data import create_dataset
    from recbole.utils import init_seed

    from recbole_compress import Config
    from recbole_compress.data.multitask import multitask_data_preparation

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["pytest"])
        config = Config(model=model, dataset=dataset, config_dict={"data_path": str(root), **TINY_MT, **(extra or {})})
        init_seed(config["seed"], config["reproducibility"])
        loaders = multitask_data_preparation(config, create_dataset(config))
    return (config, *loaders)
