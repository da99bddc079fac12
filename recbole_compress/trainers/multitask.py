"""Training and evaluation of the multi-task CTR/CVR models.

``MultiTaskTrainer``: the weighted sum of the task losses per batch, evaluation of
the funnel metrics (:mod:`recbole_compress.metrics`) and early stopping on
``valid_metric``; the best state is kept (and saved weights-only) and restored for
testing, as RecBole's ``Trainer`` does.

``LT4RecTrainer`` (arXiv 2008.09872): for each task alone, iterative magnitude
pruning of the shared MLP's weight matrices (one global threshold), rewinding to
the common initial weights every round; each task's mask is picked by its
validation metric. Then, from the same initial weights, joint training that
alternates the tasks batch by batch, each step through its own mask only: its
gradients outside the mask are zeroed and no weight (nor Adam moment) outside the
mask moves in that step.
"""

from __future__ import annotations

import copy
import math
import time
from logging import getLogger
from pathlib import Path

import torch
from recbole.trainer import AbstractTrainer
from recbole.utils import early_stopping, set_color
from tqdm import tqdm

from recbole_compress.data.multitask import TaskSettings
from recbole_compress.embeddings.masked import enforce_masks
from recbole_compress.errors import UserError
from recbole_compress.metrics import funnel_metrics
from recbole_compress.run import atomic_torch_save, atomic_write_text, load_checkpoint

CHECKPOINT_FILE = "best.pth"
ROUNDS_TABLE = "lt4rec_rounds.csv"
ROUNDS_PLOT = "lt4rec_rounds.png"


