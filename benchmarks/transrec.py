"""ID-based SASRec vs ID-free TransRec (from scratch, and pre-trained elsewhere then fine-tuned),
on the same split, seeds and evaluator.

    uv run python benchmarks/transrec.py --dataset=scientific --epochs=10 --threads=1
    uv run python benchmarks/transrec.py --dataset=tiktok-seq --epochs=10 --threads=1
    uv run python benchmarks/transrec.py --dataset=ml-100k --config_files=properties/ml-100k-seq.yaml \\
        --epochs=10 --pretrained=benchmarks/out/transrec-scientific/TransRec-2020 --threads=1
    # the authors' regime for TransRec only (SASRec keeps RecBole's defaults), frozen text encoder:
    uv run python benchmarks/transrec.py --dataset=scientific --transrec_config_files=properties/paper/transrec.yaml \\
        --transrec_text_finetune_layers=0 --out=benchmarks/out/transrec-scientific-paper

Runs, for each of ``--seeds``: TransRec from scratch and SASRec (RecBole's model and
defaults) (``--models``), and with ``--pretrained=RUN_DIR`` (a finished TransRec run on
another dataset) or ``--pretrain_on=DATASET`` (trained here first, same settings, first seed)
TransRec fine-tuned from that model. Every run trains at most ``--epochs`` epochs with
RecBole's early stopping on the validation metric and is tested with its best validation
checkpoint. A run whose ``summary.json`` exists is reused (rerun to resume). Other
``--key=value`` arguments are config keys for every run (``--sasrec_key=value`` /
``--transrec_key=value`` for one model only); ``--config_files`` apply to every run,
``--transrec_config_files`` to the TransRec runs only (after ``--config_files``). The report
gives each run, the mean ± sd over seeds, and two checks: transfer beats scratch by more
than one sd (test), and TransRec within 5% of SASRec's NDCG@10 (validation and test).
Writes ``report.md`` and ``summaries.json`` to ``benchmarks/out/transrec-<dataset>/``
(git-ignored) or ``--out``.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from common import benchmark_parser, config_file_paths, ensure_dataset, parse_with_overrides, prepare_run, write_report  # benchmarks/common.py


def parse():
    parser = benchmark_parser(__doc__, "transrec", "scientific")
    parser.add_argument("--epochs", type=int, default=10, help="epoch cap of every run")
    parser.add_argument("--seeds", default="2020", help="comma-separated seeds; every run once per seed")
    parser.add_argument("--config_files", default=None, help="space-separated yaml files for every run")
    parser.add_argument("--transrec_config_files", default=None, help="yaml files for the TransRec runs only")
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


def item_table_parameters(summary: dict) -> int:
    """Numbers in the exported item ID table (SASRec's ``item_embedding.weight``; none in TransRec)."""
    from recbole_compress.export import load_artifact

    tensors = load_artifact(Path(summary["output_dir"]) / summary["artifact"])["tensors"]
    return int(sum(v.numel() for k, v in tensors.items() if k.startswith("item_embedding")))


def mean_sd(values):
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def cell(values):
    mean, sd = mean_sd(values)
    return f"{mean:.4f}" if len(values) == 1 else f"{mean:.4f} ± {sd:.4f}"


def checks(groups: dict[str, list[dict]]) -> list[str]:
    """Transfer vs scratch (more than one sd apart), TransRec vs SASRec (within 5%), on valid and test."""
    lines = []
    scratch, tuned, sasrec = groups.get("TransRec (scratch)"), groups.get("TransRec (transfer)"), groups.get("SASRec")
    if scratch and tuned:
        for split in ("valid", "test"):
            (a, sa), (b, sb) = (mean_sd([s[split]["ndcg@10"] for s in g]) for g in (tuned, scratch))
            met = a - b > max(sa, sb)
            lines.append(f"Transfer beats scratch by more than one sd ({split} NDCG@10, {len(tuned)} seed(s)): "
                         f"**{'met' if met else 'not met'}** ({a:.4f} ± {sa:.4f} vs {b:.4f} ± {sb:.4f}, "
                         f"difference {a - b:+.4f}).")
    if sasrec:
        for name in ("TransRec (scratch)", "TransRec (transfer)"):
            if not groups.get(name):
                continue
            ours = {split: mean_sd([s[split]["ndcg@10"] for s in groups[name]])[0] for split in ("valid", "test")}
            theirs = {split: mean_sd([s[split]["ndcg@10"] for s in sasrec])[0] for split in ("valid", "test")}
            if not all(theirs.values()):
                continue  # SASRec scored nothing: no ratio
            ratios = {split: ours[split] / theirs[split] for split in ours}
            met = all(r >= 0.95 for r in ratios.values())
            lines.append(f"{name} within 5% of SASRec's NDCG@10 on validation and test: **{'met' if met else 'not met'}** "
                         f"(valid {ratios['valid']:.3f}x, test {ratios['test']:.3f}x).")
    return lines


def main():
    args, overrides = parse()
    pretrained = args.pretrained and str(Path(args.pretrained).resolve())  # before prepare_run changes directory
    out, data_path = prepare_run(args, "transrec")
    import recbole_compress  # noqa: F401

    per_model = split_overrides(overrides)
    seeds = [int(s) for s in args.seeds.split(",")]
    base = {"data_path": str(data_path), "show_progress": False, "epochs": args.epochs}
    shared_files, transrec_files = config_file_paths(args.config_files), config_file_paths(args.transrec_config_files)
    config_for = {"SASRec": shared_files or None, "TransRec": (shared_files + transrec_files) or None}
    groups: dict[str, list[dict]] = {}
    summaries = {}
    if args.pretrain_on:
        ensure_dataset(args.pretrain_on, data_path)
        source = run("TransRec", args.pretrain_on, {**base, **per_model["TransRec"], "seed": seeds[0]},
                     (config_file_paths(args.pretrain_config_files) + transrec_files) or None, out / f"TransRec-pretrain-{args.pretrain_on}")
        summaries[f"pretrain-{args.pretrain_on}"] = source
        pretrained = str(out / f"TransRec-pretrain-{args.pretrain_on}")
    if pretrained and not (Path(pretrained) / "model.pt").is_file():
        raise SystemExit(f"error: --pretrained={pretrained} holds no model.pt; finish the pre-training run first")
    for seed in seeds:
        for model in [m for m in args.models.split(",") if m]:  # --models= : the transfer run alone
            summary = run(model, args.dataset, {**base, **per_model[model], "seed": seed}, config_for[model],
                          out / f"{model}-{seed}")
            groups.setdefault("TransRec (scratch)" if model == "TransRec" else model, []).append(summary)
            summaries[f"{model}-{seed}"] = summary
        if pretrained:
            summary = run("TransRec", args.dataset, {**base, **per_model["TransRec"], "seed": seed, "pretrained": pretrained},
                          config_for["TransRec"], out / f"TransRec-finetuned-{seed}")
            groups.setdefault("TransRec (transfer)", []).append(summary)
            summaries[f"TransRec-finetuned-{seed}"] = summary

    source_name = json.loads((Path(pretrained) / "summary.json").read_text())["dataset"] if pretrained else None
    lines = [f"# SASRec vs TransRec on {args.dataset}", "",
             f"seeds {seeds}; settings `{json.dumps({**base, **overrides})}`; config files `{args.config_files}`, "
             f"TransRec only `{args.transrec_config_files}`" + (f"; pre-trained: `{pretrained}` (on {source_name})" if pretrained else ""),
             "", "| model | seed | epochs | valid NDCG@10 | test NDCG@10 | test HR@10 | trainable params "
             "| item-ID params | model bytes | epoch (s) |", "|" + "---|" * 10]
    for name, runs in groups.items():
        for s in runs:
            item_params = f"0 (content encoder {s['transrec']['item_encoder_parameters']:,})" if "transrec" in s else \
                f"{item_table_parameters(s):,}"
            lines.append(
                f"| {name} | {s.get('seed', '')} | {s['epochs']} | {s['valid']['ndcg@10']:.4f} | {s['test']['ndcg@10']:.4f} "
                f"| {s['test']['hit@10']:.4f} | {s['trainable_parameters']:,} | {item_params} | {s['model_bytes']:,} "
                f"| {s['epoch_time_s']:.1f} |")
    if any(len(r) > 1 for r in groups.values()):
        lines += ["", "| model | seeds | valid NDCG@10 | test NDCG@10 | test HR@10 |", "|---|---|---|---|---|"]
        for name, runs in groups.items():
            lines.append(f"| {name} | {len(runs)} | {cell([s['valid']['ndcg@10'] for s in runs])} "
                         f"| {cell([s['test']['ndcg@10'] for s in runs])} | {cell([s['test']['hit@10'] for s in runs])} |")
    lines += [""] + checks(groups)
    transrec = (groups.get("TransRec (scratch)") or groups.get("TransRec (transfer)") or [None])[0]
    if transrec:
        t = transrec["transrec"]
        lines += ["", f"TransRec keeps no per-item parameter: {t['items']:,} items, SASRec's item table here "
                  f"= {t['sasrec_item_table_parameters']:,} parameters; TransRec's trainable parameters "
                  f"({transrec['trainable_parameters']:,}) are the same for any catalogue. Text encoder "
                  f"(shared; 0 = no text): {t['text_encoder_parameters']:,} parameters, of which trained "
                  f"{t.get('text_encoder_trainable_parameters', 0):,}; text pooling {t.get('text_pooling')} "
                  f"({t.get('text_pooling_parameters', 0):,} parameters); content cache "
                  f"{t['content_cache_bytes']:,} bytes (data, grows with the catalogue)."]
    write_report(out, "\n".join(lines) + "\n", summaries)


if __name__ == "__main__":
    main()
