"""ID-based SASRec vs ID-free TransRec (from scratch, and pre-trained elsewhere then fine-tuned),
on the same split, seed and evaluator.

    uv run python benchmarks/transrec.py --dataset=scientific --epochs=10 --threads=1
    uv run python benchmarks/transrec.py --dataset=tiktok-seq --epochs=10 --threads=1
    uv run python benchmarks/transrec.py --dataset=ml-100k --config_files=properties/ml-100k-seq.yaml \\
        --epochs=10 --pretrained=benchmarks/out/transrec-scientific/TransRec --threads=1

Runs, in this order: TransRec from scratch, SASRec (RecBole's model and defaults), and with
``--pretrained=RUN_DIR`` (a finished TransRec run on another dataset) or ``--pretrain_on=DATASET``
(trained here first, same settings) TransRec fine-tuned from that model. Every run trains at
most ``--epochs`` epochs with RecBole's early stopping on the validation metric and is tested
with its best validation checkpoint. A run whose ``summary.json`` exists is reused (rerun to
resume). Other ``--key=value`` arguments are config keys for every run (``--sasrec_key=value``
/ ``--transrec_key=value`` for one model only). Writes ``report.md`` and ``summaries.json`` to
``benchmarks/out/transrec-<dataset>/`` (git-ignored).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from common import REPO, benchmark_parser, ensure_dataset, parse_with_overrides, prepare_run, write_report  # benchmarks/common.py


def parse():
    parser = benchmark_parser(__doc__, "transrec", "scientific")
    parser.add_argument("--epochs", type=int, default=10, help="epoch cap of every run")
    parser.add_argument("--config_files", default=None, help="space-separated yaml files for every run")
    parser.add_argument("--pretrained", default=None, help="finished TransRec run (folder) to fine-tune from")
    parser.add_argument("--pretrain_on", default=None, help="dataset to pre-train TransRec on first")
    parser.add_argument("--pretrain_config_files", default=None, help="yaml files for the pre-training run")
    parser.add_argument("--models", default="TransRec,SASRec", help="runs besides the transfer run")
    return parse_with_overrides(parser)


def split_overrides(overrides: dict) -> dict[str, dict]:
    """``--sasrec_x`` / ``--transrec_x`` go to one model only, the rest to both."""
    common = {k: v for k, v in overrides.items() if not k.startswith(("sasrec_", "transrec_"))}
    return {
        "SASRec": {**common, **{k[7:]: v for k, v in overrides.items() if k.startswith("sasrec_")}},
        "TransRec": {**common, **{k[9:]: v for k, v in overrides.items() if k.startswith("transrec_")}},
    }


def run(model, dataset, settings, config_files, out_dir: Path) -> dict:
    summary_file = out_dir / "summary.json"
    if summary_file.is_file():
        print(f"reusing {summary_file}", flush=True)
        return {**json.loads(summary_file.read_text()), "output_dir": str(out_dir)}
    from recbole_compress import run_recbole_compress

    started = time.time()
    result = run_recbole_compress(model, dataset, config_file_list=config_files,
                                  config_dict={**settings, "output_dir": str(out_dir)})
    summary = result["summary"]
    summary["wall_time_s"] = round(time.time() - started, 1)
    summary_file.write_text(json.dumps(summary, indent=2, default=str))
    return {**summary, "output_dir": str(out_dir)}


def files(spec):
    return [str((REPO / f).resolve()) if not Path(f).is_absolute() else f for f in spec.split()] if spec else None


def item_table_parameters(summary: dict) -> int:
    """Numbers in the exported item ID table (SASRec's ``item_embedding.weight``; none in TransRec)."""
    from recbole_compress.export import load_artifact

    tensors = load_artifact(Path(summary["output_dir"]) / summary["artifact"])["tensors"]
    return int(sum(v.numel() for k, v in tensors.items() if k.startswith("item_embedding")))


def main():
    args, overrides = parse()
    pretrained = args.pretrained and str(Path(args.pretrained).resolve())  # before prepare_run changes directory
    out, data_path = prepare_run(args, "transrec")
    import recbole_compress  # noqa: F401

    per_model = split_overrides(overrides)
    base = {"data_path": str(data_path), "show_progress": False, "epochs": args.epochs}
    config_files = files(args.config_files)
    runs: list[tuple[str, dict]] = []
    summaries = {}
    if args.pretrain_on:
        ensure_dataset(args.pretrain_on, data_path)
        source = run("TransRec", args.pretrain_on, {**base, **per_model["TransRec"]},
                     files(args.pretrain_config_files), out / f"TransRec-pretrain-{args.pretrain_on}")
        summaries[f"pretrain-{args.pretrain_on}"] = source
        pretrained = str(out / f"TransRec-pretrain-{args.pretrain_on}")
    for model in args.models.split(","):
        summary = run(model, args.dataset, {**base, **per_model[model]}, config_files, out / model)
        runs.append((f"{model} (scratch)" if model == "TransRec" else model, summary))
        summaries[model] = summary
    if pretrained:
        if not (Path(pretrained) / "model.pt").is_file():
            raise SystemExit(f"error: --pretrained={pretrained} holds no model.pt; finish the pre-training run first")
        source = json.loads((Path(pretrained) / "summary.json").read_text())
        summary = run("TransRec", args.dataset, {**base, **per_model["TransRec"], "pretrained": pretrained},
                      config_files, out / "TransRec-finetuned")
        runs.append((f"TransRec (pre-trained on {source['dataset']}, fine-tuned)", summary))
        summaries["TransRec-finetuned"] = summary

    sasrec = summaries.get("SASRec")
    lines = [f"# SASRec vs TransRec on {args.dataset}", "",
             f"settings: `{json.dumps({**base, **overrides})}`, config files: `{args.config_files}`"
             + (f", pre-trained: `{pretrained}`" if pretrained else ""), "",
             "| model | epochs | valid NDCG@10 | test NDCG@10 | test HR@10 | NDCG@10 / SASRec | trainable params "
             "| item-ID params | model bytes | epoch (s) |",
             "|" + "---|" * 10]
    for name, s in runs:
        ratio = f"{s['test']['ndcg@10'] / sasrec['test']['ndcg@10']:.3f}" if sasrec else "-"
        item_params = f"0 (content encoder {s['transrec']['item_encoder_parameters']:,})" if "transrec" in s else \
            f"{item_table_parameters(s):,}"
        lines.append(
            f"| {name} | {s['epochs']} | {s['valid']['ndcg@10']:.4f} | {s['test']['ndcg@10']:.4f} | {s['test']['hit@10']:.4f} "
            f"| {ratio} | {s['trainable_parameters']:,} | {item_params} | {s['model_bytes']:,} | {s['epoch_time_s']:.1f} |"
        )
    transrec = summaries.get("TransRec") or summaries.get("TransRec-finetuned")
    if transrec:
        t = transrec["transrec"]
        lines += ["", f"TransRec keeps no per-item parameter: {t['items']:,} items, SASRec's item table here "
                  f"= {t['sasrec_item_table_parameters']:,} parameters; TransRec's trainable parameters "
                  f"({transrec['trainable_parameters']:,}) are the same for any catalogue. Frozen text encoder "
                  f"(shared, not trained; 0 = no text): {t['text_encoder_parameters']:,} parameters; content cache "
                  f"{t['content_cache_bytes']:,} bytes (data, grows with the catalogue)."]
    write_report(out, "\n".join(lines) + "\n", summaries)


if __name__ == "__main__":
    main()
