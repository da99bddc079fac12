"""One comparison of every method under the same memory budgets.

    recbole-compress compare --dataset=tiktok --backbone=LightGCN \\
        --budgets=0.5,0.2,0.05,0.02 [--methods=LTH,PEP,CERP,QR,QR+LTH] [--out=DIR] \\
        [--seeds=2020,2021,2022] [--ray-address=auto] [--cpu=1] [--gpu=0.25] [--max-concurrent=2] \\
        [--local] [--report] [--key=value ...]

Trains the dense backbone, then every method at every budget (a fraction of the dense
bytes of the tables the methods compress), all on the same data, split, seed, evaluator
and settings (``--key=value`` are RecBole / recbole_compress config keys, e.g.
``--epochs=20``). Each budget becomes each method's settings through
:mod:`recbole_compress.budgets`, so it is met by construction; the row records the
real exported bytes and whether they fit, or why the method cannot reach the budget.
With ``--seeds`` every cell runs once per seed and the table reports mean ± sd
(:mod:`recbole_compress.compare_table`).

Cells run as Ray tasks (:mod:`recbole_compress.compare_ray`): the dense cells first,
then the others in parallel, on a local Ray or on the cluster at ``--ray-address``.
Without Ray installed, or with ``--local``, they run one after another in this process.

Writes into ``--out`` (default ``saved/compare-<dataset>-<backbone>``): ``compare.csv``
and ``compare.md`` (quality, parameters, bytes, training and inference time per method
and budget), ``compare.png`` (quality against bytes, one curve per method, the dense
point), ``pareto.csv`` (the front across methods) and ``cells.csv`` (every cell, how it
ended and the node it ran on). Every cell is a run folder under ``cells/``; rerunning
the same command skips finished cells (and lottery-ticket cells resume inside), so an
interrupted comparison continues where it stopped, on any machine that sees ``--out``.
``--report`` trains nothing: it writes the outputs from the cells that have finished
(e.g. while other processes train disjoint ``--methods`` into the same ``--out``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from recbole_compress.budgets import PLANNERS, Table, plan
from recbole_compress.compare_cells import (
    DENSE, NOT_RUN, Cell, CellContext, Outcome, ReportRunner, SequentialRunner, canonical,
)
from recbole_compress.compare_table import cell_record, cell_row, pool_seeds, reason_row, setting_text, write_outputs
from recbole_compress.errors import UserError
from recbole_compress.run import atomic_write_json, to_jsonable
from recbole_compress.seeds import parse_seeds

# methods that apply, by backbone kind: user + item tables, or a sequential item table
GENERAL_METHODS = ("LTH", "PEP", "CERP", "QR", "QR+LTH")
SEQUENTIAL_METHODS = ("JPQ", "LTH", "PEP", "CERP", "QR")
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


def plan_cells(backbone: str, tables: list[Table], budgets: list[float], methods: list[str], settings: dict,
               seeds: list[int] | None) -> tuple[list[Cell], list[Cell], list[dict]]:
    """The dense cells, the method cells (budgets large to small, then methods, then
    seeds) and the rows of the methods that cannot fit a budget."""
    runs = seeds or [None]

    def seeded(seed):
        return dict(settings) if seed is None else {**settings, "seed": seed}

    dense = [Cell(DENSE, 1.0, seed, backbone, seeded(seed)) for seed in runs]
    cells, unfit = [], []
    for budget in sorted(budgets, reverse=True):
        for method in methods:
            p = plan(method, backbone, tables, budget, settings)
            if not p.feasible:
                unfit.append(reason_row(p, p.reason))
                continue
            cells += [Cell(method, budget, seed, p.model, {**seeded(seed), **p.overrides}, p) for seed in runs]
    return dense, cells, unfit


# -- the comparison -----------------------------------------------------------------------

def check_request(budgets: list[float], methods: list[str] | None, seeds, settings: dict) -> list[int] | None:
    """Budgets, methods and seeds checked before anything trains; returns the seeds."""
    for budget in budgets:
        if not 0.0 < budget < 1.0:
            raise UserError(f"budget {budget} is outside (0, 1); budgets are fractions of the dense tables' bytes, e.g. 0.05")
    unknown = [m for m in methods or () if m not in PLANNERS]
    if unknown:
        raise UserError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(PLANNERS)}")
    seeds = parse_seeds(seeds) or None
    if seeds and "seed" in settings:
        raise UserError("both --seed and --seeds are given; keep --seeds (every cell runs once per seed)")
    return seeds


def comparison_folder(out, dataset: str, backbone: str) -> Path:
    """``--out``, or ``saved/compare-<dataset>-<backbone>``."""
    return Path(out or Path("saved") / f"compare-{dataset}-{backbone}").resolve()


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
    seeds=None,
    runner=None,
    notes: list[str] | None = None,
) -> dict:
    """Train the dense backbone and every method at every budget (once per seed of
    ``seeds``); write the table, plot and Pareto front. Returns ``{"rows", "metric",
    "out", "pareto", "best"}``. ``runner``: a ``SequentialRunner`` (default) or a
    ``compare_ray.RayRunner``. With ``report_only`` nothing is trained: cells that have
    not finished get a row saying so."""
    settings = {"show_progress": False, **(config_dict or {})}
    seeds = check_request(budgets, methods, seeds, settings)
    tables, config = backbone_tables(backbone, dataset, config_file_list, settings, strict)
    methods = list(methods or default_methods(config))
    metric = str(config["valid_metric"]).lower()
    out = comparison_folder(out, dataset, backbone)
    if report_only and not (out / STATE_FILE).is_file():  # report on nothing: leave no folder behind
        raise UserError(f"{out} holds no comparison to report (no {STATE_FILE}); run the same command without --report")
    _claim(out, {"dataset": dataset, "backbone": backbone, "settings": settings, "config_files": config_file_list})
    runner = ReportRunner() if report_only else (runner or SequentialRunner())
    dense_bytes = sum(t.dense_bytes for t in tables)
    dense_cells, method_cells, unfit = plan_cells(backbone, tables, budgets, methods, settings, seeds)
    print(f"[compare] {backbone} on {dataset}: tables {', '.join(f'{t.name} {t.rows}x{t.dim}' for t in tables)}, "
          f"{dense_bytes:,} dense bytes; metric {metric}; {len(methods)} methods x {len(budgets)} budgets"
          + (f" x {len(seeds)} seeds" if seeds else "") + f"; cells run {runner.description}", flush=True)
    for row in unfit:
        _progress(row, metric)
    # a cell may run on another node: absolute paths, and the data folder this config found
    context = CellContext(dataset, out, _absolute(config_file_list),
                          {"data_path": str(Path(config["data_path"]).resolve().parent)})
    rows_of: dict[str, dict] = {}

    def report(cell: Cell, outcome: Outcome) -> None:
        rows_of[cell.name] = row = _cell_result_row(cell, outcome, tables, dense_bytes)
        _progress(row, metric, outcome, cell)

    outcomes = runner.run(dense_cells, context, report)
    failed = [c for c in dense_cells if outcomes[c.name].summary is None]
    if failed:
        error = outcomes[failed[0].name].error
        if error == NOT_RUN:
            raise UserError(f"the dense cell in {out} has not finished, so there is nothing to report yet; run without --report")
        raise UserError(error if failed[0].seed is None else f"the dense cell of seed {failed[0].seed} failed: {error}")
    outcomes.update(runner.run(method_cells, context, report))
    dense_rows = pool_seeds([rows_of[c.name] for c in dense_cells])
    method_rows = pool_seeds([rows_of[c.name] for c in method_cells]) + unfit
    method_rows.sort(key=lambda r: (-r["budget"], methods.index(r["method"])))
    records = [cell_record(c, outcomes[c.name], rows_of[c.name]) for c in dense_cells + method_cells]
    title = f"{backbone} on {dataset}" + (f", {len(seeds)} seeds" if seeds else "")
    return write_outputs(out, dense_rows + method_rows, metric, bool(config["valid_metric_bigger"]), title, records, notes)


def _cell_result_row(cell: Cell, outcome: Outcome, tables: list[Table], dense_bytes: int) -> dict:
    if outcome.summary is not None:
        row = cell_row(cell.method, cell.budget, dense_bytes if cell.plan is None else cell.plan.max_bytes,
                       outcome.summary, tables)
        if cell.plan is not None:
            row["planned_bytes"], row["setting"] = cell.plan.planned_bytes, setting_text(cell.plan)
    elif cell.plan is not None:
        row = reason_row(cell.plan, outcome.error if outcome.error == NOT_RUN else f"failed: {outcome.error}")
    else:
        row = {"method": DENSE, "budget": 1.0, "max_bytes": dense_bytes, "note": outcome.error}
    if cell.seed is not None:
        row["seed"] = cell.seed
    return row


def _absolute(files):
    return [str(Path(f).resolve()) for f in files] if files else files


def _claim(out: Path, identity: dict) -> None:
    """A comparison folder belongs to one dataset, backbone and settings: resuming with
    other settings would mix incomparable cells. The seeds are not part of it: a
    comparison run with more seeds later reuses the seeds that finished."""
    path = out / STATE_FILE
    identity = to_jsonable(identity)
    if path.is_file() and canonical(json.loads(path.read_text())) != canonical(identity):
        raise UserError(
            f"{out} holds a comparison with other settings ({path}); use another --out or delete that folder"
        )
    atomic_write_json(path, identity)


def _progress(row: dict, metric: str, outcome: Outcome | None = None, cell: Cell | None = None) -> None:
    reused = outcome is not None and outcome.reused
    what = row.get("note") or (
        f"test {metric} {row.get(f'test_{metric}')}, table bytes {row.get('table_bytes'):,} "
        f"(max {row.get('max_bytes'):,}), train {row.get('train_time_s')} s" + (" [finished earlier]" if reused else "")
    )
    node = None if outcome is None or reused else (outcome.ran_on or {}).get("node")
    label = cell.label() if cell is not None else f"{row['method']} @ {row['budget']:g}"
    print(f"[compare] {label}: {what}" + (f" [on {node}]" if node and node != "local" else ""), flush=True)


# -- command line --------------------------------------------------------------------------

def choose_runner(args):
    """``--local`` or no Ray installed: one cell after another here; else Ray tasks."""
    from recbole_compress.ray_cluster import ray_installed

    ray_flags = [f for f, given in (("--ray-address", args.ray_address), ("--cpu", args.cpu), ("--gpu", args.gpu),
                                    ("--max-concurrent", args.max_concurrent)) if given is not None]
    if args.local or args.report:
        if args.local and ray_flags:
            raise UserError(f"--local runs the cells in this process; drop {ray_flags[0]} or --local")
        return SequentialRunner()
    if not ray_installed():
        if args.ray_address:
            raise UserError("--ray-address needs Ray: install it with `uv sync` or `pip install 'ray[tune]'`")
        print("[compare] Ray is not installed: the cells run one after another in this process", flush=True)
        return SequentialRunner()
    from recbole_compress.compare_ray import RayRunner

    return RayRunner(args.ray_address, cpu=args.cpu if args.cpu is not None else 1.0,
                     gpu=args.gpu or 0.0, max_concurrent=args.max_concurrent or 0)


def main_from_args(args, overrides: dict) -> int:
    """``recbole-compress compare`` (see :mod:`recbole_compress.cli` for the options)."""
    from recbole_compress.config import resolve_property_file

    try:
        budgets = [float(b) for b in args.budgets.split(",") if b]
    except ValueError:
        raise UserError(f"--budgets={args.budgets} is not a comma-separated list of fractions, e.g. 0.5,0.2,0.05") from None
    methods = [m for m in (args.methods or "").split(",") if m] or None
    files = [resolve_property_file(f) for f in args.config_files.split()] if args.config_files else None
    seeds = parse_seeds(args.seeds) if args.seeds else None
    notes = []
    if args.tune_dense is not None:  # a bad request fails before the grid trains, not after
        check_request(budgets, methods, seeds, overrides)
        out = comparison_folder(args.out, args.dataset, args.backbone)
        overrides, note = tuned_settings(args.backbone, args.dataset, args.tune_dense, out, files, overrides, args.report)
        notes.append(note)
    run_comparison(args.dataset, args.backbone, budgets, methods, args.out, files, overrides,
                   report_only=args.report, strict=args.strict, seeds=seeds, runner=choose_runner(args), notes=notes)
    return 0


def tuned_settings(backbone: str, dataset: str, grid_text: str, out: Path, files, settings: dict,
                   report_only: bool = False) -> tuple[dict, str]:
    """``--tune-dense``: the dense backbone tuned on validation over a grid into
    ``<out>/dense-grid`` (resumable), and the comparison's settings with the selected point;
    the methods then train as the best dense model did. With ``--report`` the finished
    tuning is read back, nothing trained."""
    from recbole_compress.dense_baseline import BEST_FILE, GRID_MD, default_grid, parse_grid, point_name, tune_dense

    grid = parse_grid(grid_text) if grid_text else default_grid(backbone)
    folder = out / "dense-grid"
    if report_only:
        path = folder / BEST_FILE
        if not path.is_file():
            raise UserError(f"{folder} holds no finished dense tuning; run the same command without --report")
        best = json.loads(path.read_text())["best"]
        if set(best) != set(grid):
            raise UserError(f"{path} tuned {', '.join(best)}, not {', '.join(grid)}; give the grid it was run with")
    else:
        best = tune_dense(backbone, dataset, grid, settings, folder, files).best
    note = (f"Dense baseline tuned first on validation over {'; '.join(f'{k} {v}' for k, v in grid.items())}: "
            f"selected {point_name(best)}, used by every cell ({GRID_MD} in dense-grid/).")
    return {**settings, **best}, note


if __name__ == "__main__":  # python -m recbole_compress.compare ... = recbole-compress compare ...
    from recbole_compress.cli import main

    sys.exit(main(["compare", *sys.argv[1:]]))
