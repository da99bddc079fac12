"""The dense baseline, tuned as carefully as the method it is compared with.

A compressed model that "beats dense" only counts against the best dense model found
with a comparable search: :func:`tune_dense` trains the dense backbone at every point
of a small grid (by default the learning rate and the L2 weight), selects the best
point on the VALIDATION metric and reports its test metrics; test scores never select.

    from recbole_compress.dense_baseline import tune_dense, default_grid
    tuning = tune_dense("LightGCN", "ml-100k", default_grid("LightGCN"), {"epochs": 100}, "runs/dense-ml-100k")
    tuning.best, tuning.best_summary["test"], tuning.rows

Every grid point is a run folder under ``<out>/cells/``; a rerun skips the points that
finished with the same settings, so an interrupted search resumes. ``<out>`` receives
``dense_grid.csv`` and ``dense_grid.md`` (every point, the selected one marked) and
``dense_best.json``. The comparison calls it through :func:`tuned_dense_row`.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

from recbole_compress.errors import UserError
from recbole_compress.run import atomic_write_json, atomic_write_text, to_jsonable, write_csv

GRID_CSV, GRID_MD, BEST_FILE = "dense_grid.csv", "dense_grid.md", "dense_best.json"
LEARNING_RATES = (1e-3, 5e-3, 1e-2)
L2_WEIGHTS = {"reg_weight": (1e-5, 1e-4, 1e-3), "weight_decay": (0.0, 1e-5, 1e-4)}


def l2_key(backbone: str) -> str:
    """The backbone's own L2 key: ``reg_weight`` where its loss has one (LightGCN, NGCF,
    ...), else the optimiser's ``weight_decay`` (BPR's loss has no L2 term)."""
    import recbole
    import yaml

    from recbole_compress.registry import get_model

    model = get_model(backbone)
    root = getattr(model, "base_model_name", model.__name__)
    path = Path(recbole.__file__).resolve().parent / "properties" / "model" / f"{root}.yaml"
    keys = yaml.safe_load(path.read_text()) if path.is_file() else {}
    return "reg_weight" if "reg_weight" in (keys or {}) else "weight_decay"


def default_grid(backbone: str) -> dict[str, list]:
    """3 learning rates x 3 L2 weights on the backbone's own L2 key."""
    key = l2_key(backbone)
    return {"learning_rate": list(LEARNING_RATES), key: list(L2_WEIGHTS[key])}


def parse_grid(text: str) -> dict[str, list]:
    """``learning_rate=1e-3,5e-3;reg_weight=1e-5,1e-4`` -> a grid (values read as numbers
    where they are numbers, as data otherwise; nothing is evaluated)."""
    from recbole_compress.overrides import parse_value

    grid: dict[str, list] = {}
    for part in (p.strip() for p in str(text).split(";")):
        if not part:
            continue
        key, sep, values = part.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise UserError(f"grid part '{part}' is not key=v1,v2,...; e.g. learning_rate=1e-3,5e-3;reg_weight=1e-5,1e-4")
        if key in grid:
            raise UserError(f"grid names '{key}' twice; give each key once")
        grid[key] = [parse_value(v.strip()) for v in values.split(",") if v.strip()]
    if not grid:
        raise UserError(f"grid '{text}' is empty; e.g. learning_rate=1e-3,5e-3;reg_weight=1e-5,1e-4")
    return grid


def method_keys() -> frozenset[str]:
    """Keys only the compression methods read (their property files, e.g. CERP.yaml's
    ``threshold_init``): they change nothing in a dense run."""
    from recbole_compress.property_files import load_yaml, properties_dir
    from recbole_compress.registry import compression_methods

    keys = set()
    for name in compression_methods():
        path = properties_dir() / "model" / f"{name}.yaml"
        if path.is_file():
            keys.update(str(k) for k in load_yaml(path, "property file"))
    return frozenset(keys - {"compress_tables"})


def dense_settings(settings: dict) -> dict:
    """A comparison's settings less the methods' own keys: the dense runs (and their
    resume records) depend only on what a dense run reads."""
    drop = method_keys()
    return {k: v for k, v in settings.items() if k not in drop}


def grid_points(grid: dict[str, list]) -> list[dict]:
    """Every combination, in a fixed order (keys sorted, values as given)."""
    if not grid or any(not isinstance(v, (list, tuple)) or not v for v in grid.values()):
        raise UserError("every grid key needs a non-empty list of values, e.g. {'learning_rate': [1e-3, 5e-3]}")
    keys = sorted(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def point_name(point: dict) -> str:
    return ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in point.items())


@dataclass
class DenseTuning:
    """The search's result: the selected point, its run's summary, every point's row."""

    backbone: str
    metric: str
    best: dict
    best_summary: dict
    rows: list[dict] = field(default_factory=list)
    out: str = ""

    def note(self) -> str:
        return f"dense tuned on valid {self.metric} over {len(self.rows)} points ({point_name(self.best)})"


