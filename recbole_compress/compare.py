"""One comparison of every method under the same memory budgets.

    recbole-compress compare --dataset=tiktok --backbone=LightGCN \\
        --budgets=0.5,0.2,0.05,0.02 [--methods=LTH,PEP,CERP,QR,QR+LTH] [--out=DIR] [--key=value ...]

Trains the dense backbone once, then every method at every budget (a fraction of
the dense bytes of the tables the methods compress), all on the same data, split,
seed, evaluator and settings (``--key=value`` are RecBole / recbole_compress config
keys, e.g. ``--epochs=20``). Each budget becomes each method's settings through
:mod:`recbole_compress.budgets`, so it is met by construction; the row records the
real exported bytes and whether they fit, or why the method cannot reach the budget.

Writes into ``--out`` (default ``saved/compare-<dataset>-<backbone>``): ``compare.csv``
and ``compare.md`` (quality, parameters, bytes, training and inference time per method
and budget), ``compare.png`` (quality against bytes, one curve per method, the dense
point) and ``pareto.csv`` (the front across methods). Every cell is a run folder under
``cells/``; rerunning the same command skips finished cells (and lottery-ticket cells
resume inside), so an interrupted comparison continues where it stopped.
``--report`` trains nothing: it writes the outputs from the cells that have finished
(e.g. while other processes train disjoint ``--methods`` into the same ``--out``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from recbole_compress.budgets import PLANNERS, Plan, Table, plan
from recbole_compress.errors import UserError
from recbole_compress.run import atomic_write_json, atomic_write_text, to_jsonable

# methods that apply, by backbone kind: user + item tables, or a sequential item table
GENERAL_METHODS = ("LTH", "PEP", "CERP", "QR", "QR+LTH")
SEQUENTIAL_METHODS = ("JPQ", "LTH", "PEP", "CERP", "QR")
CELL_FILE = "cell.json"
STATE_FILE = "comparison.json"


# -- what is compared -----------------------------------------------------------------------

def backbone_tables(backbone: str, dataset: str, config_file_list=None, config_dict=None, strict=False) -> tuple[list[Table], object]:
    """The ID tables the methods compress in ``backbone`` (as ``<backbone>_<METHOD>``
    would: ``compress_tables`` or the user/item tables), and the backbone's config."""
    from recbole.data import create_dataset
    from recbole.utils import init_seed

    from recbole_compress.config import check_dataset
    from recbole_compress.embeddings.base import id_tables
    from recbole_compress.registry import tables_from_config
    from recbole_compress.registry import get_model

    from recbole_compress.run import build_config

    config = build_config(backbone, dataset, config_file_list, dict(config_dict or {}), strict=strict)
    check_dataset(config)
    init_seed(config["seed"], config["reproducibility"])
    data = create_dataset(config)
    model = get_model(backbone)(config, data)
    names = tables_from_config(config) or id_tables(model)
    if not names:
        raise UserError(f"{backbone} has no user/item embedding table to compress; pick a model with ID embeddings")
    tables = []
    for name in names:
        table = model.get_submodule(name)
        tables.append(Table(name, table.num_embeddings, table.embedding_dim))
    return tables, config


def default_methods(config) -> tuple[str, ...]:
    from recbole.utils import ModelType

    return SEQUENTIAL_METHODS if config["MODEL_TYPE"] == ModelType.SEQUENTIAL else GENERAL_METHODS


# -- one cell ------------------------------------------------------------------------------

def _cell_name(method: str, budget: float) -> str:
    return f"{method.replace('+', '_')}-b{budget:g}"


def _finished(cell_dir: Path, record: dict) -> dict | None:
    """The summary of a cell that already ran with exactly these settings."""
    path = cell_dir / CELL_FILE
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    if saved.get("record") != to_jsonable(record):
        return None
    return json.loads((cell_dir / "summary.json").read_text())


def run_cell(model: str, dataset: str, cell_dir: Path, record: dict, config_file_list, settings: dict) -> tuple[dict, bool]:
    """Train one cell unless it already finished; returns (summary, reused)."""
    from recbole_compress.quick_start import run_recbole_compress

    done = _finished(cell_dir, record)
    if done is not None:
        return done, True
    result = run_recbole_compress(model, dataset, config_file_list, {**settings, "output_dir": str(cell_dir)})
    atomic_write_json(cell_dir / CELL_FILE, {"record": to_jsonable(record)})  # last: marks the cell finished
    return result["summary"], False


# -- rows ----------------------------------------------------------------------------------

