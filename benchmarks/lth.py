"""Dense RecBole models vs their lottery tickets, side by side in one run.

    uv run python benchmarks/lth.py --dataset=tiktok --models=BPR,LightGCN [--key=value ...]

For each base model: trains the dense RecBole model, then ``<model>_LTH`` with
the same settings (data, split, seed, evaluator), and prints one table per model
(remaining fraction vs validation/test metrics, parameters, exported bytes) and
a comparison table (dense vs winning ticket, epoch-time ratio). Extra
``--key=value`` arguments are RecBole/recbole_compress config keys. Outputs go to
``benchmarks/out/lth-<dataset>/`` (git-ignored).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from common import benchmark_parser, parse_with_overrides, prepare_run  # benchmarks/common.py

REPO = Path(__file__).resolve().parents[1]


def parse():
    parser = benchmark_parser(__doc__, "lth", "ml-100k")
    parser.add_argument("--models", default="BPR,LightGCN")
    return parse_with_overrides(parser)


def run(model, dataset, settings):
    from recbole_compress import run_recbole_compress

    started = time.time()
    result = run_recbole_compress(model, dataset, config_dict=dict(settings))
    summary = result["summary"]
    summary["wall_time_s"] = round(time.time() - started, 1)
    return summary


def fmt(x, digits=4):
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def main():
    args, overrides = parse()
    out, data_path = prepare_run(args, "lth")

    from recbole.config import Config as _  # noqa: F401  (import cost before timing)

    import recbole_compress  # noqa: F401

    settings = {"data_path": str(data_path), "show_progress": False, "metrics": ["Recall", "NDCG"], "topk": [20],
                "valid_metric": "recall@20", **overrides}
    lines = [f"# Lottery tickets vs dense on {args.dataset}", "", f"settings: `{json.dumps(settings)}`", ""]
    comparison = ["| model | dense test recall@20 | dense test ndcg@20 | ticket remaining | ticket valid recall@20 "
                  "| ticket test recall@20 | ticket test ndcg@20 | ticket bytes / dense bytes | sparsest round with test >= dense "
                  "| epoch time dense (s) | epoch time LTH (s) | ratio (sequential runs; see lth_epoch_time.py) |", "|" + "---|" * 12]
    for base in args.models.split(","):
        dense = run(base, args.dataset, {**settings, "output_dir": str(out / base)})
        lth = run(f"{base}_LTH", args.dataset, {**settings, "output_dir": str(out / f"{base}_LTH")})
        rows = lth["lth"]["rounds_table"]
        lines += [f"## {base}_LTH rounds", "", "| round | remaining | params | bytes | valid recall@20 | test recall@20 "
                  "| test ndcg@20 | best epoch | epoch time (s) |", "|" + "---|" * 9]
        for r in rows:
            lines.append(
                f"| {r['round']} | {r['remaining']:.4f} | {r['nonzero_pruned_weights']} | {r['model_bytes']} | "
                f"{r['valid_recall@20']:.4f} | {r['test_recall@20']:.4f} | {r['test_ndcg@20']:.4f} | {r['best_epoch']} | {r['epoch_time_s']:.3f} |"
            )
        ticket = lth["lth"]["winning_ticket"]
        dense_test = dense["test"]["recall@20"]
        on_test = [r for r in rows if r["test_recall@20"] >= dense_test]
        sparsest_test = min(on_test, key=lambda r: r["remaining"])["remaining"] if on_test else None
        lth_epoch = sum(r["epoch_time_s"] * r["epochs"] for r in rows) / max(sum(r["epochs"] for r in rows), 1)
        ratio = lth_epoch / dense["epoch_time_s"]
        comparison.append(
            f"| {base} | {dense_test:.4f} | {dense['test']['ndcg@20']:.4f} | "
            + (
                f"{ticket['remaining']:.4f} | {ticket['valid_recall@20']:.4f} | {ticket['test_recall@20']:.4f} | "
                f"{ticket['test_ndcg@20']:.4f} | {ticket['model_bytes'] / dense['dense_model_bytes']:.3f} | "
                if ticket
                else "none | - | - | - | - | "
            )
            + f"{fmt(sparsest_test)} | {dense['epoch_time_s']:.3f} | {lth_epoch:.3f} | {ratio:.2f}x |"
        )
        lines.append("")
        print("\n".join(lines[-len(rows) - 4 :]), flush=True)
    lines += ["## Dense vs winning ticket (selected on validation)", ""] + comparison
    text = "\n".join(lines) + "\n"
    (out / "report.md").write_text(text)
    print("\n".join(comparison))
    print(f"\nreport: {out / 'report.md'}; plots: {out}/*_LTH/tickets.png")


if __name__ == "__main__":
    main()
