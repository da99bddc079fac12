"""Seeds: parsing, mean and sd, the pooled-sd rule, and one run per seed."""

import json
import math

import pytest

from recbole_compress import UserError
from recbole_compress.seeds import ahead, format_mean_sd, mean_sd, parse_seeds, pooled_sd, run_seeds
from tests.conftest import TINY


def test_parse_seeds_forms_and_errors():
    assert parse_seeds("2020, 2021,2022") == [2020, 2021, 2022]
    assert parse_seeds((1, 2)) == [1, 2] and parse_seeds(7) == [7] and parse_seeds(None) == []
    for bad, named in (("1,x", "not a comma-separated list"), ("1,1", "repeats"), (",", "empty")):
        with pytest.raises(UserError, match=named):
            parse_seeds(bad)


def test_mean_sd_and_pooled_sd():
    assert mean_sd([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert mean_sd([5.0]) == (5.0, None) and mean_sd([None, math.nan]) == (None, None)
    assert pooled_sd(1.0, 3, 3.0, 3) == pytest.approx(math.sqrt(5.0))
    assert pooled_sd(None, 3, 1.0, 3) is None
    assert format_mean_sd(0.12345, 0.01) == "0.1235 ± 0.0100" and format_mean_sd(0.5, None) == "0.5000"


def test_ahead_needs_a_gap_larger_than_the_pooled_sd():
    a, b = {"mean": 0.30, "sd": 0.01, "n": 3}, {"mean": 0.28, "sd": 0.01, "n": 3}
    assert ahead(a, b) and not ahead(b, a)
    assert not ahead({**a, "sd": 0.05}, b)  # gap 0.02 < pooled sd ~0.036
    assert ahead(b, a, bigger=False)  # a loss: smaller is better
    assert not ahead({**a, "sd": None}, b)  # one seed: no claim


def test_run_seeds_runs_each_seed_in_its_folder_and_reuses_finished_ones(tmp_path, capsys):
    from recbole_compress.run import build_config, settings_of, write_run_config

    calls = []

    def fake_run(model, dataset, files, overrides, strict):
        calls.append(overrides["seed"])
        config = build_config(model, dataset, files, None, overrides)
        out = tmp_path / "base" / f"seed-{overrides['seed']}"
        out.mkdir(parents=True)
        summary = {"seed": overrides["seed"], "valid_metric": "mrr@10", "valid": {"mrr@10": 0.1 * overrides["seed"]},
                   "test": {"mrr@10": 0.2 * overrides["seed"]}, "model_bytes": 100, "wall_time_s": 1.0}
        write_run_config(out, config["model"], dataset, settings_of(config))
        (out / "summary.json").write_text(json.dumps(summary))
        return {"summary": summary}

    overrides = {**TINY, "output_dir": str(tmp_path / "base")}
    result = run_seeds("BPR", "ml-100k", "1,2", overrides=overrides, run=fake_run)
    assert calls == [1, 2]
    assert result["mean"]["test_mrr@10"] == pytest.approx(0.3) and result["sd"]["test_mrr@10"] == pytest.approx(0.1414, abs=1e-4)
    assert "test mrr@10 0.3000 ± 0.1414" in capsys.readouterr().out
    assert (tmp_path / "base" / "seeds.csv").read_text().count("\n") == 5  # header, 2 seeds, mean, sd
    # again with a third seed: the two finished ones are reused
    result = run_seeds("BPR", "ml-100k", [1, 2, 3], overrides=overrides, run=fake_run)
    assert calls == [1, 2, 3] and [r["reused"] for r in result["rows"]] == [True, True, False]
    # --seed with --seeds: one line, nothing run
    with pytest.raises(UserError, match="--seed and --seeds"):
        run_seeds("BPR", "ml-100k", [1], overrides={**overrides, "seed": 5}, run=fake_run)
