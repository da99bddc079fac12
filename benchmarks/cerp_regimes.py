"""CERP in the authors' regime: against PEP, QR and one-shot magnitude pruning at the
authors' budgets, with a validation-tuned dense baseline, in one resumable run.

    uv run python benchmarks/cerp_regimes.py --dataset=ml-100k --backbone=LightGCN \\
        [--sparsities=0.5,0.8,0.95] [--grid="learning_rate=1e-3,5e-3,1e-2;reg_weight=1e-5,1e-4,1e-3"] \\
        [--seeds=2020,2021,2022] [--same_count] [--defaults] [--grid_only] [--out=DIR] [--key=value ...]

1. The dense backbone is tuned on a grid (dense_baseline.tune_dense: selected on
   validation, reported on test) under the regime (properties/paper/cerp.yaml plus
   ``--key=value``).
2. Each meta-table sparsity s (the authors' budget form, b from ``meta_buckets``)
   becomes the byte budget at which CERP keeps exactly (1 - s) * 2 * b * d' values
   (budgets.meta_sparsity_budget); ``recbole-compress compare`` then trains CERP, PEP,
   QR and the one-shot magnitude ticket at those bytes, every cell with the selected
   dense learning rate and L2 (the dense cell IS the selected grid point).
   ``--seeds``: the comparison and the same-count cells (not the grid, nor the other
   extras below) run once per seed and report mean ± sd; "best" then means ahead of the
   others by more than the spread.
3. ``--same_count``: PEP at the same meta sparsity (the same non-zeros as CERP, more
   bytes) and the one-shot magnitude ticket keeping the same count -- the authors'
   own axis (parameters).
4. ``--defaults``: dense and CERP in RecBole's defaults (d=64, 2 layers, 1 negative,
   the pace schedule), at the same meta sparsities: the column a user gets without
   the preset.
5. Always: the most popular items (RecBole's Pop) under the regime's evaluation, the
   floor a compressed model has to clear, and a random ranking (RecBole's Random).

Everything is resumable (rerun the same command); a finished cell is reused only under the
settings it ran with. Prints and writes ``report.md``.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import benchmark_parser, parse_with_overrides, prepare_run  # noqa: E402 (benchmarks/common.py)

REPO = Path(__file__).resolve().parents[1]
PRESET = str(REPO / "properties" / "paper" / "cerp.yaml")
METRIC = "ndcg@20"


def parse():
    parser = benchmark_parser(__doc__, "cerp-regimes", "ml-100k")
    parser.add_argument("--backbone", default="LightGCN")
    parser.add_argument("--sparsities", default="0.5,0.8,0.95")
    parser.add_argument("--seeds", default="", help="run the comparison once per seed, e.g. 2020,2021,2022")
    parser.add_argument("--grid", default=None, help="dense grid, e.g. learning_rate=1e-3,5e-3;reg_weight=1e-5,1e-4")
    parser.add_argument("--same_count", nargs="?", const="PEP,LTH", default="",
                        help="also these methods (PEP, LTH) at CERP's non-zero count (more bytes)")
    parser.add_argument("--defaults", action="store_true", help="also dense and CERP in RecBole's defaults")
    parser.add_argument("--grid_only", action="store_true",
                        help="stop after the dense grid: split a grid across processes (--grid with part of it each), "
                             "then run the whole command, which reads the finished points back")
    parser.add_argument("--default_settings", default="{}", help="JSON: keys for the defaults column (e.g. epochs)")
    return parse_with_overrides(parser)


def seed_dense_cell(grid_cell: Path, compare_out: Path, dense_cells, grid_seed: int) -> None:
    """The comparison's dense cell is the selected grid point (a dense run reads none of
    the methods' keys): copy it, recorded as the comparison will look for it, instead of
    training it again. With ``--seeds`` it stands in for the cell of the grid's seed only."""
    from recbole_compress.run import atomic_write_json, to_jsonable

    for cell in (c for c in dense_cells if c.seed in (None, grid_seed)):
        target = compare_out / "cells" / cell.name
        if not (target / "cell.json").is_file():
            shutil.copytree(grid_cell, target, dirs_exist_ok=True)
            atomic_write_json(target / "cell.json", {"record": to_jsonable(cell.record)})


