"""A comparison's table from per-seed rows: means and sds, ties, the front on the means."""

import pytest

from recbole_compress.compare_table import best_per_budget, markdown, pool_seeds, write_outputs

KEY = "test_recall@20"


def seeded(method, budget, values, table_bytes=100, fits=True):
    return [{"method": method, "budget": budget, "max_bytes": 120, "table_bytes": table_bytes, "fits": fits,
             "train_time_s": 10.0 + i, KEY: v, "seed": 2020 + i} for i, v in enumerate(values)]


def test_pool_seeds_gives_mean_sd_and_count():
    rows = pool_seeds(seeded("LTH", 0.2, [0.10, 0.12, 0.14]))
    assert len(rows) == 1
    row = rows[0]
    assert row[KEY] == pytest.approx(0.12) and row[f"{KEY}_sd"] == pytest.approx(0.02)
    assert row["n_seeds"] == 3 and row["seeds"] == "2020 2021 2022" and row["train_time_s"] == 11.0
    assert row["fits"] is True and "note" not in row


def test_pool_seeds_keeps_failed_seeds_as_a_note_and_unseeded_rows_as_they_are():
    rows = seeded("PEP", 0.05, [0.2, 0.3, None])
    rows[2] = {"method": "PEP", "budget": 0.05, "max_bytes": 120, "fits": False, "note": "failed: boom", "seed": 2022}
    unseeded = {"method": "QR", "budget": 0.05, "max_bytes": 120, "fits": False, "note": "cannot fit"}
    pep, qr = pool_seeds(rows + [unseeded])
    assert pep["n_seeds"] == 2 and pep[KEY] == pytest.approx(0.25)
    assert pep["note"] == "2 of 3 seeds; failed: boom"
    assert qr is unseeded


def test_best_is_claimed_only_beyond_the_pooled_sd():
    # LTH 0.120 +- 0.002 vs QR 0.100 +- 0.002: a gap of 0.02 >> pooled sd: LTH is best
    clear = pool_seeds(seeded("LTH", 0.2, [0.118, 0.120, 0.122]) + seeded("QR", 0.2, [0.098, 0.100, 0.102]))
    (b,) = best_per_budget(clear, KEY, bigger=True)
    assert b["best"] == "LTH" and not b["tied"]
    assert [r.get("best_at_budget") for r in clear] == ["best", None]
    # LTH 0.120 +- 0.02 vs QR 0.110 +- 0.02: a gap of 0.01 < pooled sd 0.02: tied
    noisy = pool_seeds(seeded("LTH", 0.2, [0.10, 0.12, 0.14]) + seeded("QR", 0.2, [0.09, 0.11, 0.13])
                       + seeded("PEP", 0.2, [0.01, 0.011, 0.012]))
    (b,) = best_per_budget(noisy, KEY, bigger=True)
    assert b["best"] is None and b["tied"] == ["LTH", "QR"]
    assert {r["method"]: r.get("best_at_budget") for r in noisy} == {"LTH": "tied", "QR": "tied", "PEP": None}
    text = markdown([{"method": "dense", "budget": 1.0, "max_bytes": 120, "table_bytes": 120, KEY: 0.1}, *noisy],
                    "recall@20", "t", best_per_budget(noisy, KEY, True))
    assert "- 0.2: tied: LTH, QR" in text and "0.1200 ± 0.0200" in text


def test_one_seed_keeps_todays_best_and_a_row_that_does_not_fit_is_never_best():
    rows = [{"method": "LTH", "budget": 0.2, "fits": True, KEY: 0.10},
            {"method": "QR", "budget": 0.2, "fits": False, KEY: 0.30},
            {"method": "PEP", "budget": 0.2, "fits": True, KEY: 0.09}]
    (b,) = best_per_budget(rows, KEY, bigger=True)
    assert b["best"] == "LTH"
    (b,) = best_per_budget(rows, KEY, bigger=False)  # a loss: smaller wins
    assert b["best"] == "PEP"
    # --seeds with a single seed pools rows of one: still no spread, so the same rule, not "tied"
    single = pool_seeds(seeded("LTH", 0.2, [0.12]) + seeded("QR", 0.2, [0.10]))
    (b,) = best_per_budget(single, KEY, bigger=True)
    assert b["best"] == "LTH" and [r.get("best_at_budget") for r in single] == ["best", None]


def test_outputs_front_on_means_and_cells_file(tmp_path):
    dense = pool_seeds(seeded("dense", 1.0, [0.20, 0.22], table_bytes=1000))
    dense[0]["max_bytes"] = 1000
    rows = dense + pool_seeds(seeded("LTH", 0.2, [0.18, 0.2]) + seeded("QR", 0.2, [0.05, 0.06], table_bytes=90))
    cells = [{"cell": "dense-seed2020", "method": "dense", "budget": 1.0, "seed": 2020, "status": "finished",
              "node": "head", "host": "h", "pid": 1}]
    result = write_outputs(tmp_path, rows, "recall@20", True, "t", cells)
    assert {r["method"] for r in result["pareto"]} == {"dense", "LTH", "QR"}  # every mean is on the front here
    assert result["best"][0]["best"] == "LTH"
    assert (tmp_path / "cells.csv").read_text().splitlines()[1].startswith("dense-seed2020,dense,1,2020,finished,head")
    assert (tmp_path / "compare.png").read_bytes()[:4] == b"\x89PNG"
    header = (tmp_path / "compare.csv").read_text().splitlines()[0].split(",")
    assert {KEY, f"{KEY}_sd", "n_seeds", "best_at_budget"} <= set(header)
