"""Command line: ``python run_recbole_compress.py --model=M --dataset=D [--config_files="a.yaml b.yaml"] [--key=value ...]``.

With ``--tune=SEARCH.yaml`` it runs a Ray Tune search instead (:mod:`recbole_compress.tune`);
the other ``--key=value`` arguments then go to every trial.

Like RecBole's ``run_recbole.py``: any ``--key=value`` overrides a config key.
Bad input ends with one ``error: ...`` line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="run_recbole_compress.py",
        description="Train, compress and evaluate a RecBole model. Any --key=value sets a RecBole config key.",
        allow_abbrev=False,  # a RecBole key such as --num=3 must never be taken for --num_samples
    )
    parser.add_argument("--model", "-m", default=None, help="model name, e.g. LightGCN_LTH, BPR, SASRec_LTH")
    parser.add_argument("--dataset", "-d", default=None, help="dataset name, e.g. ml-100k, yelp2018")
    parser.add_argument("--config_files", default=None, help="space-separated config (yaml) files")
    parser.add_argument("--list-models", action="store_true", help="list recbole_compress models and methods")
    search = parser.add_argument_group("Ray Tune search (with --tune; each overrides the search file's search: block)")
    search.add_argument("--tune", default=None, help="search-space yaml, e.g. properties/tune/lth.yaml")
    search.add_argument("--num_samples", type=int, default=None, help="trials to run")
    search.add_argument("--scheduler", default=None, help="asha (stops trailing trials early) or fifo")
    search.add_argument("--search_alg", default=None, help="optuna or random")
    search.add_argument("--cpu", type=float, default=None, help="CPUs per trial")
    search.add_argument("--gpu", type=float, default=None, help="GPUs per trial; 0.25 = four trials share one GPU")
    search.add_argument("--max_concurrent", type=int, default=None, help="trials at once (0: as resources allow)")
    search.add_argument("--ray-address", "--ray_address", dest="ray_address", default=None, help="join a running Ray cluster (auto or host:port)")
    search.add_argument("--storage_path", default=None, help="where experiments are kept (default saved/tune)")
    search.add_argument("--name", default=None, help="experiment folder name (default <model>-<dataset>-tune)")
    search.add_argument("--resume", action="store_true", help="continue the interrupted search in storage_path/name")
    return parser.parse_known_args(argv)


_SEARCH_FLAGS = ("num_samples", "scheduler", "search_alg", "cpu", "gpu", "max_concurrent", "ray_address", "storage_path", "name")


def main(argv=None) -> int:
    args, extra = parse_args(argv)
    from recbole_compress.errors import UserError

    try:
        import recbole_compress
        from recbole_compress.registry import compression_methods, registered_models

        if args.list_models:
            print("models:", " ".join(registered_models()))
            print("methods (use <RecBoleModel>_<METHOD>):", " ".join(sorted(compression_methods())))
            return 0
        if not args.model or not args.dataset:
            raise UserError("both --model and --dataset are required, e.g. --model=LightGCN_LTH --dataset=ml-100k")
        used = [f for f in _SEARCH_FLAGS if getattr(args, f) is not None] + (["resume"] if args.resume else [])
        if args.tune is None and used:
            raise UserError(f"--{used[0]} only applies to a search; add --tune=properties/tune/lth.yaml (or drop it)")
        if args.tune is not None:
            from recbole_compress.tune import main as tune_main  # imports ray only here

            return tune_main(args, extra)
        config_files = args.config_files.split() if args.config_files else None
        for path in config_files or []:
            import os

            if not os.path.isfile(path):
                raise UserError(f"config file '{path}' not found; give existing yaml files to --config_files")
        result = recbole_compress.run_recbole_compress(
            model=args.model, dataset=args.dataset, config_file_list=config_files
        )
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"test: {dict(result['test_result'])}")
    print(f"summary: {result['output_dir']}/summary.json")
    return 0
