"""The one place that makes RecBole 1.2.1 run on the current stack.

RecBole 1.2.1 is the last release and was written for numpy 1.x, scipy < 1.13,
torch < 2.6 and pandas 1.x. Every patch below names the breakage it fixes.
Nothing else in recbole_compress monkeypatches; ``apply()`` is idempotent and is
called when ``recbole_compress`` is imported.
"""

from __future__ import annotations

import numpy as np

_APPLIED = False

# numpy 2 removed these aliases; RecBole's evaluator still spells `np.float`
# and `np.bool` (recbole/evaluator/metrics.py) and Config sets them from
# `np.float_`, `np.complex_`, `np.unicode_`, which numpy 2 no longer has.
_NUMPY_ALIASES = {
    "bool": np.bool_,
    "int": np.int_,
    "float": np.float64,
    "complex": np.complex128,
    "object": np.object_,
    "str": np.str_,
    "long": np.int_,
    "unicode": np.str_,
}


def _compatibility_settings(self) -> None:
    """Replacement for ``Config.compatibility_settings`` (numpy 2: `np.float_` etc. removed)."""
    for name, alias in _NUMPY_ALIASES.items():
        if name not in np.__dict__:
            setattr(np, name, alias)


def _dok_update(self, data) -> None:
    """scipy >= 1.13 removed ``dok_matrix._update``, which LightGCN, NGCF, GCMC,
    NCL and SpectralCF call to fill their adjacency matrix in bulk."""
    store = getattr(self, "_dict", None)
    if store is None:  # scipy < 1.13: dok_matrix is a dict subclass
        dict.update(self, data)
    else:
        store.update(data)


def _weights_only_save_checkpoint(self, epoch, verbose=True, **kwargs):
    """torch >= 2.6 loads with ``weights_only=True`` by default, and RecBole's
    checkpoint pickles the whole Config, so ``Trainer.evaluate(load_best_model=True)``
    fails. Save tensors, numbers and strings only: the config as plain data (model,
    dataset, seed, the user's settings), which :func:`_load_data_and_model` rebuilds.
    This project's own trainers save the same way (``trainers/checkpoints.py``)."""
    from recbole_compress.trainers.checkpoints import CheckpointMixin

    return CheckpointMixin._save_checkpoint(self, epoch, verbose=verbose, **kwargs)


def _load_data_and_model(model_file):
    """``recbole.quick_start.load_data_and_model`` for the checkpoints saved above: the
    file is loaded weights-only and its config rebuilt from the plain data it holds
    (values taken as data, never evaluated); the rest is RecBole's own sequence."""
    from logging import getLogger

    from recbole.data import create_dataset, data_preparation
    from recbole.utils import init_logger, init_seed

    from recbole_compress.config import Config
    from recbole_compress.errors import UserError
    from recbole_compress.registry import get_model
    from recbole_compress.run import load_checkpoint

    checkpoint = load_checkpoint(model_file)
    saved = checkpoint.get("config")
    if not isinstance(saved, dict) or not isinstance(saved.get("settings"), dict):
        raise UserError(f"{model_file} records no config to rebuild; it was not saved by a trainer of RecBole 1.2.1 patched here")
    settings = dict(saved["settings"])
    if saved.get("data_path"):
        settings["data_path"] = saved["data_path"]
    config = Config(model=saved["model"], dataset=saved["dataset"], config_dict=settings)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logger = getLogger()
    logger.info(config)
    dataset = create_dataset(config)
    logger.info(dataset)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    model.load_state_dict(checkpoint["state_dict"])
    model.load_other_parameter(checkpoint.get("other_parameter"))
    return config, model, dataset, train_data, valid_data, test_data


class _PatchOnImport:
    """``recbole.quick_start`` imports ray at import time, so it is not imported here:
    its ``load_data_and_model`` is replaced when (and if) it is first imported."""

    target = "recbole.quick_start.quick_start"

    def find_spec(self, name, path=None, target=None):
        if name != self.target:
            return None
        import importlib.util
        import sys

        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_patch(module):
            exec_module(module)
            module.load_data_and_model = _load_data_and_model

        spec.loader.exec_module = exec_then_patch
        return spec


def _patch_load_data_and_model() -> None:
    import sys

    loaded = sys.modules.get(_PatchOnImport.target)
    if loaded is not None:
        loaded.load_data_and_model = _load_data_and_model
        if "recbole.quick_start" in sys.modules:
            sys.modules["recbole.quick_start"].load_data_and_model = _load_data_and_model
    else:
        sys.meta_path.insert(0, _PatchOnImport())


def apply() -> None:
    """Install every patch once."""
    global _APPLIED
    if _APPLIED:
        return
    import scipy.sparse as sp
    from recbole.config import configurator
    from recbole.trainer import trainer

    configurator.Config.compatibility_settings = _compatibility_settings
    if not hasattr(sp.dok_matrix, "_update"):
        sp.dok_matrix._update = _dok_update
    # Trainer and every subclass that does not define its own (all but the
    # decision-tree trainers, whose models are not torch modules).
    trainer.Trainer._save_checkpoint = _weights_only_save_checkpoint
    _patch_load_data_and_model()
    _no_anomaly_detection()
    _APPLIED = True


def _no_anomaly_detection() -> None:
    """RecBole's sine.py calls ``torch.autograd.set_detect_anomaly(True)`` at import,
    and RecBole's ``get_model`` imports every sequential model: from the first model
    lookup on, every backward pass checks each gradient for NaN and records stack
    traces (LightGCN on ml-100k: 70 -> 45 ms a step; more for deeper graphs). Import
    it once here, then switch the debugging mode off again."""
    import torch
    import recbole.model.sequential_recommender.sine  # noqa: F401  (its import-time switch runs now)

    torch.autograd.set_detect_anomaly(False)