def _row(method, budget, max_bytes, summary, tables: list[Table]) -> dict:
    test = summary.get("test") or {}
    if method == "dense":
        table_bytes = sum(t.dense_bytes for t in tables)
        table_params = sum((t.rows - 1) * t.dim for t in tables)
    else:
        table_bytes = sum((summary.get("table_bytes") or {}).values())
        table_params = summary.get("table_parameters")
    wall, tested = summary.get("wall_time_s"), summary.get("test_time_s")
    row = {
        "method": method,
        "budget": budget,
        "max_bytes": max_bytes,
        "table_bytes": table_bytes,
        "fits": None if max_bytes is None else table_bytes <= max_bytes,
        "table_parameters": table_params,
        "model_bytes": summary.get("model_bytes"),
        "train_time_s": None if wall is None else round(wall - (tested or 0.0), 2),
        "inference_time_s": tested,
        "epochs": summary.get("epochs"),
        **{f"test_{k}": v for k, v in test.items()},
        **{f"valid_{k}": v for k, v in (summary.get("valid") or {}).items()},
    }
    return row


def _reason_row(p: Plan, why: str) -> dict:
    return {"method": p.method, "budget": p.budget, "max_bytes": p.max_bytes, "fits": False, "note": why}


# -- the comparison -----------------------------------------------------------------------

def run_comparison(
    dataset: str,
    backbone: str,
    budgets: list[float],
    methods: list[str] | None = None,
    out=None,
    config_file_list=None,
    config_dict=None,
    report_only: bool = False,
    strict: bool = False,
) -> dict:
    """Train the dense backbone and every method at every budget; write the table, plot
    and Pareto front. Returns ``{"rows", "metric", "out", ...}``. With ``report_only``
    nothing is trained: cells that have not finished get a row saying so."""
    settings = {"show_progress": False, **(config_dict or {})}
    for budget in budgets:
        if not 0.0 < budget < 1.0:
            raise UserError(f"budget {budget} is outside (0, 1); budgets are fractions of the dense tables' bytes, e.g. 0.05")
    unknown = [m for m in methods or () if m not in PLANNERS]
    if unknown:
        raise UserError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(PLANNERS)}")
    tables, config = backbone_tables(backbone, dataset, config_file_list, settings, strict)
    methods = list(methods or default_methods(config))
    metric = str(config["valid_metric"]).lower()
    out = Path(out or Path("saved") / f"compare-{dataset}-{backbone}").resolve()
    if report_only and not (out / STATE_FILE).is_file():  # report on nothing: leave no folder behind
        raise UserError(f"{out} holds no comparison to report (no {STATE_FILE}); run the same command without --report")
    _claim(out, {"dataset": dataset, "backbone": backbone, "settings": settings, "config_files": config_file_list})
    dense_bytes = sum(t.dense_bytes for t in tables)
    print(f"[compare] {backbone} on {dataset}: tables {', '.join(f'{t.name} {t.rows}x{t.dim}' for t in tables)}, "
          f"{dense_bytes:,} dense bytes; metric {metric}; {len(methods)} methods x {len(budgets)} budgets", flush=True)

    def cell(model, cell_dir, record, cell_settings):
        if not report_only:
            return run_cell(model, dataset, cell_dir, record, config_file_list, cell_settings)
        done = _finished(cell_dir, record)
        if done is None:
            raise _NotRun
        return done, True

    rows = []
    try:
        summary, reused = cell(backbone, out / "cells" / "dense", {"model": backbone, "settings": settings}, settings)
    except _NotRun:
        raise UserError(f"the dense cell in {out} has not finished, so there is nothing to report yet; run without --report")
    rows.append(_row("dense", 1.0, dense_bytes, summary, tables))
    _progress(rows[-1], metric, reused)
    for budget in sorted(budgets, reverse=True):
        for method in methods:
            p = plan(method, backbone, tables, budget, settings)
            if not p.feasible:
                rows.append(_reason_row(p, p.reason))
                _progress(rows[-1], metric, False)
                continue
            cell_settings = {**settings, **p.overrides}
            record = {"model": p.model, "settings": cell_settings}
            try:
                summary, reused = cell(p.model, out / "cells" / _cell_name(method, budget), record, cell_settings)
            except _NotRun:
                rows.append(_reason_row(p, "not run yet"))
                _progress(rows[-1], metric, False)
                continue
            except UserError as err:
                rows.append(_reason_row(p, f"failed: {err}"))
                _progress(rows[-1], metric, False)
                continue
            row = _row(method, budget, p.max_bytes, summary, tables)
            row["planned_bytes"], row["setting"] = p.planned_bytes, json.dumps(p.overrides, sort_keys=True)
            rows.append(row)
            _progress(row, metric, reused)
    return write_outputs(out, rows, metric, bool(config["valid_metric_bigger"]), f"{backbone} on {dataset}")


class _NotRun(Exception):
    """--report met a cell that has not finished."""


def _claim(out: Path, identity: dict) -> None:
    """A comparison folder belongs to one dataset, backbone and settings: resuming with
    other settings would mix incomparable cells."""
    path = out / STATE_FILE
    identity = to_jsonable(identity)
    if path.is_file() and json.loads(path.read_text()) != identity:
        raise UserError(
            f"{out} holds a comparison with other settings ({path}); use another --out or delete that folder"
        )
    atomic_write_json(path, identity)


