"""Per-epoch training time of a lottery ticket vs its dense model, interleaved in one run.

    uv run python benchmarks/lth_epoch_time.py --dataset=tiktok --model=LightGCN --epochs=10 --remaining=0.2

Builds the dense RecBole model and ``<model>_LTH`` (pruned to ``--remaining`` of
its embedding weights) on the same data, then alternates one training epoch of
each, so that background load affects both alike. Prints median epoch times and
their ratio (ticket / dense).
"""

from __future__ import annotations

import statistics

from common import REPO, benchmark_parser, prepare_run  # benchmarks/common.py


def main():
    parser = benchmark_parser(__doc__, "lth-epoch-time", "ml-100k")
    parser.set_defaults(out=str(REPO / "benchmarks" / "out" / "lth-epoch-time"))  # one folder for every dataset
    parser.add_argument("--model", default="LightGCN")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--remaining", type=float, default=0.2)
    args = parser.parse_args()
    out, data_path = prepare_run(args, "lth-epoch-time")

    import time

    from recbole.data import create_dataset, data_preparation
    from recbole.utils import init_seed

    from recbole_compress import Config, get_model, get_trainer
    from recbole_compress.trainers.lth import mask_fraction, prune

    settings = {"data_path": str(data_path), "show_progress": False, "state": "WARNING"}
    runs = {}
    for name in (args.model, f"{args.model}_LTH"):
        config = Config(model=name, dataset=args.dataset, config_dict={**settings, "output_dir": str(out / name)})
        init_seed(config["seed"], config["reproducibility"])
        dataset = create_dataset(config)
        train, _, _ = data_preparation(config, dataset)
        model = get_model(name)(config, train._dataset)
        if name.endswith("_LTH"):
            prune(model, 1.0 - args.remaining)
        trainer = get_trainer(config["MODEL_TYPE"], name)(config, model)
        runs[name] = (trainer, train, [])
    alive, total = mask_fraction(runs[f"{args.model}_LTH"][0].model)
    for epoch in range(args.epochs):
        for name, (trainer, train, times) in runs.items():
            started = time.perf_counter()
            trainer._train_epoch(train, epoch)
            times.append(time.perf_counter() - started)
    dense = statistics.median(runs[args.model][2])
    ticket = statistics.median(runs[f"{args.model}_LTH"][2])
    print(f"| dataset | model | epochs | dense epoch (s) | ticket epoch (s), {alive / total:.0%} remaining | ratio |")
    print("|---|---|---|---|---|---|")
    print(f"| {args.dataset} | {args.model} | {args.epochs} | {dense:.3f} | {ticket:.3f} | {ticket / dense:.3f}x |")


if __name__ == "__main__":
    main()