def magnitude_at_count(tables, kept: int) -> dict:
    """One-shot magnitude ticket settings that keep exactly ``kept`` values (the trainer
    prunes round(rate * total))."""
    import math

    total = sum((t.rows - 1) * t.dim for t in tables)
    rate = (total - kept) / total
    while total - int(round(rate * total)) > kept:
        rate = math.nextafter(rate, 1.0)
    return {"prune_schedule": "oneshot", "prune_rounds": 1, "prune_rate": rate, "ticket_select": "sparsest",
            "target_sparsity": None}


def seed_variants(seeds, own_seed: int):
    """(folder suffix, settings) for each of ``seeds`` (else the grid's own seed): the
    grid's seed keeps the plain folder and settings, so its finished cells are reused."""
    for seed in seeds or [own_seed]:
        yield ("", {}) if seed == own_seed else (f"-seed{seed}", {"seed": seed})


def run_cell(model, dataset, out: Path, settings: dict, files) -> dict:
    """One run, read back only when it finished with these settings (compare_cells.run_cell);
    under changed settings the run stops with an error naming the folder instead of reusing
    or overwriting it. ``data_path`` is left out of the record, as in the comparison's
    cells, so a moved dataset folder is not a change."""
    from recbole_compress.compare_cells import CELL_FILE
    from recbole_compress.compare_cells import run_cell as run_recorded
    from recbole_compress.run import atomic_write_json, to_jsonable

    record = {"model": model, "settings": {k: v for k, v in settings.items() if k != "data_path"}}
    marker = out / "done"  # how this script marked a finished cell before it recorded settings
    if marker.is_file() and (out / "summary.json").is_file() and not (out / CELL_FILE).is_file():
        # adopted once: the marker was written by this command's own settings
        atomic_write_json(out / CELL_FILE, {"record": to_jsonable(record), "ran_on": {}})
    marker.unlink(missing_ok=True)
    return run_recorded(model, dataset, out, record, files, settings).summary


def score(summary, split="test"):
    return (summary or {}).get(split, {}).get(METRIC)


