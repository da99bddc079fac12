"""Dense vs CERP, PEP, the QR trick and one-shot magnitude pruning at the same
memory budgets, side by side in one run.

    uv run python benchmarks/cerp.py --dataset=ml-100k --sparsities=0.5,0.8,0.95 --threads=1 [--key=value ...]

Trains RecBole's dense backbone (``--backbone``, default LightGCN) once, then for
each sparsity s (of the full user + item tables, [PAD] rows excluded) and budget
1 - s: ``<backbone>_CERP``, ``<backbone>_PEP``, ``<backbone>_QR`` with
``memory_budget = 1 - s``, and magnitude pruning, the lottery-ticket trainer's
one-shot ticket (``<backbone>_LTH``, ``prune_schedule: oneshot``, one round at
``prune_rate = s``: the dense model is trained, its tables pruned by magnitude to
the budget, rewound and retrained). Every run uses the same data, split, seed,
evaluator and epoch cap. Prints one markdown table: test NDCG@20 and Recall@20,
the tables' non-zeros, exported model bytes and the mean epoch time relative to
the dense run (all epochs of a run: CERP/PEP's pruning stage included; LTH: its
pruned round). Extra ``--key=value`` arguments are RecBole/recbole_compress config
keys. Outputs go to ``benchmarks/out/cerp-<dataset>/`` (git-ignored).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from common import benchmark_parser, parse_with_overrides, prepare_run, write_report  # benchmarks/common.py

REPO = Path(__file__).resolve().parents[1]
METHODS = ("CERP", "PEP", "QR", "magnitude")


def parse():
    parser = benchmark_parser(__doc__, "cerp", "ml-100k")
    parser.add_argument("--backbone", default="LightGCN")
    parser.add_argument("--sparsities", default="0.5,0.8,0.95", help="sparsities of the full tables")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"subset of {','.join(METHODS)}")
    return parse_with_overrides(parser)


def run(model, dataset, settings) -> dict:
    from recbole_compress import run_recbole_compress

    started = time.time()
    summary = run_recbole_compress(model, dataset, config_dict=dict(settings))["summary"]
    summary["wall_time_s"] = round(time.time() - started, 1)
    return summary


def row(summary: dict, method: str) -> dict:
    """The figures of one run: (test metrics, table non-zeros, bytes, epoch time)."""
    if method == "dense":
        return {"test": summary["test"], "params": summary["dense_parameters"], "bytes": summary["dense_model_bytes"],
                "epoch_time_s": summary["epoch_time_s"], "epochs": summary["epochs"], "wall": summary["wall_time_s"]}
    if method == "magnitude":  # the pruned round of the one-shot ticket, whatever the ticket selection says
        r = summary["lth"]["rounds_table"][1]
        return {"test": {k[5:]: v for k, v in r.items() if k.startswith("test_")}, "params": r["nonzero_pruned_weights"],
                "bytes": r["model_bytes"], "epoch_time_s": r["epoch_time_s"], "epochs": r["epochs"], "wall": summary["wall_time_s"]}
    return {"test": summary["test"], "params": summary["budget"]["nonzero"], "bytes": summary["model_bytes"],
            "epoch_time_s": summary["epoch_time_s"], "epochs": summary["epochs"], "wall": summary["wall_time_s"],
            "stage1_epochs": summary["budget"].get("stage1_epochs")}


def main():
    args, overrides = parse()
    methods = [m for m in args.methods.split(",") if m]
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise SystemExit(f"error: unknown methods {sorted(unknown)}; choose from {','.join(METHODS)}")
    out, data_path = prepare_run(args, "cerp")

    from recbole_compress import UserError

    settings = {"data_path": str(data_path), "show_progress": False, "metrics": ["Recall", "NDCG"], "topk": [20],
                "valid_metric": "ndcg@20", **overrides}
    backbone = args.backbone
    header = ("| method | sparsity | test NDCG@20 | test Recall@20 | NDCG / dense | params (table non-zeros) | bytes "
              "| epochs | epoch-time ratio |")
    lines = [f"# {backbone}: dense vs CERP, PEP, QR, magnitude pruning on {args.dataset}", "",
             f"settings: `{json.dumps(settings)}`", "", header, "|" + "---|" * 9]
    summaries = {}

    def add(name, sparsity, r, dense):
        ratio = r["test"]["ndcg@20"] / max(dense["test"]["ndcg@20"], 1e-12)
        epochs = f"{r['epochs']}" + (f" ({r['stage1_epochs']} pruning)" if r.get("stage1_epochs") else "")
        lines.append(
            f"| {name} | {sparsity} | {r['test']['ndcg@20']:.4f} | {r['test']['recall@20']:.4f} | {ratio:.3f} | "
            f"{r['params']:,} | {r['bytes']:,} | {epochs} | {r['epoch_time_s'] / dense['epoch_time_s']:.2f} |"
        )
        print(lines[-1], flush=True)

    dense_summary = run(backbone, args.dataset, {**settings, "output_dir": str(out / backbone)})
    dense = row(dense_summary, "dense")
    summaries["dense"] = dense_summary
    print(header, flush=True)
    add("dense", "0", dense, dense)
    for sparsity in (float(s) for s in args.sparsities.split(",")):
        budget = round(1.0 - sparsity, 6)
        for method in methods:
            tag = f"{method}-s{sparsity}"
            if method == "magnitude":
                model = f"{backbone}_LTH"
                extra = {"prune_schedule": "oneshot", "prune_rounds": 1, "prune_rate": sparsity}
            else:
                model, extra = f"{backbone}_{method}", {"memory_budget": budget}
            try:
                summary = run(model, args.dataset, {**settings, **extra, "output_dir": str(out / tag)})
            except UserError as err:  # e.g. QR: two tables of ceil(sqrt(N)) rows exceed a tiny budget
                lines.append(f"| {method} | {sparsity} | n/a: {err} |||||||")
                print(lines[-1], flush=True)
                continue
            summaries[tag] = summary
            add(method, sparsity, row(summary, method), dense)
    text = "\n".join(lines) + "\n"
    write_report(out, text, summaries)


if __name__ == "__main__":
    main()
