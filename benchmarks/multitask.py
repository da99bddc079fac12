"""The multi-task CTR/CVR models side by side: SharedBottom, ESMM, MMoE, LT4Rec.

    uv run python benchmarks/multitask.py [--dataset=ml-100k-funnel] [--seeds=2020,2021,2022] [--key=value ...]
    uv run python benchmarks/multitask.py --config_files=properties/paper/lt4rec.yaml \
        --seeds=2020,2021,2022,2023,2024 --out=benchmarks/out/multitask-paper     # the authors' regime

Every model trains on the same data and split (the converter's fixed split), with the
same seeds, settings and evaluator; selection on validation (``valid_metric``), figures
on test. Prints the table (mean and standard deviation over seeds) of CTR AUC, CTR
LogLoss, CVR AUC (clicked exposures), CTCVR AUC, the shared-MLP weights used and all
parameters used, and checks the goal: LT4Rec's mean test CVR AUC above each baseline's
(SharedBottom, ESMM, MMoE) by more than one standard deviation (the larger of the two
models' sds over seeds), with <= 50% of the shared MLP's weights. ``--config_files``
(space-separated yaml files, e.g. the authors' regime properties/paper/lt4rec.yaml) apply to
every model. The default dataset is the ml-100k
funnel, DERIVED from ml-100k (exposures = interactions + sampled non-interactions,
click = interacted, conversion = rating >= 4). Extra ``--key=value`` arguments are config
keys for every model. Outputs (``runs.csv``, ``report.md``, ``multitask.png``, one
folder per run with its summary.json) go to ``benchmarks/out/multitask-<dataset>/`` (or ``--out``).
A run whose folder already holds a summary.json is not trained again (an interrupted
benchmark resumes; seeds run in separate processes share one table when collected).
"""

from __future__ import annotations

import csv
import json
import statistics

from common import benchmark_parser, config_file_paths, parse_with_overrides, prepare_run, write_report  # benchmarks/common.py

METRICS = ("ctr_auc", "ctr_logloss", "cvr_auc", "ctcvr_auc")


def parse():
    parser = benchmark_parser(__doc__, "multitask", "ml-100k-funnel")
    parser.add_argument("--models", default="SharedBottom,ESMM,MMoE,LT4Rec")
    parser.add_argument("--seeds", default="2020,2021,2022")
    parser.add_argument("--config_files", default=None, help="space-separated yaml files for every model")
    return parse_with_overrides(parser)


def goal(rows, models) -> str | None:
    """LT4Rec's mean test CVR AUC above every baseline's by more than one sd, with <= 50% of the MLP."""
    baselines = [m for m in ("SharedBottom", "ESMM", "MMoE") if m in models]
    if "LT4Rec" not in models or not baselines:
        return None
    stats = {m: mean_sd([r["cvr_auc"] for r in rows if r["model"] == m]) for m in ["LT4Rec", *baselines]}
    valid = {m: mean_sd([r["valid_cvr_auc"] for r in rows if r["model"] == m])[0] for m in ["LT4Rec", *baselines]}
    used = max(r["mlp_used_fraction"] for r in rows if r["model"] == "LT4Rec")
    mean, sd = stats["LT4Rec"]
    margins = {m: (mean - stats[m][0], max(sd, stats[m][1])) for m in baselines}
    met = all(diff > bar for diff, bar in margins.values()) and used <= 0.5
    detail = "; ".join(f"vs {m}: {diff:+.4f} (one sd = {bar:.4f}; valid {valid['LT4Rec'] - valid[m]:+.4f})"
                       for m, (diff, bar) in margins.items())
    return (f"Goal (LT4Rec's test CVR AUC above SharedBottom's, ESMM's and MMoE's by more than one sd, with <= 50% "
            f"of the shared MLP's weights): **{'met' if met else 'not met'}**. LT4Rec {mean:.4f} ± {sd:.4f}; {detail}; "
            f"LT4Rec uses at most {used:.1%} of the MLP's weights.")