class MultiTaskTrainer(AbstractTrainer):
    """Per-task losses and weights, funnel metrics, early stopping on one task metric."""

    def __init__(self, config, model):
        super().__init__(config, model)
        self.logger = getLogger()
        self.tasks: TaskSettings = model.tasks
        self.epochs = int(config["epochs"])
        self.stopping_step = int(config["stopping_step"])
        self.eval_step = max(1, int(config["eval_step"] or 1))
        self.learning_rate = float(config["learning_rate"])
        self.weight_decay = float(config["weight_decay"] or 0.0)
        self.clip_grad_norm = config["clip_grad_norm"]
        self.device = config["device"]
        self.checkpoint_file = Path(config["checkpoint_dir"]) / CHECKPOINT_FILE
        self.epoch_times: list[float] = []
        self.best_state: dict | None = None
        self.best_epoch: int | None = None
        self.phases: list[dict] = []  # one record per training phase (LT4Rec: every pruning round)

    # -- training ----------------------------------------------------------------

    def _optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.model.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)

    def _train_epoch(self, train_data, epoch_idx, optimizer, show_progress=False, task=None) -> float:
        """One pass over ``train_data``; ``task`` = train that task alone (its loss only)."""
        self.model.train()
        started = time.perf_counter()
        total, batches = 0.0, 0
        iterator = tqdm(train_data, total=len(train_data), ncols=100, desc=f"Train {epoch_idx:>4}") if show_progress else train_data
        for batch in iterator:
            total += self._step(batch, optimizer, task)
            batches += 1
        self.epoch_times.append(time.perf_counter() - started)
        return total / max(batches, 1)

    def _step(self, batch, optimizer, task=None) -> float:
        tasks = None if task is None else [task]
        losses = self.model.task_losses(batch, tasks)
        loss = sum(self.tasks.weights[t] * value for t, value in losses.items()) if task is None else losses[task]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), **self.clip_grad_norm)
        optimizer.step()
        return loss.item()

    def _fit_phase(self, train_data, valid_data, metric, bigger, epoch_fn, label, show_progress=False, callback_fn=None):
        """Train with ``epoch_fn(epoch, optimizer)`` until ``metric`` stops improving on
        validation; the best state is restored. Returns (best score, best result, best epoch)."""
        optimizer = self._optimizer()
        best = -math.inf if bigger else math.inf
        best_result, best_state, best_epoch, steps = None, None, -1, 0
        for epoch in range(self.epochs):
            loss = epoch_fn(epoch, optimizer)
            if (epoch + 1) % self.eval_step:
                continue
            result = self._evaluate_model(valid_data, show_progress)
            score = result[metric]
            if math.isnan(score):
                raise UserError(
                    f"validation {metric} is undefined (one class only among its rows); choose another "
                    "valid_metric or a dataset whose validation split has both labels"
                )
            best, steps, stop, improved = early_stopping(score, best, steps, self.stopping_step, bigger=bigger)
            if improved:
                best_result, best_epoch = result, epoch
                best_state = copy.deepcopy(self.model.state_dict())
            self.logger.info(
                f"{label} epoch {epoch}: train loss {loss:.4f}, valid "
                + ", ".join(f"{k} {v:.4f}" for k, v in result.items())
                + (" *" if improved else "")
            )
            if callback_fn is not None:
                callback_fn(epoch, score)
            if stop:
                break
        if best_state is not None:
            self.model.load_state_dict(best_state)
        return best, best_result, best_epoch

    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):
        return self._joint_phase(
            train_data, valid_data, lambda e, opt: self._train_epoch(train_data, e, opt, show_progress), "joint",
            saved, show_progress, callback_fn,
        )

    def _joint_phase(self, train_data, valid_data, run_epoch, label, saved, show_progress, callback_fn):
        """Train all tasks together to early stop on the task metric; keep the best epoch."""
        started = time.perf_counter()
        score, result, epoch = self._fit_phase(
            train_data, valid_data, self.tasks.valid_metric, self.tasks.valid_bigger, run_epoch, label,
            show_progress, callback_fn,
        )
        self._keep_best(epoch, saved)
        self.phases.append({"phase": "joint", "best_epoch": epoch, "valid": result,
                            "seconds": round(time.perf_counter() - started, 2)})
        return score, result

    def _keep_best(self, epoch, saved) -> None:
        self.best_epoch = epoch
        self.best_state = copy.deepcopy(self.model.state_dict())
        if saved:  # weights only: torch.load(weights_only=True) reads it
            atomic_torch_save({k: v.detach().cpu() for k, v in self.best_state.items()}, self.checkpoint_file)

    # -- evaluation --------------------------------------------------------------

    @torch.no_grad()
    def _evaluate_model(self, eval_data, show_progress=False) -> dict[str, float]:
        self.model.eval()
        clicks, conversions, p_ctrs, p_cvrs = [], [], [], []
        iterator = tqdm(eval_data, total=len(eval_data), ncols=100, desc="Evaluate   ") if show_progress else eval_data
        for batch in iterator:
            p_ctr, p_cvr = self.model.predict_funnel(batch)
            click, conversion = self.model.labels(batch)
            clicks.append(click.cpu()); conversions.append(conversion.cpu())
            p_ctrs.append(p_ctr.cpu()); p_cvrs.append(p_cvr.cpu())
        metrics = funnel_metrics(*(torch.cat(x).numpy() for x in (clicks, conversions, p_ctrs, p_cvrs)))
        return {k: round(v, 6) if not math.isnan(v) else v for k, v in metrics.items()}

    @torch.no_grad()
    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        if load_best_model:
            if model_file is not None:
                self.model.load_state_dict(load_checkpoint(model_file, self.config["checkpoint_dir"], self.device))
            elif self.best_state is not None:
                self.model.load_state_dict(self.best_state)
        self.last_result = self._evaluate_model(eval_data, show_progress)
        return self.last_result

    # -- reporting ---------------------------------------------------------------

    @property
    def epochs_run(self) -> int:
        return len(self.epoch_times)

    @property
    def mean_epoch_time(self) -> float | None:
        return round(sum(self.epoch_times) / len(self.epoch_times), 4) if self.epoch_times else None

    def per_task(self) -> dict:
        """Each task's metrics: the click task's CTR AUC / LogLoss, the conversion task's
        CVR AUC (clicked exposures) and CTCVR AUC, on validation (best epoch) and test."""
        valid = self.phases[-1]["valid"] if self.phases else None
        test = getattr(self, "last_result", None)
        own = (("ctr_auc", "ctr_logloss"), ("cvr_auc", "ctcvr_auc"))
        return {
            field: {split: {k: result[k] for k in keys} for split, result in (("valid", valid), ("test", test)) if result}
            for field, keys in zip(self.tasks.fields, own)
        }

    def extra_summary(self) -> dict:
        return {
            "multitask": {
                "task_label_fields": self.tasks.fields,
                "task_weights": self.tasks.weights,
                "tasks": self.per_task(),
                "best_epoch": self.best_epoch,
                "phases": self.phases,
                **self.model.shared_mlp_usage(),
            }
        }


# -- LT4Rec ----------------------------------------------------------------------

