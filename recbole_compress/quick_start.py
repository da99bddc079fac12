"""``run_recbole_compress``: RecBole's ``run_recbole`` with our registry, our property
files, checks before any work, a dataset check that never hangs offline, and a
``summary.json`` beside the exported model."""

from __future__ import annotations

import time
from logging import getLogger
from pathlib import Path

from recbole_compress.errors import UserError
from recbole_compress.run import (
    ARTIFACT_FILE,
    RUN_CONFIG_FILE,
    SCHEMA_VERSION,
    SUMMARY_FILE,
    atomic_write_json,
    build_config,
    claimed_run_folder,
    settings_of,
    to_jsonable,
    write_run_config,
)

__all__ = ["run_recbole_compress", "load_data", "write_summary", "result_line", "SUMMARY_FILE", "ARTIFACT_FILE", "RUN_CONFIG_FILE"]


def load_data(config):
    """Dataset and its train/valid/test loaders, with a clear error for a missing or malformed dataset."""
    from recbole.data import create_dataset, data_preparation

    from recbole_compress.config import check_dataset, convert_hint, recbole_downloadable

    check_dataset(config)
    folder = Path(config["data_path"])
    downloading = not folder.exists() and recbole_downloadable(config["dataset"])
    # models with their own loaders (the multi-task models) name them; others use RecBole's
    prepare = getattr(config.model_class, "prepare_data", None) or data_preparation
    try:
        dataset_class = getattr(config.model_class, "dataset_class", None)  # models with their own (TransRec)
        dataset = dataset_class(config) if dataset_class is not None else create_dataset(config)
        train_data, valid_data, test_data = prepare(config, dataset)
    except OSError as err:
        if not downloading:
            raise
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # RecBole creates it before downloading: leave nothing behind
        raise UserError(
            f"dataset '{config['dataset']}' is not in {folder} and RecBole could not download it "
            f"({err.__class__.__name__}: {' '.join(str(err).split())[:120]}); {convert_hint(config['dataset'], str(folder))}"
        ) from None
    except (ValueError, KeyError, IndexError) as err:  # pandas parse errors are ValueErrors
        first = str(err).splitlines()[0] if str(err) else ""
        raise UserError(
            f"dataset '{config['dataset']}' at {config['data_path']} could not be read ({type(err).__name__}: {first}); "
            "check its atomic files (a header of field:type columns, tab-separated rows) and load_col"
        ) from err
    return dataset, train_data, valid_data, test_data


def run_recbole_compress(
    model=None, dataset=None, config_file_list=None, config_dict=None, saved=True, callback_fn=None,
    overrides=None, strict=False,
):
    """Train and test ``model`` on ``dataset``, like ``recbole.quick_start.run_recbole``.

    ``config_dict`` values are taken as data (RecBole ``eval()``s strings; this does not);
    ``overrides`` are command-line settings (highest priority); ``strict`` turns the
    unknown-key warning into an error. ``callback_fn(epoch_idx, valid_score)`` is RecBole's
    ``Trainer.fit`` hook, called after every evaluation (Ray Tune trials report through
    it; lottery tickets call it in every round).

    Returns RecBole's result dict (``best_valid_score``, ``valid_score_bigger``,
    ``best_valid_result``, ``test_result``) plus ``output_dir`` and ``summary``.
    """
    started = time.time()
    config = build_config(model, dataset, config_file_list, config_dict, overrides, strict)
    with claimed_run_folder(config):  # refused or unwritable folders fail before any work
        trainer, result, test_time, train_dataset = _train_and_test(config, saved, callback_fn)
    summary = write_summary(config, trainer, result, started, test_time, dataset=train_dataset)
    result["output_dir"] = config["output_dir"]
    result["summary"] = summary
    getLogger().info(f"output dir: {config['output_dir']}")
    return result


