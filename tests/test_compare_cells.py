"""A comparison's cell: trained once, read back only under the settings it ran with."""

import json

import pytest

from recbole_compress import compare_cells, dense_baseline, quick_start


@pytest.fixture
def runs(monkeypatch):
    """A stand-in for run_recbole_compress that, like RecBole's Config, fills its defaults
    into the nested settings it is given, and counts the runs."""
    calls = []

    def fake_run(model, dataset, config_file_list, settings):
        settings["train_neg_sample_args"].update(alpha=1.0, dynamic=False, candidate_num=0)
        summary = {"model": model, "test": {"ndcg@20": 0.1}, "valid": {"ndcg@20": 0.1}}
        out = settings["output_dir"]
        with open(f"{out}/summary.json", "w") as f:
            json.dump(summary, f)
        calls.append(model)
        return {"summary": summary}

    monkeypatch.setattr(quick_start, "run_recbole_compress", fake_run)
    return calls


def negatives():
    return {"train_neg_sample_args": {"distribution": "uniform", "sample_num": 1}}


def test_a_finished_cell_is_reused_even_though_recbole_filled_in_its_settings(runs, tmp_path):
    cell = tmp_path / "Pop"
    cell.mkdir()
    for _ in range(2):  # two invocations, each building its settings afresh
        settings = negatives()
        outcome = compare_cells.run_cell("Pop", "ml-100k", cell, {"model": "Pop", "settings": settings}, None, settings)
    assert runs == ["Pop"] and outcome.reused
    recorded = json.loads((cell / compare_cells.CELL_FILE).read_text())["record"]["settings"]
    assert recorded == negatives()  # what was asked for, not what RecBole made of it


def test_a_cell_asked_for_other_settings_is_not_reused(runs, tmp_path):
    cell = tmp_path / "Pop"
    cell.mkdir()
    compare_cells.run_cell("Pop", "ml-100k", cell, {"model": "Pop", "settings": negatives()}, None, negatives())
    other = {"train_neg_sample_args": {"distribution": "uniform", "sample_num": 5}}
    outcome = compare_cells.run_cell("Pop", "ml-100k", cell, {"model": "Pop", "settings": other}, None, other)
    assert runs == ["Pop", "Pop"] and not outcome.reused


def test_a_dense_grid_point_is_reused_the_same_way(runs, tmp_path):
    cell = tmp_path / "point"
    cell.mkdir()
    for _ in range(2):
        dense_baseline._run_point("BPR", "ml-100k", cell, negatives(), None)
    assert runs == ["BPR"]


@pytest.mark.parametrize("saved_filled", [True, False])
def test_a_record_with_or_without_recboles_defaults_is_the_same_run(runs, tmp_path, saved_filled):
    """Records written before config.Config copied the caller's settings may hold the
    defaults RecBole filled in; they still name the same run."""
    cell = tmp_path / "Pop"
    cell.mkdir()
    filled = {"train_neg_sample_args": dict(compare_cells.TRAIN_NEG_DEFAULTS)}  # negatives(), filled in
    first, second = (filled, negatives()) if saved_filled else (negatives(), filled)
    for settings in (first, second):
        outcome = compare_cells.run_cell("Pop", "ml-100k", cell, {"model": "Pop", "settings": settings}, None, settings)
    assert runs == ["Pop"] and outcome.reused
