"""Lottery tickets in the paper's regime against a validation-tuned dense baseline.

    uv run python benchmarks/lth_regimes.py --dataset=tiktok --backbone=LightGCN \\
        [--grid="learning_rate=1e-3,5e-3,1e-2;reg_weight=1e-5,1e-4,1e-3"] [--out=DIR] [--key=value ...]

1. The dense backbone is tuned on a grid (dense_baseline.tune_dense: selected on
   validation, reported on test) under properties/paper/lth_media.yaml plus ``--key=value``.
2. ``<backbone>_LTH`` runs the paper's ticket search (10% per round, rewind to init, one
   init scale, global threshold) with the same settings, each round early-stopped on
   validation. ``--ticket_at=tuned`` runs it at the grid point validation selected instead
   of the preset's learning rate and L2 (the paper's values may not suit the data, or, for
   BPR, reach its loss at all: RecBole's BPR has no L2 term, so its grid tunes weight_decay).
3. The table: every round's remaining fraction, validation and test metric, against
   (a) the ticket run's own dense round 0 (the paper's comparison) and (b) the best dense
   of the grid (what a user can get by tuning). A winning ticket needs validation
   >= dense validation x (1 - ticket_tolerance); test never selects.

Resumable: the grid's points and the ticket's rounds resume after a kill (rerun the
same command). Prints and writes ``report-<ticket_at>.md`` (the preset's and the tuned
point's searches share the folder and its dense grid, not the report).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import benchmark_parser, parse_with_overrides, prepare_run  # noqa: E402 (benchmarks/common.py)

REPO = Path(__file__).resolve().parents[1]
PRESET = REPO / "properties" / "paper" / "lth_media.yaml"


def parse():
    parser = benchmark_parser(__doc__, "lth-regimes", "tiktok")
    parser.add_argument("--backbone", default="LightGCN")
    parser.add_argument("--grid", default=None, help="dense grid, e.g. learning_rate=1e-3,5e-3;reg_weight=1e-5,1e-4")
    parser.add_argument("--ticket_at", choices=("preset", "tuned"), default="preset",
                        help="the ticket search's learning rate and L2: the preset's, or the selected grid point")
    return parse_with_overrides(parser)


def main():
    import yaml

    args, overrides = parse()
    out, data_path = prepare_run(args, f"lth-regimes-{args.backbone}")
    from recbole_compress import run_recbole_compress
    from recbole_compress.dense_baseline import default_grid, parse_grid, tune_dense

    started = time.time()
    settings = {**yaml.safe_load(PRESET.read_text()), "show_progress": False, **overrides}
    if args.dataset != "ml-100k":
        settings["data_path"] = str(data_path)
    grid = parse_grid(args.grid) if args.grid else default_grid(args.backbone)
    dense_settings = {k: v for k, v in settings.items() if k not in grid}
    tuning = tune_dense(args.backbone, args.dataset, grid, dense_settings, out / "dense-grid")
    at = tuning.best if args.ticket_at == "tuned" else {}
    summary = run_recbole_compress(f"{args.backbone}_LTH", args.dataset, None,
                                   {**settings, **at, "output_dir": str(out / f"tickets-{args.ticket_at}")})["summary"]
    report = render(args, tuning, summary, overrides, time.time() - started)
    (out / f"report-{args.ticket_at}.md").write_text(report)
    print("\n" + report)


def render(args, tuning, summary, overrides, seconds) -> str:
    from recbole_compress.dense_baseline import point_name

    lth = summary["lth"]
    metric = summary["valid_metric"]
    rows = lth["rounds_table"]
    own = rows[0]
    best_valid, best_test = tuning.best_summary["valid"][metric], tuning.best_summary["test"][metric]
    tolerance = lth["ticket_tolerance"]
    lines = [f"# Lottery tickets in the paper's regime: {args.backbone} on {args.dataset}", "",
             f"Regime: properties/paper/lth_media.yaml, then `{overrides}`; tickets at the "
             f"{'selected grid point' if args.ticket_at == 'tuned' else 'preset'}'s learning rate and L2; this invocation: {seconds / 60:.0f} min.",
             f"Best dense of {len(tuning.rows)} grid points ({point_name(tuning.best)}), selected on validation: "
             f"valid {metric} {best_valid:.4f}, test {best_test:.4f}. The ticket run's own dense round: "
             f"valid {own['valid_score']:.4f}, test {own.get('test_' + metric, float('nan')):.4f}. "
             f"Winning: valid >= dense valid x (1 - {tolerance}).", "",
             f"| round | remaining | valid {metric} | test {metric} | ndcg@20 test | wins vs own dense | wins vs best dense | best epoch | epochs |",
             "|" + "---|" * 9]
    for r in rows:
        valid, test = r["valid_score"], r.get(f"test_{metric}")
        wins_own = r["round"] > 0 and valid >= own["valid_score"] * (1 - tolerance)
        wins_best = r["round"] > 0 and valid >= best_valid * (1 - tolerance)
        lines.append(f"| {r['round']} | {r['remaining']:.4f} | {valid:.4f} | {test:.4f} | {r.get('test_ndcg@20', float('nan')):.4f} | "
                     f"{'yes' if wins_own else ''} | {'yes' if wins_best else ''} | {r['best_epoch']} | {r['epochs']} |")
    ticket = lth["winning_ticket"]
    sparsest_best = min((r for r in rows[1:] if r["valid_score"] >= best_valid * (1 - tolerance)),
                        key=lambda r: r["remaining"], default=None)
    lines += ["",
              "- Winning ticket vs its own dense round (the paper's comparison): "
              + (f"{ticket['remaining']:.2%} remaining (round {ticket['round']})" if ticket else "none"),
              "- Sparsest round reaching the best tuned dense on validation: "
              + (f"{sparsest_best['remaining']:.2%} remaining (round {sparsest_best['round']})" if sparsest_best else "none"),
              f"- Dense grid: {Path(tuning.out) / 'dense_grid.md'}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
