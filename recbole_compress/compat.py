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
    fails. Save only tensors, numbers and strings; the default safe load then works.
    The Config is kept as a plain dict of its model/dataset/seed for provenance."""
    import torch
    from recbole.utils import set_color

    if not self.config["single_spec"] and self.config["local_rank"] != 0:
        return
    saved_model_file = kwargs.pop("saved_model_file", self.saved_model_file)
    other = self.model.other_parameter()
    state = {
        "config": {
            "model": str(self.config["model"]),
            "dataset": str(self.config["dataset"]),
            "seed": int(self.config["seed"]),
        },
        "epoch": int(epoch),
        "cur_step": int(self.cur_step),
        "best_valid_score": float(self.best_valid_score),
        "state_dict": self.model.state_dict(),
        "other_parameter": other if other is not None else {},
        "optimizer": self.optimizer.state_dict(),
    }
    torch.save(state, saved_model_file)
    if verbose:
        self.logger.info(set_color("Saving current", "blue") + f": {saved_model_file}")


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
