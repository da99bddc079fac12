"""Repeated seeds: the statistics every multi-seed table uses, and one run per seed.

A number reported from one seed says nothing about how far another seed would move it.
Here every figure from several seeds is the mean and the sample standard deviation, and
a method is "ahead" of another only when the gap between their means is larger than
the pooled standard deviation of the two (:func:`ahead`); otherwise they are tied.
"""

from __future__ import annotations

import math
from pathlib import Path

from recbole_compress.errors import UserError


def parse_seeds(value) -> list[int]:
    """``"2020,2021"``, ``2020`` or ``[2020, 2021]`` -> distinct integers, in order."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else [value]
    try:
        seeds = [int(str(s).strip()) for s in items if str(s).strip()]
    except ValueError:
        raise UserError(f"--seeds={value} is not a comma-separated list of integers, e.g. --seeds=2020,2021,2022") from None
    if not seeds:
        raise UserError("--seeds is empty; give e.g. --seeds=2020,2021,2022")
    if len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds={value} repeats a seed; give each seed once")
    return seeds


def mean_sd(values) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n - 1) of the numbers in ``values``
    (None skipped); sd is None below two values."""
    xs = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not xs:
        return None, None
    mean = sum(xs) / len(xs)
    if len(xs) < 2:
        return mean, None
    return mean, math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


def pooled_sd(sd_a, n_a: int, sd_b, n_b: int) -> float | None:
    """Pooled standard deviation of two groups; None if either has no sd."""
    if sd_a is None or sd_b is None or n_a < 2 or n_b < 2:
        return None
    return math.sqrt(((n_a - 1) * sd_a**2 + (n_b - 1) * sd_b**2) / (n_a + n_b - 2))


def ahead(a: dict, b: dict, bigger: bool = True) -> bool:
    """``a`` beats ``b`` (each ``{"mean", "sd", "n"}``) by more than their pooled sd."""
    pooled = pooled_sd(a["sd"], a["n"], b["sd"], b["n"])
    if pooled is None:
        return False
    gap = (a["mean"] - b["mean"]) if bigger else (b["mean"] - a["mean"])
    return gap > pooled


def format_mean_sd(mean, sd, digits: int = 4) -> str:
    if mean is None:
        return ""
    return f"{mean:.{digits}f}" + ("" if sd is None else f" ± {sd:.{digits}f}")


# -- one run per seed ------------------------------------------------------------------------

SEEDS_JSON, SEEDS_CSV = "seeds.json", "seeds.csv"


def run_seeds(model, dataset, seeds, config_file_list=None, overrides=None, strict=False, run=None) -> dict:
    """``run_recbole_compress`` once per seed, each in ``<output folder>/seed-<seed>``
    (the output folder of the same command without a seed); a seed that finished with
    the same settings earlier is reused. Writes ``seeds.json`` and ``seeds.csv`` (one row
    per seed, then the mean and sd) and returns ``{"rows", "mean", "sd", "output_dir"}``."""
    from recbole_compress.run import atomic_write_json, build_config, write_csv

    seeds = parse_seeds(seeds)
    overrides = dict(overrides or {})
    if "seed" in overrides:
        raise UserError("both --seed and --seeds are given; keep --seeds")
    if run is None:
        from recbole_compress.quick_start import run_recbole_compress as run
    config = build_config(model, dataset, config_file_list, None, overrides, strict)
    base = Path(config["output_dir"])  # the same command's folder without --seeds
    rows, summaries = [], []
    for seed in seeds:
        out = base / f"seed-{seed}"
        settings = {**overrides, "seed": seed, "output_dir": str(out)}
        summary = _finished_seed(out, build_config(model, dataset, config_file_list, None, settings, strict))
        reused = summary is not None
        if summary is None:
            summary = run(model, dataset, config_file_list, overrides=settings, strict=strict)["summary"]
        summaries.append(summary)
        rows.append(_seed_row(seed, summary, reused))
        print(f"[seeds] seed {seed}: {_short(summary)}" + (" [finished earlier]" if reused else ""), flush=True)
    keys = [k for k in rows[0] if k.startswith(("valid_", "test_")) or k in ("model_bytes", "wall_time_s")]
    stats = {k: mean_sd(r.get(k) for r in rows) for k in keys}
    mean = {"seed": "mean", **{k: v[0] for k, v in stats.items()}}
    sd = {"seed": "sd", **{k: v[1] for k, v in stats.items()}}
    write_csv([*rows, mean, sd], base / SEEDS_CSV, first=["seed"])
    result = {"model": config["model"], "dataset": dataset, "seeds": seeds, "rows": rows,
              "mean": mean, "sd": sd, "output_dir": str(base)}
    atomic_write_json(base / SEEDS_JSON, result)
    metric = summaries[0].get("valid_metric", "")
    test = f"test_{metric}"
    print(f"[seeds] {config['model']} on {dataset}, {len(seeds)} seeds: test {metric} "
          f"{format_mean_sd(*stats.get(test, (None, None)))}; output: {base} ({SEEDS_CSV})", flush=True)
    return result


def _finished_seed(out: Path, config) -> dict | None:
    """The summary of a run that finished in ``out`` with exactly ``config``'s settings."""
    import json

    from recbole_compress.run import NON_SEMANTIC_KEYS, RUN_CONFIG_FILE, SUMMARY_FILE, fingerprint, settings_of

    try:
        saved = json.loads((out / RUN_CONFIG_FILE).read_text())
        summary = json.loads((out / SUMMARY_FILE).read_text())
        theirs = fingerprint(saved["model"], saved["dataset"],
                             {k: v for k, v in saved.get("config", {}).items() if k not in NON_SEMANTIC_KEYS})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    mine = fingerprint(config["model"], config["dataset"], settings_of(config))
    return summary if theirs == mine else None


def _seed_row(seed: int, summary: dict, reused: bool) -> dict:
    return {
        "seed": seed,
        **{f"valid_{k}": v for k, v in (summary.get("valid") or {}).items()},
        **{f"test_{k}": v for k, v in (summary.get("test") or {}).items()},
        "model_bytes": summary.get("model_bytes"),
        "wall_time_s": summary.get("wall_time_s"),
        "reused": reused,
    }


def _short(summary: dict) -> str:
    metric = summary.get("valid_metric", "")
    value = (summary.get("test") or {}).get(metric)
    return f"test {metric} {value if value is None else f'{value:.4f}'}, {summary.get('model_bytes')} bytes"
