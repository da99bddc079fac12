"""Two-stage training under a memory budget (CERP, PEP), on top of RecBole's ``Trainer.fit``.

Stage 1 trains with the soft thresholds on (CERP adds its complementarity
regulariser) until the non-zeros are within ``memory_budget`` or
``threshold_epochs`` have passed; then every table keeps exactly its share of the
budget (its largest ``|w| - threshold`` margins) and the mask is fixed. Stage 2
rewinds every weight to its ORIGINAL initial value and trains again with the mask
fixed and the thresholds off (ticket-style), to early stop on the validation metric.
QR tables have nothing to prune: only stage 2 runs.

The pruning pace is explicit (``threshold_schedule: pace``): every optimiser step of
stage 1 raises each threshold logit by ``threshold_pace``; the loss can push back
through the thresholds' own gradients. ``threshold_schedule: decay`` is the authors'
mechanism instead: Adam weight decay on the thresholds (``threshold_weight_decay``),
which Adam turns into a rise of about the thresholds' learning rate per step while
the decay term dominates their gradient.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from recbole.utils import set_color

from recbole_compress.embeddings.base import compressed_modules, embedding_kind
from recbole_compress.embeddings.cerp import CERPEmbedding, PrunedEmbedding
from recbole_compress.embeddings.masked import enforce_masks
from recbole_compress.trainers.budget_settings import BudgetSettings, meta_elements  # noqa: F401 (re-exported)
from recbole_compress.trainers.lth import clear_caches, weights_state
from recbole_compress.run import atomic_torch_save, check_fingerprint, config_fingerprint, load_checkpoint

STATE_FILE = "budget_state.pt"


# -- the regulariser ------------------------------------------------------------------

def batch_ids(model, module, interaction) -> torch.Tensor | None:
    """Ids of the batch's entities that ``module`` holds: users for a user table;
    positive, negative and sequence items for an item table."""
    fields = []
    if module.num_embeddings == getattr(model, "n_users", -1):
        fields = [getattr(model, "USER_ID", None)]
    elif module.num_embeddings >= getattr(model, "n_items", 1 << 62):
        fields = [getattr(model, attr, None) for attr in ("ITEM_ID", "NEG_ITEM_ID", "ITEM_SEQ")]
    present = [interaction[f].flatten() for f in fields if f is not None and f in interaction.interaction]
    return torch.cat(present).unique() if present else None


def complementarity(model, interaction, eta: float, reduction: str = "sum") -> torch.Tensor:
    """CERP's regulariser: ``- sum over batch entities and dims of tanh(eta * e)^2``
    on the combined pruned embeddings, which pushes P and Q to keep complementary
    elements (a combined element that is zero is lost to the entity). ``mean``: divided
    by the batch's entities (users and items together), so its weight does not grow
    with the batch size."""
    total, entities = None, 0
    for _, module in compressed_modules(model):
        if not isinstance(module, CERPEmbedding) or module.fixed:
            continue
        ids = batch_ids(model, module, interaction)
        if ids is None:
            continue
        term = -torch.tanh(eta * module(ids)).pow(2).sum()
        entities += ids.numel()
        total = term if total is None else total + term
    if total is not None and reduction == "mean":
        total = total / entities
    return total


class _BudgetReached(Exception):
    """Ends stage 1's ``Trainer.fit`` loop after the epoch that met the budget."""


# -- the trainer mixin ---------------------------------------------------------------------

