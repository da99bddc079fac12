"""Lottery-ticket search: train -> prune -> rewind -> repeat, on top of RecBole's ``Trainer.fit``.

Round 0 trains the dense model (every mask full); round r prunes, rewinds the
surviving weights and trains again with a fresh optimiser. Each finished round
is checkpointed (weights-only), so rerunning the same command resumes after the
last finished round, and every round re-seeds, so a resumed run finds the same
ticket as an uninterrupted one.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from recbole.utils import init_seed, set_color

from recbole_compress.embeddings.base import artifact_bytes
from recbole_compress.export import export_model
from recbole_compress.embeddings.masked import enforce_masks, mask_state_keys, masked_tensors
from recbole_compress.errors import UserError
from recbole_compress.run import atomic_torch_save, check_fingerprint, config_fingerprint, load_checkpoint, write_csv

STATE_FILE = "state.pt"
TABLE_FILE = "tickets.csv"
PLOT_FILE = "tickets.png"
_CACHES = ("restore_user_e", "restore_item_e")  # LightGCN/NGCF cache propagated tables


# -- configuration ----------------------------------------------------------------

class LTHSettings:
    """The ``prune_*`` keys of a config, checked (see properties/model/LTH.yaml)."""

    def __init__(self, config):
        self.rate = float(config["prune_rate"])
        if not 0.0 < self.rate < 1.0:
            raise UserError(f"prune_rate={config['prune_rate']} is outside (0, 1); use e.g. --prune_rate=0.2")
        self.scope = _choice(config, "prune_scope", ("global", "per_table"))
        self.criterion = _choice(config, "prune_criterion", ("magnitude", "random"))
        self.schedule = _choice(config, "prune_schedule", ("iterative", "oneshot"))
        self.reinit = bool(config["prune_reinit"])
        self.joint_init = bool(config["joint_init"])  # applied when the model is built (models/lth.py)
        self.rewind_epoch = int(config["rewind_epoch"] or 0)
        if self.rewind_epoch < 0:
            raise UserError(f"rewind_epoch={self.rewind_epoch} is negative; use 0 (initial weights) or k > 0")
        self.tolerance = float(config["ticket_tolerance"] or 0.0)
        # winner: the sparsest round that matches dense on validation (the paper's ticket);
        # sparsest: the last round, whatever its score (a memory budget that must be met)
        self.select = _choice(config, "ticket_select", ("winner", "sparsest")) if config["ticket_select"] else "winner"
        self.rounds = self._rounds(config)

    def _rounds(self, config) -> int:
        rounds = config["prune_rounds"]
        target = config["target_sparsity"]
        if target is not None:
            target = float(target)
            if not 0.0 < target < 1.0:
                raise UserError(f"target_sparsity={target} is outside (0, 1); use e.g. --target_sparsity=0.8")
            needed = math.ceil(math.log(1.0 - target) / math.log(1.0 - self.rate) - 1e-9)
            if "prune_rounds" in config.external_config_dict and int(rounds) < needed:
                reached = 1.0 - (1.0 - self.rate) ** int(rounds)
                raise UserError(
                    f"target_sparsity={target} is unreachable: {rounds} rounds at prune_rate={self.rate} "
                    f"reach {reached:.4f}; use --prune_rounds={needed} or a larger --prune_rate"
                )
            return needed if "prune_rounds" not in config.external_config_dict else int(rounds)
        if rounds is None or int(rounds) < 1:
            raise UserError(f"prune_rounds={rounds} must be a positive number of pruning rounds, e.g. --prune_rounds=8")
        return int(rounds)

    def remaining(self, round_idx: int) -> float:
        return (1.0 - self.rate) ** round_idx


def _choice(config, key, allowed):
    value = str(config[key])
    if value not in allowed:
        raise UserError(f"{key}={value} is not one of {', '.join(allowed)}")
    return value


# -- pruning ---------------------------------------------------------------------------

@torch.no_grad()
def prune(model, fraction: float, scope: str = "global", criterion: str = "magnitude", generator=None) -> int:
    """Remove ``fraction`` of the surviving weights of every masked tensor: those
    of smallest magnitude (or at random), over all tensors at once (``global``,
    the paper's single threshold) or tensor by tensor. Returns the count removed."""
    entries = [(orig, mask) for _, orig, mask in masked_tensors(model)]
    if not entries:
        raise UserError(f"{type(model).__name__} has no masked tensor to prune")
    groups = [entries] if scope == "global" else [[e] for e in entries]
    removed = 0
    for group in groups:
        alive = [(mask.mask & mask.prunable()) for _, mask in group]
        scores = []
        for (orig, _), keep in zip(group, alive):
            if criterion == "magnitude":
                scores.append(orig.detach().abs()[keep].float().cpu())
            else:
                scores.append(torch.rand(int(keep.sum()), generator=generator))
        flat = torch.cat(scores)
        n_remove = int(round(fraction * flat.numel()))
        if n_remove == 0:
            continue
        drop = torch.zeros(flat.numel(), dtype=torch.bool)
        drop[torch.topk(flat, n_remove, largest=False).indices] = True
        offset = 0
        for (orig, mask), keep in zip(group, alive):
            count = int(keep.sum())
            positions = keep.nonzero(as_tuple=True)
            chosen = drop[offset : offset + count].to(mask.mask.device)
            mask.mask[tuple(p[chosen] for p in positions)] = False
            offset += count
        removed += n_remove
    enforce_masks(model)
    return removed


def weights_state(model) -> dict[str, torch.Tensor]:
    """The model's values without its masks (what rewinding restores)."""
    masks = mask_state_keys(model)
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k not in masks}


