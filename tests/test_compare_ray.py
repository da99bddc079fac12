"""A comparison on a local Ray: cells as tasks, two seeds, where each ran, resume without Ray."""

import csv

import pytest

from recbole_compress import UserError
from recbole_compress.compare import run_comparison
from tests.test_compare import SETTINGS, main

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def on_ray(tmp_path_factory):
    pytest.importorskip("ray")
    from recbole_compress.compare_ray import RayRunner
    from recbole_compress.ray_cluster import import_ray

    ray, _ = import_ray()
    out = tmp_path_factory.mktemp("compare_ray")
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(out)
            first = run_comparison("ml-100k", "BPR", [0.1], ["QR"], out / "cmp", config_dict=SETTINGS,
                                   seeds=[1, 2], runner=RayRunner(cpu=1, max_concurrent=2))
    finally:
        ray.shutdown()
    return {"out": out / "cmp", "first": first, "ray": ray}


def test_cells_run_as_ray_tasks_once_per_seed(on_ray):
    out = on_ray["out"]
    cells = list(csv.DictReader(open(out / "cells.csv")))
    assert [(c["cell"], c["status"]) for c in cells] == [
        ("dense-seed1", "finished"), ("dense-seed2", "finished"), ("QR-b0.1-seed1", "finished"), ("QR-b0.1-seed2", "finished")]
    assert {c["node"] for c in cells} == {"head"} and all(c["node_id"] for c in cells)
    # RecBole's logs went into each cell's folder (the task ran there), not into the driver's directory
    assert all(any((out / "cells" / c["cell"] / "log").iterdir()) for c in cells)
    rows = {r["method"]: r for r in csv.DictReader(open(out / "compare.csv"))}
    assert rows["QR"]["n_seeds"] == "2" and float(rows["QR"]["test_mrr@10_sd"]) >= 0
    assert "±" in (out / "compare.md").read_text()


def test_finished_comparison_resumes_without_starting_ray(on_ray, capsys):
    from recbole_compress.compare_ray import RayRunner

    before = (on_ray["out"] / "compare.csv").read_text()
    run_comparison("ml-100k", "BPR", [0.1], ["QR"], on_ray["out"], config_dict=SETTINGS, seeds=[1, 2],
                   runner=RayRunner())
    assert capsys.readouterr().out.count("[finished earlier]") == 4
    assert not on_ray["ray"].is_initialized()
    assert (on_ray["out"] / "compare.csv").read_text() == before


def test_seed_and_seeds_together_is_an_error(tmp_path):
    with pytest.raises(UserError, match="--seed and --seeds"):
        run_comparison("ml-100k", "LightGCN", [0.1], ["LTH"], tmp_path, config_dict={**SETTINGS, "seed": 3}, seeds=[1, 2])


def test_cli_runner_choice(tmp_path, capsys, monkeypatch):
    import recbole_compress.ray_cluster as ray_cluster

    base = ["--dataset=ml-100k", "--backbone=LightGCN", "--budgets=0.1", f"--out={tmp_path}/x"]
    assert main([*base, "--local", "--ray-address=auto"]) == 2
    assert "--local runs the cells in this process; drop --ray-address" in capsys.readouterr().err
    assert main([*base, "--seeds=1,x"]) == 2
    assert "--seeds=1,x" in capsys.readouterr().err
    assert main([*base, "--gpu=1.5", "--epochs=1"]) == 2
    assert "whole GPUs" in capsys.readouterr().err
    # without Ray installed a --ray-address cannot be honoured; the plain command runs here
    monkeypatch.setattr(ray_cluster, "ray_installed", lambda: False)
    assert main([*base, "--ray-address=auto"]) == 2
    assert "needs Ray" in capsys.readouterr().err