def _run_point(backbone, dataset, cell: Path, settings: dict, config_file_list) -> dict:
    """One grid point, read back when it already ran with these settings: the comparison's
    cell (compare_cells.run_cell), whose record a grid point shares."""
    from recbole_compress.compare_cells import run_cell

    return run_cell(backbone, dataset, cell, {"model": backbone, "settings": settings}, config_file_list, settings).summary


def _row(point: dict, summary: dict) -> dict:
    return {
        **point,
        **{f"valid_{k}": v for k, v in (summary.get("valid") or {}).items()},
        **{f"test_{k}": v for k, v in (summary.get("test") or {}).items()},
        "epochs": summary.get("epochs"),
        "train_time_s": summary.get("wall_time_s"),
    }


def tune_dense(backbone: str, dataset: str, grid: dict[str, list], settings: dict | None = None, out=None,
               config_file_list=None) -> DenseTuning:
    """Train ``backbone`` at every point of ``grid`` (on top of ``settings`` less the
    compression methods' own keys, and the config files), select the best on the
    validation metric, report its test metrics. Resumable: finished points are read
    back, not trained again."""
    from recbole_compress.run import build_config

    settings = dense_settings({"show_progress": False, **(settings or {})})
    clash = sorted(set(grid) & set(settings))
    if clash:
        raise UserError(f"{', '.join(clash)} is both searched and fixed; drop it from the settings or the grid")
    points = grid_points(grid)
    config = build_config(backbone, dataset, config_file_list, {**settings, **points[0]})
    metric, bigger = str(config["valid_metric"]).lower(), bool(config["valid_metric_bigger"])
    out = Path(out or Path("saved") / f"dense-{dataset}-{backbone}").resolve()
    rows, summaries = [], []
    for point in points:
        summary = _run_point(backbone, dataset, out / "cells" / point_name(point), {**settings, **point}, config_file_list)
        summaries.append(summary)
        rows.append(_row(point, summary))
        print(f"[dense] {backbone} {point_name(point)}: valid {metric} {rows[-1].get('valid_' + metric)}, "
              f"test {metric} {rows[-1].get('test_' + metric)}", flush=True)
    scores = [r.get(f"valid_{metric}") for r in rows]
    if any(s is None for s in scores):
        raise UserError(f"a grid point has no validation {metric}; check valid_metric and the metrics list")
    chosen = (max if bigger else min)(range(len(rows)), key=lambda i: scores[i])  # first of equals
    for i, row in enumerate(rows):
        row["selected"] = i == chosen
    tuning = DenseTuning(backbone, metric, points[chosen], summaries[chosen], rows, str(out))
    _write(tuning, dataset)
    return tuning


def _write(tuning: DenseTuning, dataset: str) -> None:
    out = Path(tuning.out)
    write_csv(tuning.rows, out / GRID_CSV, first=[*tuning.best, "selected"])
    atomic_write_json(out / BEST_FILE, {"backbone": tuning.backbone, "metric": tuning.metric, "best": tuning.best,
                                        "valid": tuning.best_summary.get("valid"), "test": tuning.best_summary.get("test")})
    atomic_write_text(out / GRID_MD, markdown(tuning, dataset))


def markdown(tuning: DenseTuning, dataset: str) -> str:
    m = tuning.metric
    keys = list(tuning.best)
    lines = [f"# Dense {tuning.backbone} on {dataset}: {len(tuning.rows)} grid points, selected on valid {m}", "",
             f"| {' | '.join(keys)} | valid {m} | test {m} | epochs | selected |", "|" + "---|" * (len(keys) + 4)]
    for r in tuning.rows:
        cells = [f"{r[k]:g}" if isinstance(r[k], float) else str(r[k]) for k in keys]
        valid, test = r.get(f"valid_{m}"), r.get(f"test_{m}")
        lines.append(f"| {' | '.join(cells)} | {valid:.4f} | {test:.4f} | {r.get('epochs')} | {'**yes**' if r['selected'] else ''} |")
    return "\n".join(lines) + "\n"


def tuned_dense_row(backbone: str, dataset: str, out, settings: dict, config_file_list=None,
                    grid: dict[str, list] | None = None) -> tuple[dict, dict]:
    """The hook for a comparison: tune the dense backbone (``grid``, default
    :func:`default_grid`) under the comparison's settings into ``out`` and return
    (the best point's run summary, fields for its row: ``setting`` and ``note``). The
    grid's keys are removed from ``settings`` first (they are what is searched)."""
    grid = grid or default_grid(backbone)
    fixed = {k: v for k, v in settings.items() if k not in grid}
    tuning = tune_dense(backbone, dataset, grid, fixed, out, config_file_list)
    return tuning.best_summary, {"setting": json.dumps(to_jsonable(tuning.best), sort_keys=True), "note": tuning.note()}
