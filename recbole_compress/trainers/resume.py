"""A killed run continues from its last validation instead of starting over.

RecBole saves a checkpoint only when validation improves, without the optimiser's place
in the data or the random streams, so a killed run (a TransRec epoch is 26 min on a CPU)
starts again from epoch 0. Here, after a validation (at most once a minute: the file holds
the model and the optimiser), the trainer writes ``resume.pt`` into the run's folder:
weights, optimiser, early-stopping state, the best checkpoint's path, the epoch timings and
every random stream a RecBole run draws from (torch, numpy, random, and the training
loader's shuffling generator). The same command then continues where the killed one
stopped and ends with the same weights as an uninterrupted run; the file is removed when
training ends. Trainers that resume at their own rounds or stages (tickets, CERP) set
``epoch_resume = False``.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import torch

from recbole_compress.run import atomic_torch_save, check_fingerprint, config_fingerprint, load_checkpoint
from recbole_compress.trainers.checkpoints import checkpoint_state, restore_state

RESUME_FILE = "resume.pt"


class EpochResumeMixin:
    epoch_resume = True
    resume_every_s = 60.0  # how much training a kill may cost, against a file write per validation

    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):
        if not (self.epoch_resume and saved and valid_data):
            return super().fit(train_data, valid_data, verbose, saved, show_progress, callback_fn)
        path = Path(self.config["checkpoint_dir"]) / RESUME_FILE
        fingerprint = config_fingerprint(self.config)
        if path.is_file() and self._resume_epochs(path, fingerprint, train_data):
            self.eval_collector.data_collect(train_data)  # as RecBole's fit would (popularity metrics)
            return self.best_valid_score, self.best_valid_result  # it had finished training
        last_save = time.monotonic()

        def save_then_report(epoch_idx, valid_score):
            nonlocal last_save
            if time.monotonic() - last_save >= self.resume_every_s:
                self._save_resume(path, fingerprint, epoch_idx, train_data)
                last_save = time.monotonic()
            if callback_fn is not None:
                callback_fn(epoch_idx, valid_score)

        result = super().fit(train_data, valid_data, verbose, saved, show_progress, save_then_report)
        path.unlink(missing_ok=True)
        return result

    def _save_resume(self, path, fingerprint, epoch_idx, train_data) -> None:
        atomic_torch_save(
            {
                **checkpoint_state(self, epoch_idx),  # weights, optimiser, early stopping, as in a checkpoint
                "fingerprint": fingerprint,
                # RecBole stops after this validation, or it was the last epoch
                "finished": self.cur_step > self.stopping_step or epoch_idx + 1 >= self.epochs,
                "best_valid_result": {k: float(v) for k, v in (self.best_valid_result or {}).items()},
                "saved_model_file": str(self.saved_model_file),
                "epoch_times": list(getattr(self, "epoch_times", [])),
                "valid_curve": list(getattr(self, "valid_curve", [])),
                "valid_seconds": float(getattr(self, "_valid_seconds", 0.0)),
                "random_state": random_state(train_data),
            },
            path,
        )

    def _resume_epochs(self, path, fingerprint, train_data) -> bool:
        """Load ``path`` into this trainer; True when that run had finished training."""
        from recbole.utils import set_color

        state = load_checkpoint(path, folder=self.config["checkpoint_dir"], map_location=self.device)
        check_fingerprint(state["fingerprint"], self.config, path)
        restore_state(self, state)
        self.best_valid_result = state["best_valid_result"] or None
        self.saved_model_file = state["saved_model_file"]
        self.epoch_times = list(state["epoch_times"])
        self.valid_curve, self._valid_seconds = list(state["valid_curve"]), state["valid_seconds"]
        set_random_state(state["random_state"], train_data)
        self.logger.info(set_color("Resuming", "yellow") + f" after epoch {state['epoch']} from {path}")
        return bool(state["finished"])


def random_state(train_data) -> dict:
    """Every random stream a RecBole run draws from, as tensors and numbers (weights-only)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                  "gauss": float(gauss)},
        "python": random.getstate(),
        "loader": train_data.generator.get_state() if hasattr(train_data, "generator") else None,
    }


def set_random_state(state: dict, train_data) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy = state["numpy"]
    np.random.set_state(("MT19937", numpy["keys"].numpy().astype(np.uint32), numpy["pos"], numpy["has_gauss"],
                         numpy["gauss"]))
    random.setstate(state["python"])
    if state["loader"] is not None:
        train_data.generator.set_state(state["loader"])