class BudgetTrainerMixin:
    """Stage 1 (prune to the budget) and stage 2 (retrain the fixed mask from the
    initial values), each a call of RecBole's ``Trainer.fit``."""

    epoch_resume = False  # resumes at its own stages (its state file), not inside one

    _stage = 2  # the optimiser built by Trainer.__init__ runs before our __init__ body

    def __init__(self, config, model):
        self.budget_settings = BudgetSettings(config)  # before super(): Trainer.__init__ builds the optimiser
        super().__init__(config, model)
        self.stage1_epochs = 0
        self.stage1_nonzeros = None
        self.budget_met_by_thresholds = None

    def _pruned(self) -> list[tuple[str, PrunedEmbedding]]:
        return [(n, m) for n, m in compressed_modules(self.model) if isinstance(m, PrunedEmbedding)]

    def _tables(self) -> list[tuple[str, object]]:
        return [(n, m) for n, m in compressed_modules(self.model) if hasattr(m, "budget")]

    def _nonzeros(self) -> tuple[int, int]:
        tables = self._tables()
        return sum(m.parameter_count() for _, m in tables), sum(m.budget for _, m in tables)

    # -- optimiser: thresholds in their own group, the pace after every step ----------
    def _build_optimizer(self, **kwargs):
        if "params" not in kwargs:
            thresholds = [p for _, m in self._pruned() for p in m.thresholds()]
            skip = {id(p) for p in thresholds}
            groups = [{"params": [p for p in self.model.parameters() if id(p) not in skip and p.requires_grad]}]
            live = [p for p in thresholds if p.requires_grad]
            if live:
                groups.append(self._threshold_group(live))
            kwargs["params"] = groups
        optimizer = super()._build_optimizer(**kwargs)
        optimizer.register_step_post_hook(lambda opt, *_: self._after_step(opt))
        return optimizer

    def _threshold_group(self, thresholds) -> dict:
        """The thresholds' optimiser group. ``pace``: no weight decay (the pace is
        ``threshold_pace``, not a side effect); ``decay``: the authors' Adam weight decay,
        which raises a logit s < 0 by about the group's learning rate per step."""
        s = self.budget_settings
        group = {"params": thresholds, "weight_decay": s.threshold_weight_decay if s.schedule == "decay" else 0.0}
        if s.threshold_lr is not None:
            group["lr"] = s.threshold_lr
        return group

    @torch.no_grad()
    def _after_step(self, optimizer) -> None:
        enforce_masks(self.model, optimizer)  # fixed masks (stage 2) and unused meta rows stay zero
        if self._stage == 1 and self.budget_settings.schedule == "pace":
            for _, module in self._pruned():
                for threshold in module.thresholds():
                    threshold.add_(self.budget_settings.pace)

    # -- the epoch: regulariser in stage 1, stop at the budget ------------------------------
    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        if self._stage == 1 and loss_func is None:
            loss_func = self._stage1_loss(epoch_idx)
        result = super()._train_epoch(train_data, epoch_idx, loss_func=loss_func, show_progress=show_progress)
        if self._stage == 1:
            self.stage1_epochs = epoch_idx + 1
            nonzero, budget = self._nonzeros()
            self.logger.info(
                set_color(f"[{self._name}] stage 1", "yellow")
                + f" epoch {epoch_idx}: non-zeros {nonzero} / budget {budget}, loss {_loss_text(result)}"
            )
            if nonzero <= budget:
                raise _BudgetReached
        return result

    def _stage1_loss(self, epoch_idx):
        s = self.budget_settings
        gamma = s.reg_weight * s.reg_decay**epoch_idx  # halves every epoch (paper)
        model = self.model
        if gamma == 0 or not any(isinstance(m, CERPEmbedding) for _, m in self._pruned()):
            return None

        def loss_func(interaction):
            losses = model.calculate_loss(interaction)
            reg = complementarity(model, interaction, s.reg_eta, s.reg_reduction)
            if reg is None:
                return losses
            return (*losses, gamma * reg) if isinstance(losses, tuple) else (losses, gamma * reg)

        return loss_func

    @property
    def _name(self) -> str:
        method = getattr(type(self.model), "compression_method", None)
        return method.name if method is not None else "budget"

    # -- the two stages ----------------------------------------------------------------------
    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):
        fingerprint = config_fingerprint(self.config)
        state = self._resume(fingerprint)
        if state is not None and state["stage"] == 2:  # finished: evaluate loads its best checkpoint
            self.saved_model_file = state["saved_model_file"]
            for _, module in self._pruned():
                module.set_fixed()
            return state["best_valid_score"], state["best_valid_result"]
        pruned = self._pruned()
        if state is None and pruned and not all(m.fixed for _, m in pruned):
            initial = weights_state(self.model)  # stage 2 starts from these (masks excluded)
            self._stage1(train_data, verbose, show_progress)
            self._fix_masks()
            self.model.load_state_dict(initial, strict=False)
            enforce_masks(self.model)
            clear_caches(self.model)
            self._save_state(fingerprint, stage=1)
        self._stage = 2
        self.epochs = int(self.config["epochs"])
        self._reset(train_data)
        first = self.epochs_run
        score, result = super().fit(train_data, valid_data, verbose, saved, show_progress, callback_fn)
        if saved:
            self._save_state(fingerprint, stage=2, best_valid_score=score, best_valid_result=result)
        nonzero, budget = self._nonzeros()
        self.logger.info(
            set_color(f"[{self._name}] stage 2", "yellow")
            + f": {self.epochs_run - first} epochs, non-zeros {nonzero} / budget {budget} "
            f"({nonzero / max(budget, 1):.4f}), best valid {self.valid_metric} {float(score):.4f}"
        )
        return score, result

    # -- checkpoint and resume: a rerun skips a finished pruning stage (and a finished run) --
    @property
    def _state_path(self) -> Path:
        return Path(self.config["output_dir"] or self.config["checkpoint_dir"]) / STATE_FILE

    def _save_state(self, fingerprint: str, stage: int, **extra) -> None:
        state = {
            "fingerprint": fingerprint,
            "stage": stage,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "stage1_epochs": self.stage1_epochs,
            "stage1_nonzeros": self.stage1_nonzeros,
            "budget_met_by_thresholds": self.budget_met_by_thresholds,
            "epoch_times": list(getattr(self, "epoch_times", [])),
        }
        if stage == 2:
            state["model"] = None  # the best model is RecBole's checkpoint
            state["saved_model_file"] = Path(self.saved_model_file).name
            state["best_valid_score"] = float(extra["best_valid_score"])
            state["best_valid_result"] = {k: float(v) for k, v in (extra["best_valid_result"] or {}).items()}
        atomic_torch_save(state, self._state_path)

    def _resume(self, fingerprint: str) -> dict | None:
        path = self._state_path
        if not path.is_file():
            return None
        state = load_checkpoint(path, path.parent, map_location=self.device)
        check_fingerprint(state["fingerprint"], self.config, path)
        # the best model's checkpoint is named inside this folder (never a path from the file)
        best = state.get("saved_model_file")
        state["saved_model_file"] = str(path.parent / Path(best).name) if best else None
        self.stage1_epochs = state["stage1_epochs"]
        self.stage1_nonzeros = state["stage1_nonzeros"]
        self.budget_met_by_thresholds = state["budget_met_by_thresholds"]
        self.epoch_times = list(state["epoch_times"])
        if state["stage"] == 1 or not Path(state.get("saved_model_file") or "").is_file():
            if state["model"] is None:  # finished, but its checkpoint is gone: train from scratch
                return None
            self.model.load_state_dict(state["model"])
            for _, module in self._pruned():
                module.set_fixed()
            clear_caches(self.model)
            self.logger.info(set_color(f"[{self._name}] resuming", "yellow") + f" after the pruning stage, from {path}")
            return {**state, "stage": 1}
        self.logger.info(set_color(f"[{self._name}] finished earlier", "yellow") + f": {path}")
        return state

    def _stage1(self, train_data, verbose, show_progress) -> None:
        self._stage = 1
        self.epochs = self.budget_settings.threshold_epochs
        self._reset(train_data)
        try:
            super().fit(train_data, None, verbose=verbose, saved=False, show_progress=show_progress)
        except _BudgetReached:
            pass
        self.stage1_nonzeros, budget = self._nonzeros()
        self.budget_met_by_thresholds = self.stage1_nonzeros <= budget

    @torch.no_grad()
    def _fix_masks(self) -> None:
        for _, module in self._pruned():
            module.fix_mask(module.budget)
        nonzero, budget = self._nonzeros()
        how = "thresholds reached it" if self.budget_met_by_thresholds else "not reached by the thresholds"
        self.logger.info(
            set_color(f"[{self._name}] stage 1", "yellow")
            + f": {self.stage1_epochs} epochs, non-zeros {self.stage1_nonzeros} / budget {budget} ({how}); "
            f"mask fixed at the {nonzero} largest margins |w| - threshold"
        )

    def _reset(self, train_data) -> None:
        """A fresh optimiser and early-stopping state for a stage."""
        self.optimizer = self._build_optimizer()
        self.start_epoch, self.cur_step = 0, 0
        self.best_valid_score = -np.inf if self.valid_metric_bigger else np.inf
        self.best_valid_result, self.train_loss_dict = None, {}

    def extra_summary(self) -> dict:
        tables = {}
        for name, module in self._tables():
            tables[name] = {
                "kind": embedding_kind(module),
                "budget": module.budget,
                "nonzero": module.parameter_count(),
                "dense_parameters": module.dense_parameter_count(),
                "bytes": module.export_bytes(),
                "dense_bytes": module.dense_bytes(),
                "buckets": getattr(module, "buckets", None),
                "meta_elements": getattr(module, "meta_elements", None),
            }
        nonzero, budget = self._nonzeros()
        dense = sum(t["dense_parameters"] for t in tables.values())
        meta = [t["meta_elements"] for t in tables.values()]
        meta_total = sum(meta) if meta and None not in meta else None
        s = self.budget_settings
        return {
            "budget": {
                "method": self._name,
                "memory_budget": s.stated,
                "meta_sparsity": s.meta_sparsity,
                "meta_buckets": s.buckets,
                "budget": budget,
                "nonzero": nonzero,
                "budget_fraction_used": round(nonzero / max(budget, 1), 6),
                # both forms of the budget, as reached: share of the full tables kept, and
                # share of the meta tables P and Q pruned (the authors' count, 2 * b * d')
                "full_table_fraction": round(nonzero / max(dense, 1), 8),
                "meta_elements": meta_total,
                "meta_table_sparsity": None if not meta_total else round(1.0 - nonzero / meta_total, 8),
                "bytes": sum(t["bytes"] for t in tables.values()),
                "dense_bytes": sum(t["dense_bytes"] for t in tables.values()),
                "stage1_epochs": self.stage1_epochs,
                "stage1_nonzeros": self.stage1_nonzeros,
                "budget_met_by_thresholds": self.budget_met_by_thresholds,
                "threshold_schedule": s.schedule,
                "tables": tables,
            }
        }


def _loss_text(loss) -> str:
    if isinstance(loss, tuple):
        return "(" + ", ".join(f"{x:.4f}" for x in loss) + ")"
    return f"{float(loss):.4f}"
