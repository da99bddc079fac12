"""Per-epoch training time of CERP (both stages), PEP and QR vs the dense model,
interleaved in one run.

    uv run python benchmarks/cerp_epoch_time.py --dataset=tiktok --model=LightGCN --epochs=10 --budget=0.05 --threads=1

Builds the dense RecBole model and ``<model>_CERP`` / ``_PEP`` / ``_QR`` at
``--budget`` on the same data, then alternates one training epoch of each, so that
background load affects all alike: CERP and PEP in stage 1 (soft thresholds on,
CERP's regulariser included) and in stage 2 (mask fixed at the budget, thresholds
off). Prints median epoch times and their ratio to dense.
"""

from __future__ import annotations

import statistics
import time

from common import REPO, benchmark_parser, prepare_run  # benchmarks/common.py


def main():
    parser = benchmark_parser(__doc__, "cerp-epoch-time", "ml-100k")
    parser.set_defaults(out=str(REPO / "benchmarks" / "out" / "cerp-epoch-time"))  # one folder for every dataset
    parser.add_argument("--model", default="LightGCN")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--budget", type=float, default=0.05, help="memory_budget (fraction of the dense tables)")
    args = parser.parse_args()
    out, data_path = prepare_run(args, "cerp-epoch-time")

    from recbole.data import create_dataset, data_preparation
    from recbole.utils import init_seed

    from recbole_compress import Config, UserError, get_model, get_trainer
    from recbole_compress.trainers.cerp import _BudgetReached

    settings = {"data_path": str(data_path), "show_progress": False, "state": "WARNING",
                "memory_budget": args.budget, "threshold_pace": 0.0}  # pace 0: stage 1 never ends here
    variants = [(args.model, None), (f"{args.model}_CERP", 1), (f"{args.model}_CERP", 2),
                (f"{args.model}_PEP", 1), (f"{args.model}_PEP", 2), (f"{args.model}_QR", None)]
    runs = {}
    train = None
    for name, stage in variants:
        config = Config(model=name, dataset=args.dataset, config_dict={**settings, "output_dir": str(out / name)})
        init_seed(config["seed"], config["reproducibility"])
        if train is None:
            train, _, _ = data_preparation(config, create_dataset(config))
        try:
            model = get_model(name)(config, train._dataset)
        except UserError as err:  # QR cannot fit every budget
            print(f"skipped {name}: {err}")
            continue
        if stage == 2:
            for module in model.modules():
                if hasattr(module, "fix_mask"):
                    module.fix_mask(module.budget)
        trainer = get_trainer(config["MODEL_TYPE"], name)(config, model)
        if stage is not None:
            trainer._stage = stage
            trainer.optimizer = trainer._build_optimizer()
        label = name if stage is None else f"{name} stage {stage}"
        runs[label] = (trainer, [])
    for epoch in range(args.epochs):
        for label, (trainer, times) in runs.items():
            started = time.perf_counter()
            try:
                trainer._train_epoch(train, epoch)
            except _BudgetReached:
                pass
            times.append(time.perf_counter() - started)
    dense = statistics.median(runs[args.model][1])
    print("| dataset | model | budget | epochs | median epoch (s) | ratio to dense |")
    print("|---|---|---|---|---|---|")
    for label, (_, times) in runs.items():
        median = statistics.median(times)
        print(f"| {args.dataset} | {label} | {args.budget} | {args.epochs} | {median:.3f} | {median / dense:.2f}x |")


if __name__ == "__main__":
    main()