def _progress(row: dict, metric: str, reused: bool) -> None:
    what = row.get("note") or (
        f"test {metric} {row.get(f'test_{metric}')}, table bytes {row.get('table_bytes'):,} "
        f"(max {row.get('max_bytes'):,}), train {row.get('train_time_s')} s" + (" [finished earlier]" if reused else "")
    )
    print(f"[compare] {row['method']} @ {row['budget']:g}: {what}", flush=True)


# -- outputs ---------------------------------------------------------------------------------

COLUMNS = ["method", "budget", "max_bytes", "table_bytes", "fits", "table_parameters", "model_bytes",
           "train_time_s", "inference_time_s", "epochs", "quality_vs_dense", "pareto", "setting", "note"]


def write_outputs(out: Path, rows: list[dict], metric: str, bigger: bool, title: str) -> dict:
    from recbole_compress.pareto import front
    from recbole_compress.run import write_csv
    from recbole_compress.plots import plot_comparison

    key = f"test_{metric}"
    dense = next(r for r in rows if r["method"] == "dense")
    for row in rows:
        if row.get(key) is not None and dense.get(key):
            row["quality_vs_dense"] = round(row[key] / dense[key], 4)
    fitting = [r for r in rows if r.get("fits")]
    best = front(fitting, key, bigger, size_key="table_bytes")
    for row in rows:
        row.setdefault("pareto", False)
    metric_columns = sorted({k for r in rows for k in r if k.startswith("test_")})
    first = COLUMNS[:5] + metric_columns + COLUMNS[5:]
    write_csv(rows, out / "compare.csv", first=first)
    write_csv(best, out / "pareto.csv", first=first)
    atomic_write_text(out / "compare.md", markdown(rows, metric, title))
    plot_comparison(rows, key, out / "compare.png", title=title)
    print(f"[compare] wrote {out / 'compare.md'}, compare.csv, compare.png, pareto.csv", flush=True)
    return {"rows": rows, "metric": metric, "out": str(out), "pareto": best}


def markdown(rows: list[dict], metric: str, title: str) -> str:
    key = f"test_{metric}"
    lines = [f"# {title}: every method at the same memory budgets", "",
             "Budget = fraction of the dense bytes of the compressed tables; bytes are the exported tables.", "",
             f"| method | budget | test {metric} | / dense | table bytes (max) | table params | train s | inference s | note |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        value = r.get(key)
        lines.append(
            f"| {r['method']} | {r['budget']:g} | {'' if value is None else f'{value:.4f}'} | "
            f"{r.get('quality_vs_dense', '')} | "
            + (f"{r['table_bytes']:,} ({r['max_bytes']:,})" if r.get("table_bytes") is not None else f"- ({r['max_bytes']:,})")
            + f" | {_count(r.get('table_parameters'))} | {r.get('train_time_s', '')} | "
            f"{r.get('inference_time_s', '')} | {r.get('note', '') + (' Pareto' if r.get('pareto') else '')} |"
        )
    lines += ["", "Best method that fits each budget:", ""]
    for budget in sorted({r["budget"] for r in rows if r["method"] != "dense"}, reverse=True):
        fits = [r for r in rows if r["budget"] == budget and r.get("fits") and r.get(key) is not None]
        if fits:
            top = max(fits, key=lambda r: r[key])
            lines.append(f"- {budget:g}: {top['method']} ({metric} {top[key]:.4f}, {top.get('quality_vs_dense')} of dense)")
        else:
            lines.append(f"- {budget:g}: no method fits")
    return "\n".join(lines) + "\n"


def _count(value) -> str:
    return "" if value is None else f"{value:,}"


# -- command line --------------------------------------------------------------------------

def main_from_args(args, overrides: dict) -> int:
    """``recbole-compress compare`` (see :mod:`recbole_compress.cli` for the options)."""
    from recbole_compress.config import resolve_property_file

    try:
        budgets = [float(b) for b in args.budgets.split(",") if b]
    except ValueError:
        raise UserError(f"--budgets={args.budgets} is not a comma-separated list of fractions, e.g. 0.5,0.2,0.05") from None
    methods = [m for m in (args.methods or "").split(",") if m] or None
    files = [resolve_property_file(f) for f in args.config_files.split()] if args.config_files else None
    run_comparison(args.dataset, args.backbone, budgets, methods, args.out, files, overrides,
                   report_only=args.report, strict=args.strict)
    return 0


if __name__ == "__main__":  # python -m recbole_compress.compare ... = recbole-compress compare ...
    from recbole_compress.cli import main

    sys.exit(main(["compare", *sys.argv[1:]]))
