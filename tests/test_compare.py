"""A tiny comparison on ml-100k: 2 methods, 1 budget, 1 epoch."""

import csv

import pytest
import torch

from recbole_compress import UserError
from recbole_compress.cli import main as cli_main
from recbole_compress.compare import run_comparison
from tests.conftest import TINY


def main(argv):
    return cli_main(["compare", *argv])

pytestmark = pytest.mark.usefixtures("one_thread")

# PEP's pruning stage: a fast pace and at most 2 epochs (its mask then keeps exactly the budget)
SETTINGS = {**TINY, "embedding_size": 16, "n_layers": 1, "train_batch_size": 2048, "threshold_pace": 0.2,
            "threshold_epochs": 2}


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(out)
        result = run_comparison("ml-100k", "LightGCN", [0.1], ["LTH", "PEP"], out / "cmp", config_dict=SETTINGS)
    return result


def test_writes_table_plot_and_front(comparison):
    out = comparison["out"]
    rows = list(csv.DictReader(open(f"{out}/compare.csv")))
    assert [r["method"] for r in rows] == ["dense", "LTH", "PEP"]
    assert all(r["test_mrr@10"] for r in rows)
    assert "| LTH | 0.1 |" in open(f"{out}/compare.md").read()
    assert open(f"{out}/compare.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    front = list(csv.DictReader(open(f"{out}/pareto.csv")))
    assert front and {r["method"] for r in front} <= {"dense", "LTH", "PEP"}


def test_budgets_are_met_by_the_exported_tables(comparison):
    out = comparison["out"]
    for row in comparison["rows"][1:]:
        assert row["fits"] and row["table_bytes"] <= row["max_bytes"]
        # the bytes are the artifact's: the table tensors saved in the cell's model.pt
        cell = "LTH-b0.1" if row["method"] == "LTH" else "PEP-b0.1"
        artifact = torch.load(f"{out}/cells/{cell}/model.pt", weights_only=True)
        saved = sum(t.numel() * t.element_size() for k, t in artifact["tensors"].items() if "::" in k)
        assert saved == row["table_bytes"]


def test_resume_skips_finished_cells(comparison, tmp_path, monkeypatch, capsys):
    out = comparison["out"]
    stamp = {c: (f"{out}/cells/{c}/summary.json") for c in ("dense", "LTH-b0.1")}
    before = {c: open(p).read() for c, p in stamp.items()}
    # PEP's cell was interrupted: it runs again, the others are reused
    import os

    os.remove(f"{out}/cells/PEP-b0.1/cell.json")
    rows = run_comparison("ml-100k", "LightGCN", [0.1], ["LTH", "PEP"], out, config_dict=SETTINGS)["rows"]
    printed = capsys.readouterr().out
    assert printed.count("[finished earlier]") == 2 and "PEP @ 0.1" in printed
    assert {c: open(p).read() for c, p in stamp.items()} == before
    assert [r["method"] for r in rows] == ["dense", "LTH", "PEP"]


def test_report_trains_nothing_and_marks_unfinished_cells(comparison, tmp_path, monkeypatch, capsys):
    import recbole_compress.compare_cells as compare_cells

    def no_training(*args, **kwargs):
        raise AssertionError("--report must not train")

    monkeypatch.setattr(compare_cells, "run_cell", no_training)
    out = comparison["out"]

    def report(folder, *more):
        return main(["--dataset=ml-100k", "--backbone=LightGCN", "--budgets=0.1", f"--out={folder}", "--report", *more,
                     *(f"--{k}={v}" for k, v in SETTINGS.items())])

    assert report(out, "--methods=LTH,PEP,QR") == 0
    rows = {r["method"]: r for r in csv.DictReader(open(f"{out}/compare.csv"))}
    assert rows["LTH"]["test_mrr@10"] == str(comparison["rows"][1]["test_mrr@10"])
    assert rows["QR"]["note"] == "not run yet" and not rows["QR"]["test_mrr@10"]
    # no comparison there: one line, non-zero exit, no folder left behind
    assert report(tmp_path / "empty") == 2
    assert "holds no comparison" in capsys.readouterr().err and not (tmp_path / "empty").exists()
    # a comparison whose dense cell has not finished
    (tmp_path / "started").mkdir()
    (tmp_path / "started" / "comparison.json").write_text(open(f"{out}/comparison.json").read())
    assert report(tmp_path / "started") == 2
    assert "dense cell" in capsys.readouterr().err


def test_other_settings_do_not_mix_into_a_comparison(comparison):
    with pytest.raises(UserError, match="other settings"):
        run_comparison("ml-100k", "LightGCN", [0.1], ["LTH"], comparison["out"], config_dict={**SETTINGS, "seed": 3})


def test_a_comparison_recorded_with_recboles_filled_in_defaults_is_the_same_comparison(tmp_path):
    from recbole_compress.compare import _claim
    from recbole_compress.compare_cells import TRAIN_NEG_DEFAULTS

    asked = {"settings": {"train_neg_sample_args": {"distribution": "uniform", "sample_num": 1}}}
    _claim(tmp_path, {"settings": {"train_neg_sample_args": dict(TRAIN_NEG_DEFAULTS)}})  # as written before
    _claim(tmp_path, asked)  # the same comparison
    with pytest.raises(UserError, match="other settings"):
        _claim(tmp_path, {"settings": {"train_neg_sample_args": {"distribution": "uniform", "sample_num": 5}}})


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["--dataset=ml-100k", "--backbone=LightGCN", "--budgets=2", f"--out={tmp_path}/x"]) == 2
    assert "outside (0, 1)" in capsys.readouterr().err
    assert main(["--dataset=ml-100k", "--backbone=LightGCN", "--methods=ZIP", f"--out={tmp_path}/y", "--epochs=1"]) == 2
    assert "unknown method" in capsys.readouterr().err