def clear_caches(model) -> None:
    for attr in _CACHES:
        if getattr(model, attr, None) is not None:
            setattr(model, attr, None)


def mask_fraction(model) -> tuple[int, int]:
    """(surviving, prunable) weights over all masked tensors."""
    alive = total = 0
    for _, _, mask in masked_tensors(model):
        prunable = mask.prunable()
        alive += int((mask.mask & prunable).sum())
        total += int(prunable.sum())
    return alive, total


# -- the trainer mixin ---------------------------------------------------------------------

class LTHTrainerMixin:
    """Round loop of iterative magnitude pruning with rewinding, around ``Trainer.fit``."""

    epoch_resume = False  # resumes at its own rounds (state.pt), not inside one

    keep_optimizer = False  # every round starts a fresh optimiser: round checkpoints need weights only

    def __init__(self, config, model):
        super().__init__(config, model)
        self.lth = LTHSettings(config)
        self.out_dir = Path(config["output_dir"] or config["checkpoint_dir"])
        self.lth_dir = self.out_dir / "lth"
        self.test_data = None
        self.rows: list[dict] = []
        self.ticket_round: int | None = None
        self._rewind_state = None
        self._round = 0

    def attach_test_data(self, test_data) -> None:
        """Test loader, for the test metric of every round (selection uses validation only)."""
        self.test_data = test_data

    # Masked weights stay exactly zero without touching them every step: the
    # parametrisation zeroes their gradient, and every round starts a fresh
    # optimiser, so Adam's moments (and L2 / weight decay of a zero) stay zero
    # there too. Re-applying the masks after each epoch is a cheap safety net;
    # doing it after every step cost ~30% of a LightGCN epoch on TikTok.
    def _train_epoch(self, train_data, epoch_idx, *args, **kwargs):
        result = super()._train_epoch(train_data, epoch_idx, *args, **kwargs)
        enforce_masks(self.model, self.optimizer)
        if self._round == 0 and self.lth.rewind_epoch and epoch_idx + 1 == self.lth.rewind_epoch:
            self._rewind_state = weights_state(self.model)  # late rewinding (Frankle et al. 2019)
        return result

    def _generate_train_loss_output(self, epoch_idx, s_time, e_time, losses):
        line = super()._generate_train_loss_output(epoch_idx, s_time, e_time, losses)
        return f"[round {self._round}/{self.lth.rounds}] {line}"

    def _save_checkpoint(self, epoch, *args, **kwargs):
        self._best_epoch = epoch
        return super()._save_checkpoint(epoch, *args, **kwargs)

    # -- the round loop --------------------------------------------------------------------
    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):
        if valid_data is None:
            raise UserError("lottery-ticket search needs a validation split to select tickets")
        self.lth_dir.mkdir(parents=True, exist_ok=True)
        seed = int(self.config["seed"])
        fingerprint = config_fingerprint(self.config)
        start = self._resume(fingerprint)
        if start == 0:
            self._rewind_state = weights_state(self.model)  # epoch-0 weights
        dense_weights = None
        for r in range(start, self.lth.rounds + 1):
            self._round = r
            self._seed_round(seed, r, train_data)
            if r > 0:
                if self.lth.schedule == "oneshot":
                    dense_weights = dense_weights or self._load_round(0)
                    self._load_into_model(dense_weights, masks_too=False)
                    self._reset_masks()
                    fraction = 1.0 - self.lth.remaining(r)
                else:
                    fraction = self.lth.rate
                generator = torch.Generator().manual_seed(seed * 1000 + r)
                prune(self.model, fraction, self.lth.scope, self.lth.criterion, generator)
                self._rewind(train_data)
            self._train_round(r, train_data, valid_data, verbose, show_progress, callback_fn)
            self._save_state(fingerprint, r)
        return self._select_ticket()

    def _train_round(self, r, train_data, valid_data, verbose, show_progress, callback_fn):
        self.optimizer = self._build_optimizer()
        self.start_epoch, self.cur_step = 0, 0
        self.best_valid_score = -np.inf if self.valid_metric_bigger else np.inf
        self.best_valid_result, self.train_loss_dict = None, {}
        self._best_epoch = -1
        self.saved_model_file = str(self.lth_dir / f"round-{r}.pth")
        first_epoch = self.epochs_run
        score, valid_result = super().fit(
            train_data, valid_data, verbose=verbose, saved=True, show_progress=show_progress, callback_fn=callback_fn
        )
        # the round's best (validation) weights are what pruning and reporting use
        self._load_into_model(self._load_round(r), masks_too=True)
        test_result = self._evaluate_test()
        alive, total = mask_fraction(self.model)
        artifact = export_model(self.model)
        times = self.epoch_times[first_epoch:]
        row = {
            "round": r,
            "remaining": alive / total,
            "nonzero_pruned_weights": alive,
            "model_bytes": artifact_bytes(artifact["tensors"]),
            "valid_score": float(score),
            **{f"valid_{k}": float(v) for k, v in (valid_result or {}).items()},
            **{f"test_{k}": float(v) for k, v in (test_result or {}).items()},
            "best_epoch": int(self._best_epoch) + 1,
            "epochs": len(times),
            "epoch_time_s": round(sum(times) / max(len(times), 1), 4),
        }
        self.rows.append(row)
        metric = self.valid_metric
        self.logger.info(
            set_color(f"[LTH] round {r}/{self.lth.rounds}", "yellow")
            + f": remaining {row['remaining']:.4f}, params {alive}/{total}, bytes {row['model_bytes']}, "
            f"valid {metric} {row.get('valid_' + metric, float('nan')):.4f}, "
            f"test {metric} {row.get('test_' + metric, float('nan')):.4f}, best epoch {row['best_epoch']}"
        )

    def _evaluate_test(self):
        if self.test_data is None:
            return {}
        return self.evaluate(self.test_data, load_best_model=False, show_progress=False)

    def _seed_round(self, seed, r, train_data) -> None:
        # every round starts from the same random state whether or not the run was resumed
        init_seed(seed + r, self.config["reproducibility"])
        generator = getattr(train_data, "generator", None)
        if generator is not None:
            generator.manual_seed(seed + r)

    def _rewind(self, train_data) -> None:
        if self.lth.reinit:  # control: the mask on a fresh random initialisation
            init_seed(int(self.config["seed"]) + 7919 * self._round, self.config["reproducibility"])
            fresh = type(self.model)(self.config, train_data._dataset).to(self.device)
            state = weights_state(fresh)
        else:
            state = self._rewind_state
        self._load_into_model(state, masks_too=False)

    def _reset_masks(self) -> None:
        for _, _, mask in masked_tensors(self.model):
            mask.mask.copy_(mask.prunable())

    def _load_round(self, r) -> dict:
        checkpoint = load_checkpoint(self.lth_dir / f"round-{r}.pth", self.out_dir, map_location=self.device)
        return checkpoint["state_dict"]

    def _load_into_model(self, state, masks_too: bool) -> None:
        if not masks_too:
            masks = mask_state_keys(self.model)
            state = {k: v for k, v in state.items() if k not in masks}
        self.model.load_state_dict(state, strict=masks_too)
        enforce_masks(self.model)
        clear_caches(self.model)

    # -- checkpoint and resume ------------------------------------------------------------
    def _save_state(self, fingerprint, r) -> None:
        atomic_torch_save(
            {
                "fingerprint": fingerprint,
                "rounds_done": r + 1,
                "rows": self.rows,
                "rewind_state": self._rewind_state,
                "epoch_times": list(self.epoch_times),
            },
            self.lth_dir / STATE_FILE,
        )
        self._write_table()

    def _resume(self, fingerprint) -> int:
        path = self.lth_dir / STATE_FILE
        if not path.is_file():
            return 0
        state = load_checkpoint(path, self.out_dir, map_location=self.device)
        check_fingerprint(state["fingerprint"], self.config, path)
        done = int(state["rounds_done"])
        self.rows = list(state["rows"])[:done]
        self._rewind_state = state["rewind_state"]
        self.epoch_times = list(state.get("epoch_times", []))
        self._load_into_model(self._load_round(done - 1), masks_too=True)
        self.logger.info(set_color("[LTH] resuming", "yellow") + f" after round {done - 1} from {path}")
        return done

    # -- the result -------------------------------------------------------------------------
    def _select_ticket(self):
        """The winning ticket: the sparsest round whose validation score reaches the
        dense model's (within ``ticket_tolerance``). Test scores play no part."""
        dense = self.rows[0]["valid_score"]
        bigger = self.valid_metric_bigger
        bar = dense * (1.0 - self.lth.tolerance) if bigger else dense * (1.0 + self.lth.tolerance)
        winners = [
            row for row in self.rows[1:] if (row["valid_score"] >= bar if bigger else row["valid_score"] <= bar)
        ]
        if self.lth.select == "sparsest":
            winners = [self.rows[-1]]
        chosen = min(winners, key=lambda row: row["remaining"]) if winners else self.rows[0]
        self.ticket_round = chosen["round"] if winners else None
        self._load_into_model(self._load_round(chosen["round"]), masks_too=True)
        self.saved_model_file = str(self.lth_dir / f"round-{chosen['round']}.pth")
        self._plot()
        if self.lth.select == "sparsest":
            self.logger.info(
                set_color("[LTH] sparsest round", "yellow")
                + f" (ticket_select: sparsest): round {chosen['round']}, remaining {chosen['remaining']:.4f}, "
                f"valid {chosen['valid_score']:.4f} (dense {dense:.4f})"
            )
        elif winners:
            self.logger.info(
                set_color("[LTH] winning ticket", "yellow")
                + f": round {chosen['round']}, remaining {chosen['remaining']:.4f}, valid {chosen['valid_score']:.4f} "
                f">= dense {dense:.4f}"
            )
        else:
            self.logger.info(set_color("[LTH] no winning ticket", "yellow") + ": no pruned round reached the dense validation score")
        valid_result = {k[len("valid_"):]: v for k, v in chosen.items() if k.startswith("valid_") and k != "valid_score"}
        return chosen["valid_score"], valid_result

    def _write_table(self) -> None:
        if self.rows:
            write_csv(self.rows, self.out_dir / TABLE_FILE)

    def _plot(self) -> None:
        from recbole_compress.plots import plot_tickets

        plot_tickets(self.rows, self.valid_metric, self.out_dir / PLOT_FILE,
                     title=f"{self.config['model']} on {self.config['dataset']}", winner=self.ticket_round)

    def extra_summary(self) -> dict:
        ticket = next((row for row in self.rows if row["round"] == self.ticket_round), None)
        return {
            "lth": {
                "prune_rate": self.lth.rate,
                "rounds": self.lth.rounds,
                "scope": self.lth.scope,
                "criterion": self.lth.criterion,
                "schedule": self.lth.schedule,
                "rewind_epoch": self.lth.rewind_epoch,
                "reinit": self.lth.reinit,
                "joint_init": self.lth.joint_init,
                "ticket_tolerance": self.lth.tolerance,
                "select": self.lth.select,
                "winning_ticket": ticket,
                "dense": self.rows[0] if self.rows else None,
                "table": TABLE_FILE,
                "plot": PLOT_FILE,
                "rounds_table": self.rows,
            }
        }
