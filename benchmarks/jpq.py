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
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from common import benchmark_parser, parse_with_overrides, prepare_run, write_report  # benchmarks/common.py

REPO = Path(__file__).resolve().parents[1]


def parse():
    parser = benchmark_parser(__doc__, "jpq", "ml-100k")
    parser.add_argument("--models", default="SASRec,GRU4Rec,BERT4Rec")
    parser.add_argument("--epochs", default="10", help="epoch cap: N, or Model:N,Model:N")
    parser.add_argument("--code_lengths", default="8", help="JPQ code lengths m: 8, 8+4, or Model:8+4,Model:8")
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


def run(model, dataset, settings):
    from recbole_compress import run_recbole_compress

    started = time.time()
    result = run_recbole_compress(model, dataset, config_dict=dict(settings))
    summary = result["summary"]
    summary["wall_time_s"] = round(time.time() - started, 1)
    summary["item_table_bytes"] = table_bytes(Path(result["output_dir"]) / summary["artifact"])
    return summary


def main():
    args, overrides = parse()
    out, data_path = prepare_run(args, "jpq")

    import recbole_compress  # noqa: F401

    settings = {"data_path": str(data_path), "show_progress": False, **overrides}
    lines = [f"# RecJPQ vs dense on {args.dataset}", "", f"settings: `{json.dumps(settings)}`, epochs: `{args.epochs}`, code lengths: `{args.code_lengths}`", ""]
    header = (
        "| backbone | model | epochs | valid NDCG@10 | test NDCG@10 | test HR@10 | item table bytes | dense / this table "
        "| model bytes | epoch time (s) | epoch-time ratio |"
    )
    rows = [header, "|" + "---|" * 11]
    summaries = {}
    for base in args.models.split(","):
        epochs = int(per_model(args.epochs, base, "epochs"))
        dense = run(base, args.dataset, {**settings, "epochs": epochs, "output_dir": str(out / base)})
        runs = [(base, dense)]
        for m in per_model(args.code_lengths, base, "code_lengths").split("+"):
            jpq = run(
                f"{base}_JPQ",
                args.dataset,
                {**settings, "epochs": epochs, "jpq_code_length": int(m), "output_dir": str(out / f"{base}_JPQ-m{m}")},
            )
            runs.append((f"{base}_JPQ (m={m})", jpq))
        summaries[base] = dict(runs)
        for name, s in runs:
            ratio = dense["item_table_bytes"] / s["item_table_bytes"]
            rows.append(
                f"| {base} | {name} | {s['epochs']} | {s['valid']['ndcg@10']:.4f} | {s['test']['ndcg@10']:.4f} | "
                f"{s['test']['hit@10']:.4f} | {s['item_table_bytes']:,} | {ratio:.1f}x | {s['model_bytes']:,} | "
                f"{s['epoch_time_s']:.1f} | {s['epoch_time_s'] / dense['epoch_time_s']:.2f} |"
            )
        print("\n".join([header, rows[1]] + rows[-len(runs):]), flush=True)
    lines += rows
    lines += ["", "test NDCG@10, JPQ / dense: " + ", ".join(
        f"{name} {s['test']['ndcg@10'] / max(by_name[b]['test']['ndcg@10'], 1e-12):.3f}"
        for b, by_name in summaries.items() for name, s in by_name.items() if name != b
    )]
    text = "\n".join(lines) + "\n"
    write_report(out, text, summaries)


if __name__ == "__main__":
    main()