def _train_and_test(config, saved, callback_fn):
    """RecBole's run: data, model, trainer, fit, test. Returns (trainer, result, test
    seconds, the training dataset)."""
    from recbole.data.transform import construct_transform
    from recbole.utils import get_environment, get_flops, init_logger, init_seed, set_color

    from recbole_compress.config import check_dataset
    from recbole_compress.registry import get_model, get_trainer

    check_dataset(config)  # before RecBole logs its config: a missing dataset is one line
    init_seed(config["seed"], config["reproducibility"])
    _fresh_log_handlers()
    init_logger(config)
    logger = getLogger()
    logger.info(config)

    dataset, train_data, valid_data, test_data = load_data(config)
    logger.info(dataset)

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    logger.info(model)

    transform = construct_transform(config)
    try:
        flops = get_flops(model, dataset, config["device"], logger, transform)
    except Exception as err:  # thop cannot trace every compressed module; FLOPs are informational
        flops = f"n/a ({type(err).__name__})"
    logger.info(set_color("FLOPs", "blue") + f": {flops}")

    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    if hasattr(trainer, "attach_test_data"):  # trainers that report test metrics per round
        trainer.attach_test_data(test_data)
    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, saved=saved, show_progress=config["show_progress"], callback_fn=callback_fn
    )
    tested = time.time()
    test_result = trainer.evaluate(test_data, load_best_model=saved, show_progress=config["show_progress"])
    test_time = time.time() - tested  # full-sort scoring of every test user, with the metrics

    logger.info("The running environment of this training is as follows:\n" + get_environment(config).draw())
    logger.info(set_color("best valid ", "yellow") + f": {best_valid_result}")
    logger.info(set_color("test result", "yellow") + f": {test_result}")
    result = {
        "best_valid_score": best_valid_score,
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": best_valid_result,
        "test_result": test_result,
    }
    return trainer, result, test_time, train_data._dataset


def _fresh_log_handlers() -> None:
    """RecBole's init_logger uses logging.basicConfig, which does nothing once the root
    logger has handlers: a second run in the same process would keep writing into the
    first run's log file. Drop RecBole's previous handlers so each run logs to its own."""
    import logging

    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, (logging.FileHandler, logging.StreamHandler)) and type(handler).__module__.startswith("logging"):
            root.removeHandler(handler)
            handler.close()


# -- summary.json ----------------------------------------------------------------------------

def provenance(config) -> dict:
    """Versions, device and (in a git checkout) the commit that produced a result."""
    import platform
    import subprocess

    import recbole
    import torch

    import recbole_compress

    commit = None
    source = Path(recbole_compress.__file__).resolve().parent.parent
    if (source / ".git").exists():
        try:
            done = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
            commit = done.stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            commit = None
    return {
        "versions": {
            "recbole_compress": recbole_compress.__version__, "recbole": recbole.__version__,
            "torch": torch.__version__, "python": platform.python_version(),
        },
        "device": str(config["device"]),
        "git_commit": commit,
    }


def write_summary(config, trainer, result, started, test_time=None, dataset=None) -> dict:
    """Export the trained model (once) and write ``model.pt``, ``summary.json`` and
    ``run_config.json`` into the output folder. Paths in the summary are relative to it.
    With the training ``dataset``, ``model.pt`` also carries what serving needs
    (serve/block.py: token maps, training items, settings; ``serving_bytes``)."""
    from recbole_compress.export import export_model, model_accounting, save_artifact, table_bytes, table_parameter_count
    from recbole_compress.embeddings.base import compressed_modules

    out = Path(config["output_dir"])
    model = trainer.model
    from recbole_compress.serve.block import serving_block

    artifact = export_model(model, serving=None if dataset is None else serving_block(config, dataset))
    save_artifact(artifact, out / ARTIFACT_FILE)
    accounting = model_accounting(model, artifact)
    summary = {
        "schema_version": SCHEMA_VERSION,
        "model": config["model"],
        "dataset": config["dataset"],
        "seed": config["seed"],
        "valid_metric": str(config["valid_metric"]).lower(),
        "valid": _lower_keys(result["best_valid_result"]),
        "test": _lower_keys(result["test_result"]),
        **accounting,
        "compression_ratio": round(accounting["dense_model_bytes"] / max(accounting["model_bytes"], 1), 4),
        "table_bytes": table_bytes(model, artifact),
        "table_parameters": sum(table_parameter_count(m) for _, m in compressed_modules(model)),
        "epoch_time_s": getattr(trainer, "mean_epoch_time", None),
        "epochs": getattr(trainer, "epochs_run", None),
        "valid_curve": getattr(trainer, "valid_curve", None),  # per validation: score, cumulative train/valid seconds
        "wall_time_s": round(time.time() - started, 3),
        "test_time_s": None if test_time is None else round(test_time, 3),
        "artifact": ARTIFACT_FILE,
        **provenance(config),
    }
    summary.update(getattr(trainer, "extra_summary", lambda: {})())
    summary = to_jsonable(summary)
    # what load_model needs to rebuild the model: the user's settings, not RecBole's defaults
    write_run_config(out, config["model"], config["dataset"], settings_of(config), str(Path(config["data_path"]).resolve().parent))
    atomic_write_json(out / SUMMARY_FILE, summary)
    return summary


