"""Ray Tune searches: search files, the Pareto front, and a tiny real search with resume."""

import json
import os
import sys

import pytest

from recbole_compress import UserError
from recbole_compress.pareto import best_per_budget, choose, front, mark_pareto
from recbole_compress.run import read_csv
from recbole_compress.tune_space import load_search_file
from tests.conftest import REPO, TINY


def write(tmp_path, text, name="space.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


# -- search files (no ray) ----------------------------------------------------------------

def test_search_file_forms_settings_and_fixed_config(tmp_path):
    spec = load_search_file(write(tmp_path, """
prune_rate: {choice: [0.1, 0.2]}
prune_rounds: {randint: [2, 6]}
learning_rate: {loguniform: [1e-4, 1e-2]}
dropout_prob: {uniform: [0.0, 0.5]}
search: {num_samples: 3, scheduler: fifo, search_alg: random, gpu: 0.25}
config: {epochs: 2}
"""))
    forms = {d.key: (d.form, d.args) for d in spec.space}
    assert forms == {
        "prune_rate": ("choice", (0.1, 0.2)),
        "prune_rounds": ("randint", (2, 6)),
        "learning_rate": ("loguniform", (1e-4, 1e-2)),  # "1e-4" is a string to yaml
        "dropout_prob": ("uniform", (0.0, 0.5)),
    }
    assert (spec.settings.num_samples, spec.settings.scheduler, spec.settings.search_alg, spec.settings.gpu) == (3, "fifo", "random", 0.25)
    assert spec.fixed == {"epochs": 2}


@pytest.mark.parametrize("path", ["properties/tune/lth.yaml", "properties/tune/jpq.yaml", "properties/tune/cerp.yaml"])
def test_shipped_search_files_load(path):
    assert load_search_file(REPO / path).space


@pytest.mark.parametrize(
    "text, named",
    [
        ("prune_rate: 0.2\n", "prune_rate"),  # a fixed value at the top level
        ("prune_rate: {normal: [0, 1]}\n", "normal"),
        ("prune_rate: {choice: []}\n", "prune_rate"),
        ("prune_rate: {uniform: [0.5, 0.1]}\n", "low < high"),
        ("learning_rate: {loguniform: [0, 1e-2]}\n", "0 < low"),
        ("prune_rounds: {randint: [1.5, 4]}\n", "integers"),
        ("prune_rate: {uniform: [a, b]}\n", "not numbers"),
        ("prune_rate: {choice: [0.1]}\nsearch: {scheduler: hyperband}\n", "scheduler"),
        ("prune_rate: {choice: [0.1]}\nsearch: {num_sample: 3}\n", "num_sample"),
        ("search: {num_samples: 3}\n", "searches no key"),
        ("prune_rate: {choice: [0.1\n", "not valid yaml"),
        ("prune_rate: {choice: [0.1]}\nconfig: {prune_rate: 0.2}\n", "both searched and fixed"),
    ],
)
def test_bad_search_file_is_one_clear_line(tmp_path, text, named):
    with pytest.raises(UserError) as err:
        load_search_file(write(tmp_path, text))
    assert named in str(err.value) and "\n" not in str(err.value)


def test_missing_search_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_search_file(tmp_path / "nope.yaml")


def test_cli_bad_search_file_exits_2(tmp_path, capsys):
    from recbole_compress.cli import legacy_main as main  # run_recbole_compress.py --tune=FILE

    path = write(tmp_path, "prune_rate: {gaussian: [0, 1]}\n")
    assert main(["--model=BPR_LTH", "--dataset=ml-100k", f"--tune={path}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "gaussian" in err[0]


def test_search_flags_need_tune():
    from recbole_compress.cli import legacy_main as main

    assert main(["--model=BPR", "--dataset=ml-100k", "--num_samples=3"]) == 2


# -- Pareto front (no ray) ------------------------------------------------------------------

ROWS = [
    {"trial_id": "a", "valid_ndcg@10": 0.30, "model_bytes": 1000},
    {"trial_id": "b", "valid_ndcg@10": 0.28, "model_bytes": 400},
    {"trial_id": "c", "valid_ndcg@10": 0.27, "model_bytes": 600},  # dominated by b
    {"trial_id": "d", "valid_ndcg@10": 0.20, "model_bytes": 100},
    {"trial_id": "e", "valid_ndcg@10": 0.30, "model_bytes": 1200},  # dominated by a (tie, bigger)
    {"trial_id": "f", "valid_ndcg@10": None, "model_bytes": None},  # stopped early
]


def test_pareto_front_and_flags():
    rows = [dict(r) for r in ROWS]
    assert [r["trial_id"] for r in front(rows, "valid_ndcg@10")] == ["d", "b", "a"]
    assert {r["trial_id"]: r["pareto"] for r in rows} == {"a": True, "b": True, "c": False, "d": True, "e": False, "f": False}
    # smaller is better (e.g. a loss): the front flips
    assert {r["trial_id"] for r in front([dict(r) for r in ROWS], "valid_ndcg@10", bigger=False)} == {"d"}


def test_best_per_budget_and_choice():
    rows = [dict(r) for r in ROWS]
    budgets = best_per_budget(rows, "valid_ndcg@10", [0.05, 0.1, 0.5, 1.0], dense_bytes=1000)
    assert [(b["max_bytes"], b["trial"] and b["trial"]["trial_id"]) for b in budgets] == [
        (50, None), (100, "d"), (500, "b"), (1000, "a"),
    ]
    assert choose(rows, "valid_ndcg@10")["trial_id"] == "a"
    assert choose([dict(ROWS[-1])], "valid_ndcg@10") is None
    mark_pareto(rows, "valid_ndcg@10")


# -- a real search (Ray, CPU) ---------------------------------------------------------------

@pytest.fixture(scope="module")
def search(tmp_path_factory):
    """3 tiny BPR_LTH trials; the search is interrupted (SIGINT) after 2 finished, then resumed."""
    pytest.importorskip("ray")
    from recbole_compress.tune import import_ray, run_search

    ray, _ = import_ray()  # before anything else imports ray: it reads its uv setting at import

    root = tmp_path_factory.mktemp("search")
    space = write(root, """
prune_rate: {choice: [0.2, 0.5]}
prune_rounds: {randint: [1, 2]}
search: {num_samples: 3, search_alg: random, objective: validation, scheduler: asha, grace_period: 10, cpu: 1}
config: {epochs: 1}
""")
    flags = {"storage_path": str(root / "ray"), "name": "tiny"}
    overrides = {k: v for k, v in TINY.items() if k != "epochs"}
    try:
        first = run_search("BPR_LTH", "ml-100k", space, overrides=overrides, flags=flags, _interrupt=2)
        finished = {r["trial_id"]: (root / "ray" / "tiny" / "trials" / r["trial_id"] / "summary.json").stat().st_mtime
                    for r in first["rows"] if r["status"] == "finished"}
        second = run_search("BPR_LTH", "ml-100k", space, overrides=overrides, flags=flags, resume=True)
        # every trial of this one fails (prune_rate outside (0, 1)): retried once, then recorded
        bad = write(root, "prune_rate: {choice: [1.5]}\nsearch: {num_samples: 1, max_failures: 1}\n", "bad.yaml")
        failing = run_search("BPR_LTH", "ml-100k", bad, overrides=dict(TINY), flags={**flags, "name": "failing"})
        # the two objectives that aim at the front: Optuna's multi-objective TPE, and a byte budget
        aims = write(root, """
prune_rate: {choice: [0.3, 0.6]}
search: {num_samples: 1, startup_trials: 1, cpu: 1}
config: {prune_rounds: 1, ticket_select: sparsest}
""", "aims.yaml")
        pareto = run_search("BPR_LTH", "ml-100k", aims, overrides=dict(TINY), flags={**flags, "name": "pareto"})
        budget = run_search("BPR_LTH", "ml-100k", aims, overrides=dict(TINY),
                            flags={**flags, "name": "budget", "budget": 0.6})
    finally:
        ray.shutdown()
    return {"root": root, "first": first, "second": second, "finished_before": finished, "failing": failing,
            "pareto": pareto, "budget": budget}


def test_search_reports_every_evaluation_and_writes_results(search):
    result = search["second"]
    rows = result["rows"]
    assert len(rows) == 3 and all(r["status"] == "finished" for r in rows), rows
    # 2 rounds (dense + 1 pruned) x 1 epoch: one report per evaluation, plus the final report
    # (a trial restarted by the resume reports only what it had left to do)
    before = [r for r in rows if r["trial_id"] in search["finished_before"]]
    assert len(before) == 2 and all(r["reports"] == 3 for r in before), rows
    assert all(r["model_bytes"] > 0 and r["nonzero_parameters"] > 0 for r in rows)
    table = read_csv(result["pareto_csv"])
    assert len(table) == 3 and {"trial_id", "pareto", "valid_mrr@10", "test_mrr@10", "model_bytes", "prune_rate"} <= set(table[0])
    assert any(r["pareto"] == "True" for r in table)
    exp = search["root"] / "ray" / "tiny"
    assert (exp / "pareto.png").stat().st_size > 0 and (exp / "budgets.csv").is_file()
    assert json.loads((exp / "search.json").read_text())["chosen_trial"] == result["chosen_trial"]


def test_chosen_yaml_runs_as_config_file(search):
    import yaml

    result = search["second"]
    chosen = yaml.safe_load(open(result["chosen_yaml"]))
    row = next(r for r in result["rows"] if r["trial_id"] == result["chosen_trial"])
    assert chosen["model"] == "BPR_LTH" and chosen["prune_rate"] == row["prune_rate"] and chosen["epochs"] == 1
    assert "--config_files=" in result["command"] and result["chosen_yaml"] in result["command"]


def test_resume_keeps_finished_trials(search):
    first, second = search["first"], search["second"]
    assert first["statuses"].get("finished") == 2
    assert set(first["statuses"]) <= {"finished", "unfinished"}, first["statuses"]  # cut off, not stopped
    before = search["finished_before"]
    assert len(before) == 2
    for trial_id, mtime in before.items():  # not rerun: their results were not rewritten
        summary = search["root"] / "ray" / "tiny" / "trials" / trial_id / "summary.json"
        assert summary.stat().st_mtime == mtime
    assert set(before) < {r["trial_id"] for r in second["rows"]}


def test_failing_trial_is_recorded_not_fatal(search):
    result = search["failing"]
    assert result["statuses"] == {"errored": 1} and result["chosen_yaml"] is None
    row = result["rows"][0]
    assert "prune_rate=1.5" in row["error"] and row["pareto"] is False
    assert read_csv(result["pareto_csv"])[0]["status"] == "errored"


def test_search_aims_at_the_front(search):
    result = search["pareto"]
    assert result["objective"] == "pareto" and result["statuses"] == {"finished": 1}
    assert result["front_points"] >= 1 and result["hypervolume"] is not None and result["hypervolume"] > 0
    saved = json.loads((search["root"] / "ray" / "pareto" / "search.json").read_text())
    assert saved["hypervolume"] == result["hypervolume"]


def test_budget_search_scores_trials_over_the_budget_below_every_fitting_one(search):
    result = search["budget"]
    assert result["objective"] == "budget" and result["budget"] == 0.6
    rows = [r for r in result["rows"] if r["status"] == "finished"]
    assert rows and all("objective" in r for r in rows)
    for row in rows:
        fits = row["model_bytes"] <= 0.6 * row["dense_model_bytes"]
        assert row["fits_budget"] is fits
        assert row["objective"] == (row["valid_mrr@10"] if fits else pytest.approx(-1000 * row["model_bytes"] / (0.6 * row["dense_model_bytes"])))
    chosen = next((r for r in rows if r["trial_id"] == result["chosen_trial"]), None)
    assert chosen is None or chosen["fits_budget"]


def test_objective_settings_resolve_and_conflicts_are_one_line(tmp_path):
    from recbole_compress.tune_space import SearchSettings

    assert (SearchSettings().finish().objective, SearchSettings().finish().scheduler) == ("pareto", "fifo")
    budget = SearchSettings().update({"budget": 0.25}, "x").finish()
    assert (budget.objective, budget.scheduler) == ("budget", "fifo")
    assert SearchSettings().update({"objective": "validation"}, "x").finish().scheduler == "asha"
    for values, named in (({"objective": "pareto", "scheduler": "asha"}, "scheduler: fifo"),
                          ({"objective": "budget"}, "needs a budget"),
                          ({"objective": "pareto", "budget": 0.5}, "applies to objective=budget only"),
                          ({"budget": 1.5}, "must be in (0, 1]"),
                          ({"objective": "front"}, "not one of")):
        with pytest.raises(UserError, match=named.replace("(", r"\(").replace("]", r"\]")):
            SearchSettings().update(values, "x").finish()


def test_objective_value_of_a_trial():
    from recbole_compress.tune import TrialJob, objective_value, provisional

    job = TrialJob("BPR_LTH", "ml-100k", {}, objective="budget", budget=0.5)
    assert objective_value(job, 0.3, 400, 1000) == {"objective": 0.3, "fits_budget": True}
    assert objective_value(job, 0.3, 1000, 1000) == {"objective": -2000.0, "fits_budget": False}
    job.bigger = False  # a loss: over the budget is far above every score
    assert objective_value(job, 0.3, 1000, 1000)["objective"] == 2000.0
    assert provisional(job, 0.2) == {"objective": 0.2}
    job.objective = "pareto"
    assert objective_value(job, 0.3, 1000, 1000) == {} and provisional(job, 0.2) == {"model_bytes": None}


def test_hypervolume_and_dominance():
    from recbole_compress.pareto import dominated_share, hypervolume

    rows = [dict(r) for r in ROWS]
    # front d (0.1 of dense, 0.20), b (0.4, 0.28), a (1.0, 0.30): 0.3 x 0.20 + 0.6 x 0.28
    assert hypervolume(rows, "valid_ndcg@10", 1000) == pytest.approx(0.228)
    assert hypervolume([], "valid_ndcg@10", 1000) == 0.0
    better = [{"valid_ndcg@10": 0.29, "model_bytes": 50}]
    assert dominated_share(rows, better, "valid_ndcg@10") == pytest.approx(2 / 3)  # b and d, not a
    assert dominated_share(better, rows, "valid_ndcg@10") == 0.0


def test_missing_ray_is_a_clear_error(monkeypatch):
    from recbole_compress.tune import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(UserError, match="Ray Tune is not installed"):
        import_ray()


def test_resume_without_a_search_is_a_clear_error(tmp_path):
    pytest.importorskip("ray")
    from recbole_compress.tune import run_search

    space = write(tmp_path, "prune_rate: {choice: [0.2]}\n")
    with pytest.raises(UserError, match="no search to resume"):
        run_search("BPR_LTH", "ml-100k", space, flags={"storage_path": str(tmp_path / "none")}, resume=True)


def test_searched_key_on_command_line_is_an_error(tmp_path):
    from recbole_compress.tune import run_search

    space = write(tmp_path, "prune_rate: {choice: [0.2]}\n")
    with pytest.raises(UserError, match="prune_rate is searched"):
        run_search("BPR_LTH", "ml-100k", space, overrides={"prune_rate": 0.3})


@pytest.mark.parametrize("visible", ["", "3"])
def test_trial_keeps_the_gpu_ray_assigned(tmp_path, monkeypatch, visible):
    """Config._init_device rewrites CUDA_VISIBLE_DEVICES from gpu_id: a trial's settings
    must leave it as Ray set it (or CPU when the trial has no GPU)."""
    from recbole_compress.config import Config
    from recbole_compress.tune import TrialJob, trial_settings

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    job = TrialJob("BPR_LTH", "ml-100k", dict(TINY), trials_dir=str(tmp_path / "trials"))
    settings = trial_settings(job, {"prune_rate": 0.3}, "abc", visible)
    assert settings["output_dir"] == str(tmp_path / "trials" / "abc") and settings["prune_rate"] == 0.3
    config = Config("BPR_LTH", "ml-100k", config_dict=settings)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == visible
    assert config["use_gpu"] is bool(visible)
    if not visible:
        assert config["device"].type == "cpu"


def test_driver_config_check_leaves_cuda_visible_devices_alone(monkeypatch):
    """The driver builds a Config before starting Ray; RecBole's _init_device must not
    narrow the GPUs the local Ray cluster will see."""
    from recbole_compress.tune import _check_base

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    config = _check_base("BPR_LTH", "ml-100k", [], dict(TINY))
    assert config["gpu_id"] == "0" and "CUDA_VISIBLE_DEVICES" not in os.environ
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    _check_base("BPR_LTH", "ml-100k", [], dict(TINY))
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1,2,3"
