"""Command line: ``python run_recbole_compress.py --model=M --dataset=D [--config_files="a.yaml b.yaml"] [--key=value ...]``.

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
    )
    parser.add_argument("--model", "-m", default=None, help="model name, e.g. LightGCN_LTH, BPR, SASRec_LTH")
    parser.add_argument("--dataset", "-d", default=None, help="dataset name, e.g. ml-100k, yelp2018")
    parser.add_argument("--config_files", default=None, help="space-separated config (yaml) files")
    parser.add_argument("--list-models", action="store_true", help="list recbole_compress models and methods")
    return parser.parse_known_args(argv)


def main(argv=None) -> int:
    args, _ = parse_args(argv)
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