def test_tune_dense_selects_on_validation_and_every_cell_trains_with_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    flags = ["--dataset=ml-100k", "--backbone=BPR", "--budgets=0.2", "--methods=QR", f"--out={tmp_path / 'cmp'}",
             "--local", "--tune-dense=learning_rate=1e-4,1e-2", "--epochs=2", "--show_progress=False",
             "--train_batch_size=4096", "--eval_batch_size=4096", "--state=WARNING", "--embedding_size=16"]
    assert main(flags) == 0
    grid = list(csv.DictReader(open(tmp_path / "cmp" / "dense-grid" / "dense_grid.csv")))
    assert [float(r["learning_rate"]) for r in grid] == [1e-4, 1e-2]
    chosen = max(grid, key=lambda r: float(r["valid_mrr@10"]))  # selected on validation, not test
    assert [r["selected"] for r in grid].count("True") == 1 and chosen["selected"] == "True"
    import json

    for cell in ("dense", "QR-b0.2"):  # the comparison's cells train with the selected point
        settings = json.load(open(tmp_path / "cmp" / "cells" / cell / "run_config.json"))["config"]
        assert settings["learning_rate"] == float(chosen["learning_rate"])
    text = open(tmp_path / "cmp" / "compare.md").read()
    assert f"selected learning_rate={float(chosen['learning_rate']):g}" in text
    capsys.readouterr()
    assert main([*flags, "--report"]) == 0  # read back, nothing trained
    assert "[dense]" not in capsys.readouterr().out
    assert main([*flags, "--learning_rate=0.1", f"--out={tmp_path / 'other'}"]) == 2  # searched and fixed at once
    assert "both searched and fixed" in capsys.readouterr().err


def test_tune_dense_checks_the_request_before_the_grid_trains(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["--dataset=ml-100k", "--backbone=BPR", "--methods=NOPE", "--tune-dense", f"--out={tmp_path / 'cmp'}",
                 "--local"]) == 2
    assert "unknown method(s) NOPE" in capsys.readouterr().err
    assert not (tmp_path / "cmp").exists()  # nothing trained, no folder