class LT4RecSettings:
    """``prune_rate`` / ``prune_rounds`` / ``target_sparsity`` / ``mask_selection`` /
    ``min_mask_sparsity`` (see properties/model/LT4Rec.yaml), checked."""

    def __init__(self, config):
        self.rounds = int(config["prune_rounds"] or 0)
        if self.rounds < 1:
            raise UserError(f"prune_rounds={config['prune_rounds']} must be at least 1, e.g. --prune_rounds=4")
        rate, target = config["prune_rate"], config["target_sparsity"]
        if rate is None:
            if target is None or not 0.0 < float(target) < 1.0:
                raise UserError(
                    f"target_sparsity={target} must be in (0, 1) when prune_rate is not given, e.g. --target_sparsity=0.8"
                )
            rate = 1.0 - (1.0 - float(target)) ** (1.0 / self.rounds)
        self.rate = float(rate)
        if not 0.0 < self.rate < 1.0:
            raise UserError(f"prune_rate={config['prune_rate']} is outside (0, 1); use e.g. --prune_rate=0.33")
        self.selection = str(config["mask_selection"])
        if self.selection not in ("best_valid", "last"):
            raise UserError(f"mask_selection={self.selection} is not one of best_valid, last")
        self.min_sparsity = float(config["min_mask_sparsity"] or 0.0)
        if not 0.0 <= self.min_sparsity < 1.0:
            raise UserError(f"min_mask_sparsity={self.min_sparsity} must be in [0, 1), e.g. 0.5")
        if not self.candidates():
            raise UserError(
                f"no pruning round reaches min_mask_sparsity={self.min_sparsity}: {self.rounds} rounds at "
                f"prune_rate={self.rate:.4f} end at sparsity {1 - self.remaining(self.rounds):.4f}; "
                "add rounds, raise prune_rate or lower min_mask_sparsity"
            )

    def remaining(self, round_idx: int) -> float:
        return (1.0 - self.rate) ** round_idx

    def candidates(self) -> list[int]:
        """Rounds whose mask may be chosen: pruned at least once and sparse enough."""
        return [r for r in range(1, self.rounds + 1) if 1.0 - self.remaining(r) >= self.min_sparsity - 1e-9]


