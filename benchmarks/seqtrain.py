"""All-position training vs RecBole's prefix training of the same sequential model.

    # epoch time, interleaved in one process (one epoch of each variant in turn)
    uv run python benchmarks/seqtrain.py epoch-time --dataset=beauty --epochs=3 --threads=1
    # each variant trained to early stopping: time to the best valid NDCG@10, test NDCG@10
    uv run python benchmarks/seqtrain.py to-best --dataset=beauty --threads=1 --prefix_epochs=30 --stopping_step=10

Variants (``--variants``, comma-separated ``mode:loss[:key=value...]``): ``prefix:CE`` is
RecBole's own training (one sample per prefix row, full softmax), ``all_positions:CE`` the
same loss at every position of one window per user sequence, ``all_positions:BCE`` one
sampled negative per position (the SASRec/RecJPQ regime); ``key=value`` parts are config
keys of that variant alone (``all_positions:CE:window_overlap=40``). Model, data, split, seed and
evaluator are the same; the all-position variants use ``--all_positions_batch_size``
sequences per batch (RecBole's ``train_batch_size`` counts prefix rows). Other
``--key=value`` arguments are config keys for every variant (e.g. ``--hidden_size=128``).
Outputs: ``benchmarks/out/seqtrain-<dataset>/`` (report.md, summaries.json, curves).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from common import benchmark_parser, config_overrides, prepare_run, write_report  # benchmarks/common.py
from runs import best_point, plot_curves, run_or_reuse, total_time  # benchmarks/runs.py

# leave-one-out by time, full ranking, NDCG/Hit@10: what beauty.yaml sets, for any dataset
SEQUENTIAL_EVAL = {
    "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"},
    "metrics": ["NDCG", "Hit"],
    "topk": [10],
    "valid_metric": "ndcg@10",
    "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
}


def parse():
    parser = benchmark_parser(__doc__, "seqtrain", "ml-100k")
    parser.add_argument("what", choices=("epoch-time", "to-best"))
    parser.add_argument("--model", default="SASRec")
    parser.add_argument("--variants", default="prefix:CE,all_positions:CE,all_positions:BCE")
    parser.add_argument("--epochs", type=int, default=3, help="epoch-time: epochs of each variant")
    parser.add_argument("--prefix_epochs", type=int, default=30, help="to-best: epoch cap of prefix training")
    parser.add_argument("--all_positions_epochs", type=int, default=200, help="to-best: epoch cap of all-position training")
    parser.add_argument("--stopping_step", type=int, default=10, help="to-best: patience, in validations")
    parser.add_argument("--all_positions_batch_size", type=int, default=128)
    args, extra = parser.parse_known_args()
    return args, config_overrides(parser, extra)


def variant_settings(args, base: dict, variant: str) -> tuple[str, dict]:
    mode, loss, *extra = variant.split(":")
    settings = {**base, "train_mode": mode, "loss_type": loss}
    if mode == "all_positions":
        settings["train_batch_size"] = args.all_positions_batch_size
    own = config_overrides(argparse.ArgumentParser(), [f"--{part}" for part in extra])
    return " ".join([mode, loss, *extra]), {**settings, **own}


def epoch_time(args, base, out) -> tuple[str, dict]:
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import init_seed

    from recbole_compress import Config, get_model, get_trainer

    runs, train = {}, None
    for variant in args.variants.split(","):
        label, settings = variant_settings(args, base, variant)
        config = Config(model=args.model, dataset=args.dataset, config_dict={**settings, "state": "WARNING",
                                                                                "output_dir": str(out / "epoch-time")})
        init_seed(config["seed"], config["reproducibility"])
        if train is None:  # one split for every variant (the data do not depend on the mode)
            train, _, _ = data_preparation(config, create_dataset(config))
        model = get_model(args.model)(config, train._dataset).to(config["device"])
        runs[label] = (get_trainer(config["MODEL_TYPE"], args.model)(config, model), [])
    warm = {}
    for label, (trainer, _) in runs.items():  # one-off set-up outside the timing: the windows of the training split
        if getattr(trainer, "all_positions", None) is not None:
            started = time.perf_counter()
            trainer.all_positions_loader(train)
            warm[label] = time.perf_counter() - started
    for epoch in range(args.epochs):
        for label, (trainer, times) in runs.items():
            started = time.perf_counter()
            trainer._train_epoch(train, epoch)
            times.append(time.perf_counter() - started)
            print(f"epoch {epoch} {label}: {times[-1]:.2f}s", flush=True)
    medians = {label: statistics.median(times) for label, (_, times) in runs.items()}
    baseline = medians[next(iter(medians))]
    lines = [f"# Epoch time: {args.model} on {args.dataset}, interleaved ({args.epochs} epochs each)", "",
             f"settings: `{json.dumps(base)}`; all-position batches: {args.all_positions_batch_size} sequences", "",
             "| dataset | training | batches / epoch | median epoch (s) | speed-up vs first row | one-off set-up (s) |",
             "|---|---|---|---|---|---|"]
    for label, (trainer, _) in runs.items():
        batches = len(trainer.all_positions_loader(train)) if getattr(trainer, "all_positions", None) else len(train)
        lines.append(f"| {args.dataset} | {label} | {batches} | {medians[label]:.2f} | {baseline / medians[label]:.1f}x | "
                     f"{warm.get(label, 0):.2f} |")
    return "\n".join(lines) + "\n", {label: times for label, (_, times) in runs.items()}


def time_to_reach(summary: dict, score: float) -> float | None:
    """Training + validation seconds until the first validation at or above ``score``."""
    for row in summary.get("valid_curve") or []:
        if row["valid_score"] >= score:
            return row["train_time_s"] + row["valid_time_s"]
    return None


def to_best(args, base, out) -> tuple[str, dict]:
    summaries = {}
    for variant in args.variants.split(","):
        label, settings = variant_settings(args, base, variant)
        cap = args.prefix_epochs if settings["train_mode"] == "prefix" else args.all_positions_epochs
        settings.update({"epochs": cap, "stopping_step": args.stopping_step})
        summaries[label] = run_or_reuse(args.model, args.dataset, settings, out / variant.replace(":", "-"))
    first = next(iter(summaries.values()))
    first_best = best_point(first)
    base_time, target = first_best["time_s"], first_best["valid_score"]
    lines = [f"# Time to the best validation: {args.model} on {args.dataset}", "",
             f"settings: `{json.dumps(base)}`; epochs cap prefix {args.prefix_epochs}, all positions "
             f"{args.all_positions_epochs}; patience {args.stopping_step} validations", "",
             "| training | epochs run | best epoch | time to best (s) | speed-up | time to the first row's best "
             f"valid ({target:.4f}) (s) | total (s) | valid NDCG@10 | test NDCG@10 | test HR@10 | epoch (s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, s in summaries.items():
        best, reached = best_point(s), time_to_reach(s, target)
        lines.append(
            f"| {label} | {s['epochs']} | {best['epochs']} | {best['time_s']:.0f} | {base_time / best['time_s']:.1f}x | "
            f"{'never' if reached is None else f'{reached:.0f}'} | "
            f"{total_time(s):.0f} | {s['valid']['ndcg@10']:.4f} | {s['test']['ndcg@10']:.4f} | {s['test']['hit@10']:.4f} | "
            f"{s['epoch_time_s']:.1f} |"
        )
    title = f"{args.model} on {args.dataset}: prefix vs all-position training"
    for against in ("epochs", "time"):
        path = plot_curves(summaries, out / f"curves-{against}.png", title, against=against)
        lines += ["", f"learning curves: {path.name}"]
    return "\n".join(lines) + "\n", summaries


def main():
    args, overrides = parse()
    command = "uv run python benchmarks/seqtrain.py " + " ".join(sys.argv[1:])
    out, data_path = prepare_run(args, "seqtrain")  # clears sys.argv
    import recbole_compress  # noqa: F401  (compatibility patches)

    base = {**SEQUENTIAL_EVAL, "data_path": str(data_path), "show_progress": False, **overrides}
    text, data = (epoch_time if args.what == "epoch-time" else to_best)(args, base, out)
    text += f"\nCPU threads: {torch.get_num_threads()}; command: `{command}`\n"
    (out / args.what).mkdir(exist_ok=True)
    write_report(out / args.what, text, data)


if __name__ == "__main__":
    main()
