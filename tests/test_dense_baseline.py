"""The dense baseline's grid search: selected on validation, reported on test, resumable."""

import json

import pytest

from recbole_compress import UserError
from recbole_compress import dense_baseline as db
from tests.conftest import TINY


def test_grids_parse_and_expand():
    grid = db.parse_grid("learning_rate=1e-3,5e-3; reg_weight=0,1e-4")
    assert grid == {"learning_rate": [1e-3, 5e-3], "reg_weight": [0, 1e-4]}
    points = db.grid_points(grid)
    assert len(points) == 4 and points[0] == {"learning_rate": 1e-3, "reg_weight": 0}
    assert db.point_name(points[-1]) == "learning_rate=0.005,reg_weight=0.0001"
    for bad in ("", "learning_rate", "learning_rate=", "a=1;a=2"):
        with pytest.raises(UserError):
            db.parse_grid(bad)


def test_default_grid_uses_the_backbones_own_l2_key():
    assert set(db.default_grid("LightGCN")) == {"learning_rate", "reg_weight"}
    assert set(db.default_grid("BPR")) == {"learning_rate", "weight_decay"}  # BPR's loss has no L2 term


def test_selection_uses_validation_never_test(monkeypatch, tmp_path):
    scores = {1e-3: (0.30, 0.40), 5e-3: (0.35, 0.20), 1e-2: (0.20, 0.50)}  # lr -> (valid, test)

    def fake(backbone, dataset, cell, settings, files):
        valid, test = scores[settings["learning_rate"]]
        return {"valid": {"ndcg@10": valid}, "test": {"ndcg@10": test}, "epochs": 3}

    monkeypatch.setattr(db, "_run_point", fake)
    tuning = db.tune_dense("BPR", "ml-100k", {"learning_rate": [1e-3, 5e-3, 1e-2]}, {"valid_metric": "NDCG@10"},
                           tmp_path / "grid")
    assert tuning.best == {"learning_rate": 5e-3} and tuning.best_summary["test"]["ndcg@10"] == 0.20
    assert [r["selected"] for r in tuning.rows] == [False, True, False]
    assert json.loads((tmp_path / "grid" / db.BEST_FILE).read_text())["best"] == {"learning_rate": 5e-3}
    assert "**yes**" in (tmp_path / "grid" / db.GRID_MD).read_text()
    with pytest.raises(UserError, match="both searched and fixed"):
        db.tune_dense("BPR", "ml-100k", {"learning_rate": [1e-3]}, {"learning_rate": 1e-3}, tmp_path / "x")


@pytest.mark.usefixtures("one_thread")
def test_a_real_grid_resumes_without_training_again(monkeypatch, tmp_path):
    settings = {**TINY, "embedding_size": 8}
    grid = {"learning_rate": [1e-3, 1e-2]}
    first = db.tune_dense("BPR", "ml-100k", grid, settings, tmp_path / "grid")
    assert len(first.rows) == 2 and sum(r["selected"] for r in first.rows) == 1
    assert all((tmp_path / "grid" / "cells" / db.point_name(p) / "summary.json").is_file() for p in db.grid_points(grid))

    import recbole_compress.quick_start as quick_start

    monkeypatch.setattr(quick_start, "run_recbole_compress", lambda *a, **k: pytest.fail("a finished point trained again"))
    again = db.tune_dense("BPR", "ml-100k", grid, settings, tmp_path / "grid")
    assert again.best == first.best and again.rows == first.rows
    summary, fields = db.tuned_dense_row("BPR", "ml-100k", tmp_path / "grid", {**settings, "learning_rate": 5e-4}, grid=grid)
    assert summary == first.best_summary and "over 2 points" in fields["note"]


def test_dense_runs_drop_the_methods_own_keys():
    kept = db.dense_settings({"learning_rate": 1e-3, "threshold_init": -6.0, "meta_buckets": 0.01, "prune_rate": 0.1,
                              "embedding_size": 128, "cerp_reg_weight": 14.0})
    assert kept == {"learning_rate": 1e-3, "embedding_size": 128}