class LT4RecTrainer(MultiTaskTrainer):
    """Per-task lottery-ticket masks on the shared MLP, then joint sparse-sharing training."""

    def __init__(self, config, model):
        super().__init__(config, model)
        self.settings = LT4RecSettings(config)
        self.rounds: list[dict] = []
        self.output_dir = Path(config["output_dir"] or ".")

    # one training step of one task through its own mask
    def _task_step(self, batch, optimizer, task: int) -> float:
        shared = self.model.shared
        loss = self.model.task_losses(batch, [task])[task] * self.tasks.weights[task]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        originals = shared.originals()
        inactive = [~shared.task_masks(i)[task] for i in range(len(originals))]
        frozen = []
        with torch.no_grad():
            for weight, off in zip(originals, inactive):
                if weight.grad is not None:
                    weight.grad.masked_fill_(off, 0.0)  # exactly zero already; explicit for clarity
                state = optimizer.state.get(weight, {})
                frozen.append((weight.detach().clone(), {k: v.clone() for k, v in state.items()
                                                          if torch.is_tensor(v) and v.shape == weight.shape}))
        if self.clip_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), **self.clip_grad_norm)
        optimizer.step()
        with torch.no_grad():  # weight decay and Adam momentum must not move weights outside the mask
            for weight, off, (before, state_before) in zip(originals, inactive, frozen):
                weight.copy_(torch.where(off, before, weight))
                for key, value in state_before.items():
                    optimizer.state[weight][key].copy_(torch.where(off, value, optimizer.state[weight][key]))
        enforce_masks(self.model, optimizer)
        return loss.item()

    def _alternating_epoch(self, train_data, epoch_idx, optimizer, show_progress=False, tasks=(0, 1)) -> float:
        self.model.train()
        started = time.perf_counter()
        total, steps = 0.0, 0
        iterator = tqdm(train_data, total=len(train_data), ncols=100, desc=f"Train {epoch_idx:>4}") if show_progress else train_data
        for batch in iterator:
            for task in tasks:  # the tasks take turns, batch by batch
                total += self._task_step(batch, optimizer, task)
                steps += 1
        self.epoch_times.append(time.perf_counter() - started)
        return total / max(steps, 1)

    def _rewind(self, init_state: dict) -> None:
        """Initial values for every weight, masks kept; pruned weights zeroed."""
        keep = {k: v for k, v in self.model.state_dict().items() if k.rpartition(".")[2].startswith(("mask", "task_mask_"))}
        state = dict(init_state)
        state.update(keep)
        self.model.load_state_dict(state)
        enforce_masks(self.model)

    def _masks_now(self) -> list:
        return [m.detach().clone() for m in self.model.shared.union_masks()]

    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):
        from recbole_compress.trainers.lth import prune

        model, settings = self.model, self.settings
        init_state = copy.deepcopy(model.state_dict())  # the common initialisation of every round and task
        chosen = []
        for task in (0, 1):
            metric = self.tasks.task_metrics[task]
            name = self.tasks.fields[task]
            model.shared.reset_task_masks()
            for union in model.shared.union_masks():
                union.fill_(True)
            self._rewind(init_state)
            candidates = []
            for r in range(settings.rounds + 1):
                started = time.perf_counter()
                if r > 0:
                    prune(model, settings.rate, scope="global", criterion="magnitude")
                    self._rewind(init_state)
                epochs_before = self.epochs_run
                score, result, epoch = self._fit_phase(
                    train_data, valid_data, metric, True,
                    lambda e, opt: self._alternating_epoch(train_data, e, opt, show_progress, tasks=(task,)),
                    f"[{name} r{r}]", show_progress,
                )
                used = sum(int(m.sum()) for m in model.shared.union_masks())
                row = {
                    "task": name, "round": r, "remaining": round(settings.remaining(r), 6), "mlp_weights": used,
                    f"valid_{metric}": score, "best_epoch": epoch, "epochs": self.epochs_run - epochs_before,
                    "seconds": round(time.perf_counter() - started, 2),
                }
                self.rounds.append(row)
                self.logger.info(set_color("lt4rec", "green") + f": task {name} round {r}/{settings.rounds}: "
                                 f"remaining {row['remaining']:.4f} ({used} MLP weights), valid {metric} {score:.4f}, "
                                 f"best epoch {epoch}")
                if r in settings.candidates():
                    candidates.append((r, score, self._masks_now()))
            pick = candidates[-1] if settings.selection == "last" else max(candidates, key=lambda c: c[1])
            chosen.append(pick[2])
            for row in self.rounds:
                if row["task"] == name:
                    row["chosen"] = row["round"] == pick[0]
            self.logger.info(set_color("lt4rec", "green") + f": task {name} uses the mask of round {pick[0]} "
                             f"(valid {metric} {pick[1]:.4f})")
        # joint training from the common initialisation, each task through its own mask
        model.shared.set_task_masks(chosen)
        self._rewind(init_state)
        usage = model.shared.usage()
        self.logger.info(set_color("lt4rec", "green") + f": joint training with {usage['mlp_weights_used']} of "
                         f"{usage['mlp_weights']} MLP weights ({usage['mlp_used_fraction']:.1%}), "
                         f"{usage['mlp_weights_shared']} shared by both tasks")
        for layer in usage["layers"]:
            self.logger.info(f"  layer {layer['layer']} {layer['shape']}: per task {layer['per_task']}, used "
                             f"{layer['used']} of {layer['weights']}, shared {layer['shared']} (overlap {layer['overlap']:.3f})")
        score, result = self._joint_phase(
            train_data, valid_data, lambda e, opt: self._alternating_epoch(train_data, e, opt, show_progress),
            "[joint]", saved, show_progress, callback_fn,
        )
        self._write_rounds()
        return score, result

    def _write_rounds(self) -> None:
        if not self.rounds:
            return
        keys = list(dict.fromkeys(k for row in self.rounds for k in row))
        lines = [",".join(keys)] + [",".join(str(row.get(k, "")) for k in keys) for row in self.rounds]
        atomic_write_text(self.output_dir / ROUNDS_TABLE, "\n".join(lines) + "\n")
        from recbole_compress.plots import plot_task_rounds

        plot_task_rounds(self.rounds, self.output_dir / ROUNDS_PLOT)

    def extra_summary(self) -> dict:
        summary = super().extra_summary()
        summary["lt4rec"] = {
            "prune_rate": self.settings.rate,
            "prune_rounds": self.settings.rounds,
            "mask_selection": self.settings.selection,
            "min_mask_sparsity": self.settings.min_sparsity,
            "rounds": self.rounds,
            "rounds_table": str(self.output_dir / ROUNDS_TABLE),
            "rounds_plot": str(self.output_dir / ROUNDS_PLOT),
        }
        return summary
