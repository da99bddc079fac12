"""The end of a search: every trial's row (status from Ray's public ``ResultGrid`` and
``ExperimentAnalysis``), the Pareto front and its hypervolume, the best trial per size
budget, the chosen configuration, and the files that hold them."""

from __future__ import annotations

from pathlib import Path

import yaml

from recbole_compress.pareto import SIZE_KEY, best_per_budget, choose, hypervolume, mark_pareto
from recbole_compress.run import atomic_write_json, atomic_write_text, write_csv

SCORE = "valid_score"  # what every report carries and the scheduler compares
OBJECTIVE = "objective"  # objective=budget: the validation score, or a penalty when over the budget
PARETO_CSV, PARETO_PNG, CHOSEN_YAML, BUDGETS_CSV, SEARCH_JSON = (
    "pareto.csv", "pareto.png", "chosen.yaml", "budgets.csv", "search.json",
)


def saved_trials(exp_dir: Path) -> dict:
    """``{trial path: (trial id, status)}`` as Ray saved the experiment for a restore
    (RUNNING/PENDING after an interruption, where the in-memory results already say
    TERMINATED), read through Ray's public ``ExperimentAnalysis``."""
    from ray.tune import ExperimentAnalysis

    try:
        analysis = ExperimentAnalysis(str(exp_dir))
    except (ValueError, OSError) as err:  # no experiment state saved (yet)
        import warnings

        warnings.warn(f"no saved state of the search in {exp_dir} ({err}); trial statuses come from the results alone")
        return {}
    return {str(Path(t.path)): (t.trial_id, t.status) for t in analysis.trials}


def trial_rows(grid, keys: list[str], metric: str, exp_dir: Path, min_reports_to_stop: int | None = None) -> list[dict]:
    saved = saved_trials(exp_dir)
    rows = []
    for result in grid:
        last = result.metrics or {}
        trial_id, status_saved = saved.get(str(Path(result.path)), (last.get("trial_id"), "TERMINATED"))
        trial_id = trial_id or Path(result.path).name
        history = result.metrics_dataframe
        reports = 0 if history is None else len(history)
        scheduler_could_stop = min_reports_to_stop is not None and reports >= min_reports_to_stop
        if result.error is not None:
            status = "errored"
        elif last.get("final"):
            status = "finished"
        elif status_saved not in ("TERMINATED", "ERROR") or (last and not scheduler_could_stop):
            # cut off by an interruption (Ray's saved state can lag behind it; a trial
            # the scheduler could not have stopped was cut off too): --resume runs it
            status = "unfinished"
        elif last:
            status = "stopped early"  # by the scheduler
        else:
            status = "not run"
        row = {
            "trial_id": trial_id,
            "status": status,
            **{k: (result.config or {}).get(k) for k in keys},
            f"valid_{metric}": last.get(f"valid_{metric}") if status == "finished" else None,
            f"test_{metric}": last.get(f"test_{metric}") if status == "finished" else None,
            "last_valid_score": last.get(SCORE),
            SIZE_KEY: last.get(SIZE_KEY) if status == "finished" else None,
            "dense_model_bytes": last.get("dense_model_bytes"),
            "nonzero_parameters": last.get("nonzero_parameters"),
            "reports": reports,
            "trial_wall_time_s": last.get("trial_wall_time_s"),
            "output_dir": last.get("output_dir"),
            "error": _one_line(result.error),
        }
        if status == "finished" and OBJECTIVE in last:
            row[OBJECTIVE], row["fits_budget"] = last.get(OBJECTIVE), last.get("fits_budget")
        rows.append(row)
    return sorted(rows, key=lambda r: str(r["trial_id"]))


def _one_line(error) -> str:
    if error is None:
        return ""
    text = str(error).strip().splitlines()
    return (text[-1] if text else type(error).__name__)[:300]


