"""Dense sequential models vs their RecJPQ versions, side by side in one run.

    uv run python benchmarks/jpq.py --dataset=beauty --models=SASRec,GRU4Rec,BERT4Rec \\
        --epochs=SASRec:8,GRU4Rec:5,BERT4Rec:3 --code_lengths=SASRec:8+4,GRU4Rec:8,BERT4Rec:8 \\
        --threads=1 [--key=value ...]

For each backbone: trains RecBole's dense model, then ``<backbone>_JPQ`` with the
same settings (data, split, seed, evaluator, epochs), and prints one markdown table:
validation and test NDCG@10 / HR@10, the item table's bytes (dense: the exported
``item_embedding.weight``; JPQ: its exported codes + codebooks (+ BERT4Rec's
[MASK] row), i.e. ``dense_bytes()`` / ``export_bytes()`` of the module), the whole
exported model's bytes, epochs and mean epoch time. ``--epochs`` is one number or
``Model:n,...``; ``--code_lengths`` (JPQ's m, one JPQ run each) is ``8``, ``8+4`` or
``Model:8+4,...``; other ``--key=value`` arguments are RecBole/recbole_compress config
keys. Outputs go to ``benchmarks/out/jpq-<dataset>/`` (git-ignored).

A training regime comes as config files, e.g. the authors' (all positions, BCE with one
negative, d=128, early stopping; see docs/recjpq.md):

    uv run python benchmarks/jpq.py --dataset=beauty --models=SASRec \\
        --config_files=properties/paper/recjpq.yaml --epochs=200 --code_lengths=4+8+16 --threads=1

Finished runs (same model and settings in their output folder) are read back, so a long
benchmark resumes after its last finished model. With several code lengths, the one
with the best validation NDCG@10 is marked (test scores play no part in the choice).
``--workers=N`` trains N models at once, each in its own process (a GPU or a many-core
machine; with ``--threads`` threads each), then builds the same table.
Learning curves (valid NDCG@10 per epoch, every model of a backbone): ``curves-<backbone>.png``.
"""

from __future__ import annotations

import json
from pathlib import Path

from common import benchmark_parser, config_file_paths, parse_with_overrides, prepare_run, write_report  # benchmarks/common.py
from runs import best_point, plot_curves, run_in_parallel, run_or_reuse  # benchmarks/runs.py


def parse():
    parser = benchmark_parser(__doc__, "jpq", "ml-100k")
    parser.add_argument("--models", default="SASRec,GRU4Rec,BERT4Rec")
    parser.add_argument("--epochs", default="10", help="epoch cap: N, or Model:N,Model:N")
    parser.add_argument("--code_lengths", default="8", help="JPQ code lengths m: 8, 8+4, or Model:8+4,Model:8")
    parser.add_argument("--config_files", default="", help="config files of a training regime, space-separated")
    parser.add_argument("--workers", type=int, default=1, help="models trained at once, one process each")
    return parse_with_overrides(parser)


def per_model(spec: str, model: str, what: str) -> str:
    """``spec`` is a value for every model, or ``Model:value,Model:value``."""
    if ":" not in spec:
        return spec
    table = dict(part.split(":") for part in spec.split(","))
    if model not in table:
        raise SystemExit(f"error: --{what}={spec} gives no value for {model}")
    return table[model]


def table_bytes(artifact_path, table: str = "item_embedding") -> int:
    """Bytes of one table in the exported artifact (dense: its weight; compressed: its export())."""
    from recbole_compress.export import load_artifact

    tensors = load_artifact(artifact_path)["tensors"]
    keys = [k for k in tensors if k == f"{table}.weight" or k.startswith(f"{table}::")]
    return int(sum(tensors[k].numel() * tensors[k].element_size() for k in keys))


def run(model, dataset, settings, out_dir, config_files):
    summary = run_or_reuse(model, dataset, settings, out_dir, config_files)
    summary["item_table_bytes"] = table_bytes(out_dir / summary["artifact"])
    return summary


def main():
    args, overrides = parse()
    config_files = config_file_paths(args.config_files)
    out, data_path = prepare_run(args, "jpq")

    import recbole_compress  # noqa: F401

    settings = {"data_path": str(data_path), "show_progress": False, **overrides}
    regime = ", ".join(Path(f).name for f in config_files) or "RecBole's defaults"
    lines = [f"# RecJPQ vs dense on {args.dataset}", "",
             f"regime: {regime}; settings: `{json.dumps(settings)}`, epochs: `{args.epochs}`, code lengths: `{args.code_lengths}`", ""]
    header = (
        "| backbone | model | epochs | best epoch | valid NDCG@10 | test NDCG@10 | test HR@10 | item table bytes | dense / this table "
        "| model bytes | epoch time (s) | epoch-time ratio | time to best (s) |"
    )
    rows = [header, "|" + "---|" * 13]
    plan = {}  # backbone -> [(row name, model, settings, output folder)], dense first
    for base in args.models.split(","):
        epochs = int(per_model(args.epochs, base, "epochs"))
        plan[base] = [(base, base, {**settings, "epochs": epochs}, out / base)] + [
            (f"{base}_JPQ (m={m})", f"{base}_JPQ", {**settings, "epochs": epochs, "jpq_code_length": int(m)},
             out / f"{base}_JPQ-m{m}")
            for m in per_model(args.code_lengths, base, "code_lengths").split("+")
        ]
    if args.workers > 1:
        run_in_parallel([(model, args.dataset, s, folder, config_files) for planned in plan.values()
                         for _, model, s, folder in planned], args.workers, args.threads)
    summaries = {}
    for base, planned in plan.items():
        runs = [(name, run(model, args.dataset, s, folder, config_files)) for name, model, s, folder in planned]
        dense = runs[0][1]
        coded = [(name, s) for name, s in runs[1:]]
        picked = max(coded, key=lambda item: item[1]["valid"]["ndcg@10"])[0] if len(coded) > 1 else None
        summaries[base] = dict(runs)
        for name, s in runs:
            ratio = dense["item_table_bytes"] / s["item_table_bytes"]
            best = best_point(s)
            label = f"{name}, picked by validation" if name == picked else name
            rows.append(
                f"| {base} | {label} | {s['epochs']} | {best['epochs']} | {s['valid']['ndcg@10']:.4f} | {s['test']['ndcg@10']:.4f} | "
                f"{s['test']['hit@10']:.4f} | {s['item_table_bytes']:,} | {ratio:.1f}x | {s['model_bytes']:,} | "
                f"{s['epoch_time_s']:.1f} | {s['epoch_time_s'] / dense['epoch_time_s']:.2f} | {best['time_s']} |"
            )
        print("\n".join([header, rows[1]] + rows[-len(runs):]), flush=True)
        plot = plot_curves(dict(runs), out / f"curves-{base}.png", f"{base} vs {base}_JPQ on {args.dataset} ({regime})")
        lines.append(f"learning curves: {plot.name}")
    lines += ["", *rows]
    lines += ["", "test NDCG@10, JPQ / dense: " + ", ".join(
        f"{name} {s['test']['ndcg@10'] / max(by_name[b]['test']['ndcg@10'], 1e-12):.3f}"
        for b, by_name in summaries.items() for name, s in by_name.items() if name != b
    )]
    text = "\n".join(lines) + "\n"
    write_report(out, text, summaries)


if __name__ == "__main__":
    main()