def mean_sd(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def cell(values, digits=4):
    mean, sd = mean_sd(values)
    return "n/a" if mean is None else f"{mean:.{digits}f} ± {sd:.{digits}f}"


def plot(rows, models, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for model in models:
        own = [r for r in rows if r["model"] == model]
        x, xs = mean_sd([r["mlp_weights_used"] / 1000 for r in own])
        y, ys = mean_sd([r["cvr_auc"] for r in own])
        ax.errorbar([x], [y], xerr=[xs], yerr=[ys], fmt="o", capsize=3, label=model)
    ax.set_xlabel("MLP weights used (thousands)")
    ax.set_ylabel("test CVR AUC (clicked exposures)")
    ax.set_title("multi-task models: CVR AUC vs MLP weights (mean ± sd over seeds)", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main():
    args, overrides = parse()
    config_files = config_file_paths(args.config_files) or None
    out, data_path = prepare_run(args, "multitask")
    import recbole_compress

    models = args.models.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    settings = {"data_path": str(data_path), "show_progress": False, **overrides}
    rows, summaries = [], {}
    for seed in seeds:
        for model in models:
            done = out / f"{model}-{seed}" / "summary.json"
            if done.is_file():  # finished earlier: collect, do not train again
                summary = json.loads(done.read_text())
            else:
                summary = recbole_compress.run_recbole_compress(
                    model, args.dataset, config_file_list=config_files,
                    config_dict={**settings, "seed": seed, "output_dir": str(out / f"{model}-{seed}")},
                )["summary"]
            multitask = summary["multitask"]
            row = {"model": model, "seed": seed, **{m: summary["test"][m] for m in METRICS},
                   **{f"valid_{m}": summary["valid"][m] for m in METRICS},
                   "mlp_weights": multitask["mlp_weights"], "mlp_weights_used": multitask["mlp_weights_used"],
                   "mlp_used_fraction": multitask["mlp_used_fraction"],
                   "mlp_weights_shared": multitask.get("mlp_weights_shared"),
                   "parameters_used": summary["nonzero_parameters"], "model_bytes": summary["model_bytes"],
                   "epochs": summary["epochs"], "wall_time_s": summary["wall_time_s"]}
            rows.append(row)
            summaries[f"{model}-{seed}"] = summary
            print(f"[{model} seed {seed}] test " + ", ".join(f"{m} {row[m]:.4f}" for m in METRICS)
                  + f"; MLP weights used {row['mlp_weights_used']} ({row['mlp_used_fraction']:.1%}); {row['wall_time_s']} s",
                  flush=True)
    with open(out / "runs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, models, out / "multitask.png")

    lines = [f"# Multi-task CTR/CVR on {args.dataset}", "",
             f"seeds {seeds}; config files `{args.config_files}`; settings `{json.dumps(settings)}`; mean ± sd over "
             "seeds; test split at the epoch chosen on validation (valid CVR AUC alongside).", "",
             "| model | CTR AUC | CTR LogLoss | CVR AUC | CTCVR AUC | valid CVR AUC | MLP weights used | MLP used "
             "| parameters used | epochs | time (s) |",
             "|" + "---|" * 11]
    for model in models:
        own = [r for r in rows if r["model"] == model]
        lines.append(
            f"| {model} | " + " | ".join(cell([r[m] for r in own]) for m in METRICS)
            + f" | {cell([r['valid_cvr_auc'] for r in own])}"
            + f" | {cell([r['mlp_weights_used'] for r in own], 0)} | {cell([r['mlp_used_fraction'] * 100 for r in own], 1)}%"
            + f" | {cell([r['parameters_used'] for r in own], 0)} | {cell([r['epochs'] for r in own], 1)}"
            + f" | {cell([r['wall_time_s'] for r in own], 0)} |"
        )
    verdict = goal(rows, models)
    if verdict:
        lines += ["", verdict]
    lines += ["", "Per run: runs.csv; plot: multitask.png."]
    write_report(out, "\n".join(lines) + "\n", summaries)


if __name__ == "__main__":
    main()
