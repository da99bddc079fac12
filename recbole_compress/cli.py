"""The ``recbole-compress`` command (also ``python -m recbole_compress``).

    recbole-compress run --model=LightGCN_LTH --dataset=ml-100k [--config_files=...] [--key=value ...]
    recbole-compress tune properties/tune/lth.yaml --model=LightGCN_LTH --dataset=ml-100k
    recbole-compress compare --dataset=ml-100k --backbone=LightGCN --budgets=0.2,0.05
    recbole-compress convert FORMAT SRC DST
    recbole-compress recommend RUN_DIR --users=196,186 --k=10
    recbole-compress models

Every ``--key=value`` that is not an option of the command sets a config key, parsed one
way everywhere (:mod:`recbole_compress.overrides`). Bad input ends with one
``error: ...`` line on stderr and exit status 2. Only argparse and the standard library
load before the arguments are parsed, so ``--help`` and ``--version`` answer at once.
"""

from __future__ import annotations

import argparse
import sys

from recbole_compress import __version__

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, naming the help to read."""

    def error(self, message):  # argparse API
        from recbole_compress.errors import UserError

        raise UserError(f"{' '.join(message.split())} (see '{self.prog} --help')")


def _config_arguments(parser, model_help: str = "model, e.g. LightGCN_LTH, BPR, SASRec_JPQ") -> None:
    parser.add_argument("--model", "-m", default=None, help=model_help)
    parser.add_argument("--dataset", "-d", default=None, help="dataset name, e.g. ml-100k (a folder of RecBole atomic files)")
    parser.add_argument("--config_files", default=None, help="space-separated yaml files; properties/... finds the packaged ones")
    parser.add_argument("--strict", action="store_true", help="an unknown config key is an error, not a warning")


def configure_run(parser) -> None:
    _config_arguments(parser)


def configure_tune(parser) -> None:
    parser.add_argument("search_file", metavar="SEARCH_FILE", help="search yaml, e.g. properties/tune/lth.yaml")
    _config_arguments(parser)
    search_flags(parser)


def configure_compare(parser) -> None:
    parser.add_argument("--dataset", "-d", required=True, help="dataset name, e.g. ml-100k")
    parser.add_argument("--backbone", required=True, help="a RecBole model with ID tables, e.g. LightGCN, BPR, SASRec")
    parser.add_argument("--budgets", default="0.5,0.2,0.05,0.02", help="fractions of the dense tables' bytes, e.g. 0.2,0.05")
    parser.add_argument("--methods", default=None, help="comma-separated subset of LTH,PEP,CERP,QR,QR+LTH,JPQ")
    parser.add_argument("--out", default=None, help="output folder (default saved/compare-<dataset>-<backbone>)")
    parser.add_argument("--config_files", default=None, help="space-separated yaml files; properties/... finds the packaged ones")
    parser.add_argument("--strict", action="store_true", help="an unknown config key is an error, not a warning")
    parser.add_argument("--report", action="store_true",
                        help="train nothing: write the table, plot and Pareto front from the finished cells")
    parser.add_argument("--seeds", default=None,
                        help="run every cell once per seed, e.g. 2020,2021,2022: the table reports mean +- sd")
    parser.add_argument("--tune-dense", "--tune_dense", dest="tune_dense", nargs="?", const="", default=None,
                        metavar="GRID", help="first tune the dense backbone on validation over a grid (default: "
                        "learning rate x its L2 key, 3 x 3; or e.g. 'learning_rate=1e-3,5e-3;reg_weight=1e-5,1e-4'); "
                        "every cell then trains with the selected point")
    cells = parser.add_argument_group("where the cells run (Ray tasks; the dense cells first, then the rest in parallel)")
    cells.add_argument("--ray-address", "--ray_address", dest="ray_address", default=None,
                       help="join a running Ray cluster (auto or host:port); default: a local Ray")
    cells.add_argument("--cpu", type=float, default=None, help="CPUs per cell (default 1; also its torch threads)")
    cells.add_argument("--gpu", type=float, default=None, help="GPUs per cell; 0.25 = four cells share one GPU")
    cells.add_argument("--max-concurrent", "--max_concurrent", dest="max_concurrent", type=int, default=None,
                       help="cells at once (default: as the resources allow)")
    cells.add_argument("--local", action="store_true",
                       help="no Ray: the cells one after another in this process (also the path without Ray installed)")


def configure_convert(parser) -> None:
    from recbole_compress.data.cli import configure

    configure(parser)


def configure_models(parser) -> None:
    pass


def configure_recommend(parser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run's output folder (or its model.pt); the dataset is not needed")
    parser.add_argument("--users", default=None, help="comma-separated user tokens (general models), e.g. 196,186")
    parser.add_argument("--history", action="append", default=None,
                        help="comma-separated item tokens, oldest first (sequential models); repeat for several histories")
    parser.add_argument("--k", type=int, default=10, help="items per user or history (default 10)")
    parser.add_argument("--exclude_seen", action=argparse.BooleanOptionalAction,
                        default=None, help="leave out each user's training items (default for general models) or the "
                        "history's items (sequential models; off by default, as RecBole ranks)")


def search_flags(parser) -> None:
    search = parser.add_argument_group("search (each overrides the search file's search: block)")
    search.add_argument("--num_samples", type=int, default=None, help="trials to run")
    search.add_argument("--objective", default=None,
                        help="pareto (validation metric up, bytes down), budget (best under --budget) or validation")
    search.add_argument("--budget", type=float, default=None,
                        help="objective budget: exported model at most this fraction of the dense model's bytes, e.g. 0.25")
    search.add_argument("--scheduler", default=None, help="asha (stops trailing trials early) or fifo")
    search.add_argument("--search_alg", default=None, help="optuna or random")
    search.add_argument("--cpu", type=float, default=None, help="CPUs per trial")
    search.add_argument("--gpu", type=float, default=None, help="GPUs per trial; 0.25 = four trials share one GPU")
    search.add_argument("--max_concurrent", "--max-concurrent", dest="max_concurrent", type=int, default=None, help="trials at once (0: as resources allow)")
    search.add_argument("--ray-address", "--ray_address", dest="ray_address", default=None,
                        help="join a running Ray cluster (auto or host:port)")
    search.add_argument("--storage_path", default=None, help="where experiments are kept (default saved/tune)")
    search.add_argument("--name", default=None, help="experiment folder name (default <model>-<dataset>-tune)")
    search.add_argument("--resume", action="store_true", help="continue the interrupted search in storage_path/name")


# -- the commands -------------------------------------------------------------------------------

def _require_model_and_dataset(args) -> None:
    from recbole_compress.errors import UserError

    if not args.model or not args.dataset:
        raise UserError("both --model and --dataset are required, e.g. --model=LightGCN_LTH --dataset=ml-100k")


def _config_files(args) -> list[str] | None:
    from recbole_compress.config import resolve_property_file

    return [resolve_property_file(f) for f in args.config_files.split()] if args.config_files else None


SEARCH_FLAGS = ("num_samples", "scheduler", "search_alg", "cpu", "gpu", "max_concurrent", "ray_address",
                "ray-address", "storage_path", "name", "resume")


def cmd_run(args, overrides) -> int:
    from recbole_compress.errors import UserError

    flag = next((k for k in overrides if k in SEARCH_FLAGS), None)
    if flag is not None:
        raise UserError(f"--{flag} only applies to a search: recbole-compress tune SEARCH_FILE --model=... --{flag}=...")
    _require_model_and_dataset(args)
    from recbole_compress.quick_start import result_line, run_recbole_compress

    result = run_recbole_compress(
        args.model, args.dataset, _config_files(args), overrides=overrides, strict=args.strict,
    )
    print(result_line(result["summary"]))
    print(f"output: {result['output_dir']} (summary.json, model.pt)")
    return 0


def cmd_tune(args, overrides) -> int:
    _require_model_and_dataset(args)
    from recbole_compress.tune import main as tune_main  # imports ray only here

    return tune_main(args, overrides)


def cmd_compare(args, overrides) -> int:
    from recbole_compress.compare import main_from_args

    return main_from_args(args, overrides)


def cmd_convert(args, overrides) -> int:
    from recbole_compress.data.cli import run

    _no_overrides("convert", overrides)
    return run(args)


def cmd_models(args, overrides) -> int:
    from recbole_compress.registry import compression_methods, registered_models

    _no_overrides("models", overrides)
    print("models:", " ".join(registered_models()))
    print("methods (use <RecBoleModel>_<METHOD>, e.g. LightGCN_LTH):", " ".join(sorted(compression_methods())))
    return 0


def cmd_recommend(args, overrides) -> int:
    _no_overrides("recommend", overrides)
    from recbole_compress.serve.command import run

    return run(args)


def _no_overrides(command: str, overrides: dict) -> None:
    from recbole_compress.errors import UserError

    if overrides:
        raise UserError(f"'{command}' takes no config keys (got --{next(iter(overrides))}); see 'recbole-compress {command} --help'")


# name -> (one-line help, argument setup, handler); a command's parser is built only when it runs
COMMANDS = {
    "run": ("train, compress and evaluate one model (writes summary.json and model.pt)", configure_run, cmd_run),
    "tune": ("Ray Tune search over the keys of a search file", configure_tune, cmd_tune),
    "compare": ("every method at the same byte budgets: one table and plot", configure_compare, cmd_compare),
    "convert": ("raw dataset files -> RecBole atomic files", configure_convert, cmd_convert),
    "models": ("list the models and compression methods", configure_models, cmd_models),
    "recommend": ("top-k items from a trained model, without its dataset (JSON lines)", configure_recommend, cmd_recommend),
}


# -- entry points ---------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    listing = "\n".join(f"  {name:10s}{help_}" for name, (help_, _, _) in COMMANDS.items())
    parser = _Parser(
        prog="recbole-compress",
        usage="recbole-compress [--version] COMMAND [options] [--key=value ...]",
        description="Compressed embedding tables for RecBole 1.2.1. Any --key=value sets a RecBole or "
        "recbole-compress config key.",
        epilog=f"commands:\n{listing}\n\n'recbole-compress COMMAND --help' shows a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"recbole-compress {__version__}")
    parser.add_argument("command", nargs="?", choices=list(COMMANDS), metavar="COMMAND", help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def command_parser(name: str) -> argparse.ArgumentParser:
    help_, configure, _ = COMMANDS[name]
    parser = _Parser(prog=f"recbole-compress {name}", description=help_[0].upper() + help_[1:] + ".",
                     allow_abbrev=False)  # a config key such as --num=3 is never taken for --num_samples
    configure(parser)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from recbole_compress.errors import UserError

    try:
        top = build_parser()
        ns = top.parse_args(argv)
        if ns.command is None:
            top.print_help(sys.stderr)
            return EXIT_USAGE
        args, extra = command_parser(ns.command).parse_known_args(ns.rest)
        from recbole_compress.overrides import parse_overrides

        overrides = parse_overrides(extra)
        quiet_known_warnings()
        return COMMANDS[ns.command][2](args, overrides)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted; finished work is kept and the same command resumes", file=sys.stderr)
        return 130


def legacy_main(argv=None) -> int:
    """``run_recbole_compress.py``: ``run``, with the older ``--tune=FILE`` and ``--list-models`` forms."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv) and not any(a.startswith("--tune") for a in argv):
        return main(["run", *argv])
    if "--list-models" in argv:
        return main(["models"])
    tune = [a for a in argv if a.startswith("--tune=")]
    if tune:
        rest = [a for a in argv if a not in tune]
        return main(["tune", tune[0].split("=", 1)[1], *rest])
    return main(["run", *argv])


def quiet_known_warnings() -> None:
    """RecBole's and pandas' known warnings say nothing a user can act on; ours read as one line."""
    import warnings

    for module in ("recbole", "pandas", "thop", "torch", "ray", "numpy", "sklearn", "scipy"):
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=module)
    warnings.filterwarnings("ignore", message=".*torch.sparse.SparseTensor.*")
    warnings.filterwarnings("ignore", message=".*sparse CSR tensor support is in beta.*")
    from recbole_compress.errors import Notice

    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, Notice):
            print(f"warning: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show


if __name__ == "__main__":
    sys.exit(main())