def write_results(exp_dir, rows, model, dataset, metric, bigger, settings, config_files, base, wall, spec) -> dict:
    from recbole_compress.plots import plot_pareto

    key = f"valid_{metric}"
    mark_pareto(rows, key, bigger)
    write_csv(rows, exp_dir / PARETO_CSV, first=["trial_id", "status", "pareto"])
    plot_pareto(rows, key, exp_dir / PARETO_PNG, title=f"{model} on {dataset}", bigger=bigger)
    dense = next((float(r["dense_model_bytes"]) for r in rows if r.get("dense_model_bytes")), None)
    budgets = best_per_budget(rows, key, settings.budgets, dense, bigger) if dense else []
    # the area the front dominates, in (share of the dense bytes) x (metric) from (1, 0)
    volume = hypervolume(rows, key, dense) if dense and bigger else None
    write_csv(
        [{"budget": b["budget"], "max_bytes": b["max_bytes"], **(b["trial"] or {"trial_id": ""})} for b in budgets],
        exp_dir / BUDGETS_CSV,
        first=["budget", "max_bytes", "trial_id"],
    )
    if settings.objective == "budget":  # the best trial within the budget the search aimed at
        chosen = best_per_budget(rows, key, [settings.budget], dense, bigger)[0]["trial"] if dense else None
    else:
        chosen = choose(rows, key, bigger)
    command = None
    if chosen is not None:
        settings_out = {"model": model, "dataset": dataset, **base, **{d.key: chosen[d.key] for d in spec.space}}
        files = " ".join([*config_files, str(exp_dir / CHOSEN_YAML)])
        command = f'recbole-compress run --model={model} --dataset={dataset} --config_files="{files}"'
        among = (f"within {settings.budget:g} x the dense model's bytes" if settings.objective == "budget"
                 else "on the Pareto front")
        header = (
            f"# chosen by the search in {exp_dir}: trial {chosen['trial_id']}, best validation {metric}\n"
            f"# {among} ({key}={chosen[key]}, {SIZE_KEY}={chosen[SIZE_KEY]}). Run it with:\n# {command}\n"
        )
        atomic_write_text(exp_dir / CHOSEN_YAML, header + yaml.safe_dump(_plain(settings_out), sort_keys=False))
    out = {
        "experiment": str(exp_dir),
        "metric": key,
        "trials": len(rows),
        "statuses": {s: sum(r["status"] == s for r in rows) for s in dict.fromkeys(r["status"] for r in rows)},
        "wall_time_s": round(wall, 1),
        "objective": settings.objective,
        "budget": settings.budget,
        "front_points": len({(r[key], r[SIZE_KEY]) for r in rows if r.get("pareto")}),  # distinct points
        "hypervolume": None if volume is None else round(volume, 6),
        "pareto_csv": str(exp_dir / PARETO_CSV),
        "pareto_png": str(exp_dir / PARETO_PNG),
        "budgets_csv": str(exp_dir / BUDGETS_CSV),
        "chosen_yaml": str(exp_dir / CHOSEN_YAML) if chosen else None,
        "chosen_trial": chosen["trial_id"] if chosen else None,
        "command": command,
        "budgets": [{"budget": b["budget"], "max_bytes": b["max_bytes"], "trial_id": (b["trial"] or {}).get("trial_id")} for b in budgets],
        "rows": rows,
    }
    atomic_write_json(exp_dir / SEARCH_JSON, out)
    return out


def _plain(obj):
    """yaml.safe_dump-able values (numpy scalars from the search algorithm -> Python)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):
        return obj.item()
    return obj


def format_front(result: dict, keys: list[str]) -> str:
    """The Pareto table as printed at the end of a search."""
    metric = result["metric"]
    rows = [r for r in result["rows"] if r.get("pareto")]
    rows.sort(key=lambda r: float(r[SIZE_KEY]))
    head = ["trial", *keys, metric, metric.replace("valid_", "test_"), "bytes", "nonzero", "reports"]
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in rows:
        cells = [
            str(r["trial_id"]), *(_cell(r.get(k)) for k in keys), _cell(r[metric]),
            _cell(r.get(metric.replace("valid_", "test_"))), str(r[SIZE_KEY]), str(r.get("nonzero_parameters")),
            str(r.get("reports")),
        ]
        lines.append(" | ".join(cells))
    return "\n".join(f"| {line} |" for line in lines)


def _cell(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
