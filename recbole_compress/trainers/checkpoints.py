"""Checkpoints of every trainer this project hands out: weights-only, and loaded only
from inside the run's own folder.

RecBole's trainer pickles its whole Config into each checkpoint (torch >= 2.6 refuses to
load that by default) and loads checkpoints with a bare ``torch.load`` (which
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` turns into an unpickler that runs code). Here a
checkpoint holds tensors, numbers and strings, and every load passes
``weights_only=True`` through :func:`recbole_compress.run.load_checkpoint`.
"""

from __future__ import annotations

from pathlib import Path

from recbole_compress.run import atomic_torch_save, load_checkpoint


def checkpoint_config(config) -> dict:
    """What a checkpoint records of its config: plain data, enough to rebuild it."""
    from recbole_compress.run import settings_of

    return {
        "model": str(config["model"]),
        "dataset": str(config["dataset"]),
        "seed": int(config["seed"]),
        "reproducibility": bool(config["reproducibility"]),
        "settings": settings_of(config),
        "data_path": str(Path(config["data_path"]).resolve().parent),  # RecBole appends the dataset name
    }


def checkpoint_state(trainer, epoch) -> dict:
    """What a checkpoint holds: the config as data, the epoch, early-stopping state, the
    weights and (unless the trainer's ``keep_optimizer`` is off) the optimiser. A function
    of any RecBole trainer: compat.py saves RecBole's own trainers' checkpoints with it too."""
    other = trainer.model.other_parameter()
    state = {
        "config": checkpoint_config(trainer.config),
        "epoch": int(epoch),
        "cur_step": int(trainer.cur_step),
        "best_valid_score": float(trainer.best_valid_score),
        "state_dict": trainer.model.state_dict(),
        "other_parameter": other if other is not None else {},
    }
    if getattr(trainer, "keep_optimizer", True):
        state["optimizer"] = trainer.optimizer.state_dict()
    return state


def restore_state(trainer, checkpoint: dict) -> None:
    """Load what :func:`checkpoint_state` saved; training continues after its epoch."""
    trainer.start_epoch = checkpoint["epoch"] + 1
    trainer.cur_step = checkpoint["cur_step"]
    trainer.best_valid_score = checkpoint["best_valid_score"]
    trainer.model.load_state_dict(checkpoint["state_dict"])
    trainer.model.load_other_parameter(checkpoint.get("other_parameter"))
    if "optimizer" in checkpoint:
        trainer.optimizer.load_state_dict(checkpoint["optimizer"])


class CheckpointMixin:
    """Weights-only checkpoints for RecBole trainers; ``keep_optimizer = False`` saves
    only what a restart needs when every stage starts a fresh optimiser (tickets)."""

    keep_optimizer = True

    def _save_checkpoint(self, epoch, verbose=True, **kwargs):
        from recbole.utils import set_color

        if not self.config["single_spec"] and self.config["local_rank"] != 0:
            return
        saved_model_file = kwargs.pop("saved_model_file", self.saved_model_file)
        atomic_torch_save(checkpoint_state(self, epoch), saved_model_file)
        if verbose:
            self.logger.info(set_color("Saving current", "blue") + f": {saved_model_file}")

    def _load_own_checkpoint(self, path) -> dict:
        return load_checkpoint(path, folder=self.config["checkpoint_dir"], map_location=self.device)

    def resume_checkpoint(self, resume_file):
        checkpoint = self._load_own_checkpoint(resume_file)
        self.saved_model_file = str(resume_file)
        restore_state(self, checkpoint)
        self.logger.info(f"Checkpoint loaded. Resume training from epoch {self.start_epoch}")

    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        if load_best_model and eval_data:
            checkpoint = self._load_own_checkpoint(model_file or self.saved_model_file)
            self.model.load_state_dict(checkpoint["state_dict"])
            self.model.load_other_parameter(checkpoint.get("other_parameter"))
        return super().evaluate(eval_data, load_best_model=False, model_file=model_file, show_progress=show_progress)
