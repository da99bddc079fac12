"""``run_recbole_compress``: RecBole's ``run_recbole`` with our registry, our
property files, a dataset check that never downloads, and a ``summary.json``."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from logging import getLogger

from recbole.data import create_dataset, data_preparation
from recbole.data.transform import construct_transform
from recbole.utils import get_environment, get_flops, init_logger, init_seed, set_color

from recbole_compress.config import Config, check_dataset
from recbole_compress.export import export_model, model_accounting, save_artifact, table_bytes, table_parameter_count
from recbole_compress.embeddings.base import compressed_modules
from recbole_compress.errors import UserError
from recbole_compress.registry import get_model, get_trainer
from recbole_compress.utils import atomic_write_json, run_dir, to_jsonable

SUMMARY_FILE = "summary.json"
ARTIFACT_FILE = "model.pt"
RUN_CONFIG_FILE = "run_config.json"


def load_data(config):
    """Dataset and its train/valid/test loaders, with a clear error for a missing or malformed dataset."""
    check_dataset(config)
    # models with their own loaders (the multi-task models) name them; others use RecBole's
    prepare = getattr(config.model_class, "prepare_data", None) or data_preparation
    try:
        dataset_class = getattr(config.model_class, "dataset_class", None)  # models with their own (TransRec)
        dataset = dataset_class(config) if dataset_class is not None else create_dataset(config)
        train_data, valid_data, test_data = prepare(config, dataset)
    except (ValueError, KeyError, IndexError) as err:  # pandas parse errors are ValueErrors
        raise UserError(
            f"dataset '{config['dataset']}' at {config['data_path']} could not be read ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}); re-run the convert command for it"
        ) from err
    return dataset, train_data, valid_data, test_data


def build_config(model=None, dataset=None, config_file_list=None, config_dict=None) -> Config:
    config = Config(model=model, dataset=dataset, config_file_list=config_file_list, config_dict=config_dict)
    for method in getattr(config.model_class, "compression_chain", ()):
        if method.check_config is not None:
            method.check_config(config)  # bad settings fail before data loading
    own_check = getattr(config.model_class, "check_config", None)
    if own_check is not None:
        own_check(config)
    out = run_dir(config)
    config["output_dir"] = str(out)
    config["checkpoint_dir"] = str(out)
    return config


def run_recbole_compress(model=None, dataset=None, config_file_list=None, config_dict=None, saved=True, callback_fn=None):
    """Train and test ``model`` on ``dataset``, like ``recbole.quick_start.run_recbole``.

    ``callback_fn(epoch_idx, valid_score)`` is RecBole's ``Trainer.fit`` hook, called after
    every evaluation (Ray Tune trials report through it; lottery tickets call it in every round).

    Returns RecBole's result dict (``best_valid_score``, ``valid_score_bigger``,
    ``best_valid_result``, ``test_result``) plus ``output_dir`` and ``summary``.
    """
    started = time.time()
    config = build_config(model, dataset, config_file_list, config_dict)
    init_seed(config["seed"], config["reproducibility"])
    _fresh_log_handlers()
    init_logger(config)
    logger = getLogger()
    logger.info(sys.argv)
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
    summary = write_summary(config, trainer, result, started, test_time)
    result["output_dir"] = config["output_dir"]
    result["summary"] = summary
    logger.info(set_color("output dir", "yellow") + f": {config['output_dir']}")
    return result


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


def write_summary(config, trainer, result, started, test_time=None) -> dict:
    """Export the trained model and write ``summary.json`` into the output dir."""
    out = Path(config["output_dir"])
    model = trainer.model
    artifact = export_model(model)
    save_artifact(artifact, out / ARTIFACT_FILE)
    summary = {
        "model": config["model"],
        "dataset": config["dataset"],
        "seed": config["seed"],
        "valid_metric": config["valid_metric"],
        "valid": dict(result["best_valid_result"] or {}),
        "test": dict(result["test_result"] or {}),
        **model_accounting(model),
        "epoch_time_s": getattr(trainer, "mean_epoch_time", None),
        "epochs": getattr(trainer, "epochs_run", None),
        "valid_curve": getattr(trainer, "valid_curve", None),  # per validation: score, cumulative train/valid seconds
        "wall_time_s": round(time.time() - started, 3),
        "test_time_s": None if test_time is None else round(test_time, 3),
        "table_bytes": table_bytes(model),
        "table_parameters": sum(table_parameter_count(m) for _, m in compressed_modules(model)),
        "artifact": str(out / ARTIFACT_FILE),
    }
    summary.update(getattr(trainer, "extra_summary", lambda: {})())
    summary = to_jsonable(summary)
    # what load_model needs to rebuild the model: the user's settings, not RecBole's defaults
    settings = {k: v for k, v in config.external_config_dict.items() if k not in ("model", "dataset")}
    settings["data_path"] = str(Path(config["data_path"]).resolve().parent)
    atomic_write_json(out / RUN_CONFIG_FILE, {"model": config["model"], "dataset": config["dataset"], "config": settings})
    atomic_write_json(out / SUMMARY_FILE, summary)
    return summary


def load_model(output_dir):
    """Rebuild the exported model of a finished run: ``(model, config, test_data)``.

    Reads ``run_config.json`` and ``model.pt`` from ``output_dir``; the dataset is
    loaded and split again with the run's settings and seed.
    """
    import json
    from pathlib import Path

    from recbole_compress.export import import_model, load_artifact

    out = Path(output_dir)
    if not (out / RUN_CONFIG_FILE).is_file() or not (out / ARTIFACT_FILE).is_file():
        raise UserError(f"{out} is not a finished run: {RUN_CONFIG_FILE} or {ARTIFACT_FILE} missing")
    saved = json.loads((out / RUN_CONFIG_FILE).read_text())
    config = Config(model=saved["model"], dataset=saved["dataset"], config_dict=saved["config"])
    init_seed(config["seed"], config["reproducibility"])
    _, train_data, _, test_data = load_data(config)
    init_seed(config["seed"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset)
    import_model(model, load_artifact(out / ARTIFACT_FILE))
    return model.to(config["device"]).eval(), config, test_data