def _lower_keys(result) -> dict:
    return {str(k).lower(): v for k, v in dict(result or {}).items()}


def result_line(summary: dict) -> str:
    """The one line a person wants at the end of a run."""
    metric = summary.get("valid_metric", "")
    test = (summary.get("test") or {}).get(metric)
    kb, dense_kb = summary["model_bytes"] / 1024, summary["dense_model_bytes"] / 1024
    share = summary["nonzero_parameters"] / max(summary["dense_parameters"], 1)
    head = f"{summary['model']} on {summary['dataset']}"
    size = f"model {kb:,.1f} KB = {summary['model_bytes'] / max(summary['dense_model_bytes'], 1):.1%} of dense {dense_kb:,.1f} KB"
    quality = f"test {metric} {_num(test)}"
    lth = summary.get("lth")
    if lth:
        dense_test = (lth.get("dense") or {}).get(f"test_{metric}")
        versus = f" vs dense {_num(dense_test)} ({test / dense_test:.2f}x)" if test is not None and dense_test else ""
        ticket = lth.get("winning_ticket")
        if ticket:
            what = f"winning ticket: round {ticket['round']} keeps {ticket['remaining']:.1%} of the pruned weights"
        elif lth.get("select") == "sparsest":
            what = f"sparsest round kept ({share:.1%} of the parameters)"
        else:
            what = "no winning ticket (no pruned round reached the dense validation score): exported the dense round"
        return f"{head}: {what}; {size}; {quality}{versus}"
    if summary["model_bytes"] >= summary["dense_model_bytes"]:
        return f"{head}: dense model, {summary['nonzero_parameters']:,} parameters, {kb:,.1f} KB; {quality}"
    return f"{head}: keeps {share:.1%} of the parameters; {size}; {quality} (dense figures: run its base model)"


def _num(value) -> str:
    return "n/a" if value is None else f"{float(value):.4f}"


def load_model(output_dir):
    """Rebuild the exported model of a finished run with its data: ``(model, config, test_data)``.

    Reads ``run_config.json`` (as data: nothing in it is evaluated) and ``model.pt``
    (weights-only) from ``output_dir``; the dataset is loaded and split again with the
    run's settings and seed. Serving without the dataset: :func:`recbole_compress.load`.
    """
    from recbole.utils import init_seed

    from recbole_compress.config import Config
    from recbole_compress.export import import_model
    from recbole_compress.registry import get_model
    from recbole_compress.run import load_checkpoint, read_run_config

    out = Path(output_dir)
    saved = read_run_config(out)
    artifact = load_checkpoint(out / ARTIFACT_FILE, folder=out)
    config = Config(model=saved["model"], dataset=saved["dataset"], config_dict=saved.get("config", {}))
    init_seed(config["seed"], config["reproducibility"])
    _, train_data, _, test_data = load_data(config)
    init_seed(config["seed"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset)
    import_model(model, artifact)
    return model.to(config["device"]).eval(), config, test_data