def main():
    args, overrides = parse()
    out, data_path = prepare_run(args, f"cerp-regimes-{args.backbone}")
    from recbole_compress.budgets import meta_sparsity_budget
    from recbole_compress.compare import backbone_tables, plan_cells, run_comparison
    from recbole_compress.dense_baseline import default_grid, parse_grid, point_name, tune_dense
    from recbole_compress.seeds import parse_seeds

    import yaml

    started = time.time()
    seeds = parse_seeds(args.seeds) if args.seeds else None
    # the preset's keys as settings, not a config file: the comparison's budget planner
    # reads the settings only (meta_buckets and embedding_size shape CERP's tables)
    base = {**yaml.safe_load(Path(PRESET).read_text()), "show_progress": False, **overrides}
    if args.dataset != "ml-100k":
        base["data_path"] = str(data_path)
    files = None
    grid = parse_grid(args.grid) if args.grid else default_grid(args.backbone)
    fixed = {k: v for k, v in base.items() if k not in grid}
    tuning = tune_dense(args.backbone, args.dataset, grid, fixed, out / "dense-grid", files)
    if args.grid_only:
        print(f"[grid] {len(tuning.rows)} points finished in {out / 'dense-grid'}; best of them {point_name(tuning.best)}")
        return
    regime = {**fixed, **tuning.best}
    tables, _ = backbone_tables(args.backbone, args.dataset, files, regime)
    sparsities = [float(s) for s in args.sparsities.split(",")]
    metas = [meta_sparsity_budget(tables, s, regime) for s in sparsities]
    # the comparison's own dense cells (names and records), as run_comparison plans them
    dense_cells, _, _ = plan_cells(args.backbone, tables, [], [], {"show_progress": False, **regime}, seeds)
    seed_dense_cell(out / "dense-grid" / "cells" / point_name(tuning.best), out / "compare", dense_cells,
                    tuning.best_summary["seed"])
    comparison = run_comparison(args.dataset, args.backbone, [m.budget for m in metas], ["CERP", "PEP", "QR", "LTH"],
                                out / "compare", files, regime, seeds=seeds)
    rows = comparison["rows"]
    extra = {}
    same_count = [m for m in args.same_count.split(",") if m]
    for suffix, seeded in seed_variants(seeds, int(tuning.best_summary["seed"])):
        for m in metas:
            if "PEP" in same_count:
                extra.setdefault(("PEP", m.meta_sparsity), []).append(run_cell(
                    f"{args.backbone}_PEP", args.dataset, out / f"same-count/PEP-s{m.meta_sparsity:g}{suffix}",
                    {**regime, "meta_sparsity": m.meta_sparsity, **seeded}, files))
            if "LTH" in same_count:
                extra.setdefault(("LTH", m.meta_sparsity), []).append(run_cell(
                    f"{args.backbone}_LTH", args.dataset, out / f"same-count/LTH-s{m.meta_sparsity:g}{suffix}",
                    {**regime, **magnitude_at_count(tables, m.kept), **seeded}, files))
    defaults = {}
    if args.defaults:
        default_settings = {"show_progress": False, "metrics": ["Recall", "NDCG"], "topk": [5, 20], "valid_metric": METRIC,
                            "meta_buckets": regime["meta_buckets"], **json.loads(args.default_settings)}
        if "data_path" in base:
            default_settings["data_path"] = base["data_path"]
        defaults["dense"] = run_cell(args.backbone, args.dataset, out / "defaults/dense", default_settings, None)
        for m in metas:
            defaults[m.meta_sparsity] = run_cell(f"{args.backbone}_CERP", args.dataset, out / f"defaults/CERP-s{m.meta_sparsity:g}",
                                                 {**default_settings, "meta_sparsity": m.meta_sparsity}, None)
    # the floor a compressed model has to clear to be worth its bytes: the most popular
    # items (RecBole's Pop), one counting epoch. Batches of one row: RecBole 1.2.1's Pop
    # adds 1 per distinct item per batch (item_cnt[item] += 1), so larger batches cap
    # the counts of popular items (RUCAIBox/RecBole#1844, #2198; ml-100k: test NDCG@20 0.150
    # at 1 row, 0.124 at 2,048, 0.034 at 10,240); one negative, which Pop ignores, keeps
    # that epoch short.
    one_epoch = {**regime, "epochs": 1, "eval_step": 1}
    counting = {"train_batch_size": 1, "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1}}
    popular = run_cell("Pop", args.dataset, out / "reference/Pop", {**one_epoch, **counting}, files)
    # and the level of chance: a random ranking (RecBole's Random)
    chance = run_cell("Random", args.dataset, out / "reference/Random", one_epoch, files)
    shown = {**{k: v for k, v in overrides.items() if k not in grid}, **tuning.best}
    report = render(args, tuning, metas, rows, extra, defaults, (popular, chance), shown, time.time() - started)
    (out / "report.md").write_text(report)
    print("\n" + report)


def render(args, tuning, metas, rows, extra, defaults, references, regime, seconds) -> str:
    from recbole_compress.dense_baseline import point_name

    dense = next(r for r in rows if r["method"] == "dense")
    best = dense[f"test_{METRIC}"]  # the selected grid point (its mean over the seeds with --seeds)
    seeds = f", {dense['n_seeds']} seeds ({dense['seeds']}): mean ± sd" if "n_seeds" in dense else ""
    lines = [f"# CERP in the authors' regime: {args.backbone} on {args.dataset}{seeds}", "",
             f"Regime: properties/paper/cerp.yaml, then `{json.dumps(regime)}`; "
             f"best dense from {len(tuning.rows)} grid points ({point_name(tuning.best)}), selected on valid {METRIC}: "
             f"test {METRIC} {_ms(dense, f'test_{METRIC}')}. This invocation: {seconds / 60:.0f} min.", "",
             "| meta sparsity | full-table share | bytes budget | method | test " + METRIC + " | / best dense | valid "
             + METRIC + " | kept values | table bytes | note |", "|" + "---|" * 10]
    for m in metas:
        head = f"| {m.meta_sparsity:g} (b={'/'.join(map(str, m.buckets))}) | {m.full_table_fraction:.3%} | {m.table_bytes:,} ({m.budget:.3%})"
        for r in (r for r in rows if r["method"] != "dense" and abs(r["budget"] - m.budget) < 1e-12):
            t = r.get(f"test_{METRIC}")
            note = "; ".join(x for x in (r.get("best_at_budget"), r.get("note")) if x)
            lines.append(f"{head} | {r['method']} | {_ms(r, f'test_{METRIC}')} | {_f(t / best if t else None, 3)} | "
                         f"{_ms(r, f'valid_{METRIC}')} | {_c(r.get('table_parameters'))} | {_c(r.get('table_bytes'))} | {note} |")
        for method in ("PEP", "LTH"):
            runs = extra.get((method, m.meta_sparsity))
            if runs:
                s, pooled = runs[0], pool(runs)
                lines.append(f"{head} | {method} (same count, more bytes) | {_ms(pooled, 'test')} | {_f(pooled['test'] / best, 3)} | "
                             f"{_ms(pooled, 'valid')} | {_c(s.get('nonzero_parameters'))} | "
                             f"{_c(sum((s.get('table_bytes') or {}).values()))} | {pooled['note']} |")
        if m.meta_sparsity in defaults:
            s = defaults[m.meta_sparsity]
            t, dense = score(s), score(defaults["dense"])
            lines.append(f"{head} | CERP, RecBole defaults | {_f(t)} | {_f(t / dense, 3)} of its dense ({dense:.4f}) | "
                         f"{_f(score(s, 'valid'))} | {_c(s.get('nonzero_parameters'))} | {_c(sum((s.get('table_bytes') or {}).values()))} | |")
    popular, chance = references
    pop = score(popular)
    lines += ["", f"Most popular items (RecBole's Pop, no learned table): test {METRIC} {_f(pop)} "
              f"({_f(pop / best, 3)} of the best dense), valid {_f(score(popular, 'valid'))}: "
              f"a compressed model below it is not worth its bytes. A random ranking: test {METRIC} {_f(score(chance))}.",
              "", f"Dense grid (selected on validation): see {Path(tuning.out) / 'dense_grid.md'}"]
    return "\n".join(lines) + "\n"


def pool(runs: list[dict]) -> dict:
    """Test and valid scores of one method's runs over seeds: the mean (± sd from two runs on)."""
    import statistics

    row = {"note": f"{len(runs)} seeds" if len(runs) > 1 else ""}
    for split in ("test", "valid"):
        values = [score(s, split) for s in runs]
        row[split] = statistics.fmean(values)
        if len(values) > 1:
            row[f"{split}_sd"] = statistics.stdev(values)
    return row


def _f(x, digits=4):
    return "" if x is None else f"{x:.{digits}f}"


def _ms(row, key):
    """A row's value, as mean ± sd when it pools seeds."""
    sd = row.get(f"{key}_sd")
    return _f(row.get(key)) if sd is None else f"{_f(row.get(key))} ± {_f(sd)}"


def _c(x):
    return "" if x is None else f"{x:,}"


if __name__ == "__main__":
    main()
