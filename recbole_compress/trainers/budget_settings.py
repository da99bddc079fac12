"""The settings of a memory budget (CERP, PEP, QR), checked before any data is loaded.

The budget has two forms: ``memory_budget`` (a share of the full tables, or a count of
non-zeros, split over the tables in proportion to their size) and the authors' form
``meta_sparsity`` (the share of the meta tables P and Q pruned, each b x d' with b from
``meta_buckets``: a table keeps (1 - s) * 2 * b * d' non-zeros). The keys are explained
in properties/model/CERP.yaml.
"""

from __future__ import annotations

import math

from recbole_compress.embeddings.cerp import COMBINES
from recbole_compress.errors import UserError

def _number(config, key, default, low=None, high=None, kind=float, hint=""):
    value = config[key]
    if value is None:
        return default
    try:
        value = kind(value)
    except (TypeError, ValueError):
        raise UserError(f"{key}={config[key]} is not a number; {hint or 'see properties/model/CERP.yaml'}") from None
    if (low is not None and value < low) or (high is not None and value > high):
        raise UserError(f"{key}={value} is outside [{low}, {high}]; {hint or 'see properties/model/CERP.yaml'}")
    return value


SCHEDULES = ("pace", "decay")
REDUCTIONS = ("sum", "mean")


def _choice(config, key, allowed, default):
    value = config[key]
    value = default if value is None else str(value)
    if value not in allowed:
        raise UserError(f"{key}={value} is not one of {', '.join(allowed)}")
    return value


def _stated_by_user(config, key) -> bool:
    """Whether ``key`` was set by the user (files, dict, command line), not a property default."""
    external = getattr(config, "external_config_dict", None)
    return external is not None and key in external


class BudgetSettings:
    """``memory_budget`` (or ``meta_sparsity``) and the CERP/PEP/QR keys of a config,
    checked (see properties/model/CERP.yaml)."""

    def __init__(self, config):
        self.meta_sparsity = _number(config, "meta_sparsity", None, 0.0, 1.0, float,
                                     "meta_sparsity is the share of P and Q pruned, e.g. --meta_sparsity=0.95")
        if self.meta_sparsity is not None and not 0.0 < self.meta_sparsity < 1.0:
            raise UserError(f"meta_sparsity={self.meta_sparsity} is outside (0, 1); use e.g. --meta_sparsity=0.95")
        if self.meta_sparsity is not None and _stated_by_user(config, "memory_budget"):
            raise UserError(
                "memory_budget and meta_sparsity both state the budget; give one: memory_budget (share of the full "
                "tables, or a count) or meta_sparsity (share of the meta tables P and Q pruned)"
            )
        stated = config["memory_budget"] if self.meta_sparsity is None else None
        self.stated = stated
        self.fraction = self.count = None
        if self.meta_sparsity is None:
            try:
                value = float(stated)
            except (TypeError, ValueError):
                value = float("nan")
            if not value > 0 or value == 1 or (value > 1 and value != int(value)):
                raise UserError(
                    f"memory_budget={stated} is neither a fraction of the dense tables in (0, 1) nor a whole count "
                    "of non-zeros > 1; use e.g. --memory_budget=0.2 or --memory_budget=50000"
                )
            self.fraction = value if value < 1 else None
            self.count = int(value) if value > 1 else None
        self.combine = str(config["meta_combine"] or "sum")
        if self.combine not in COMBINES:
            raise UserError(f"meta_combine={self.combine} is not one of {', '.join(COMBINES)}")
        self.buckets = _buckets(config)
        if self.meta_sparsity is not None and self.buckets is None:
            raise UserError(
                "meta_sparsity counts over the meta tables, whose rows meta_buckets sets; give --meta_buckets=B "
                "(rows of P and Q per table) or a fraction of each table's entities, e.g. --meta_buckets=0.0141"
            )
        self.density = _number(config, "meta_density", 0.5, 1e-6, 1.0)
        self.threshold_init = _number(config, "threshold_init", -6.0)
        self.schedule = _choice(config, "threshold_schedule", SCHEDULES, "pace")
        self.pace = _number(config, "threshold_pace", 0.01, 0.0, None)
        self.threshold_weight_decay = _number(config, "threshold_weight_decay", 1e-5, 0.0, None)
        self.threshold_lr = _number(config, "threshold_learning_rate", None, 0.0, None)
        self.threshold_epochs = _number(config, "threshold_epochs", 50, 1, None, int)
        self.reg_weight = _number(config, "cerp_reg_weight", 1.0, 0.0, None)
        self.reg_decay = _number(config, "cerp_reg_decay", 0.5, 0.0, 1.0)
        self.reg_eta = _number(config, "cerp_reg_eta", 100.0, 0.0, None)
        self.reg_reduction = _choice(config, "cerp_reg_reduction", REDUCTIONS, "sum")

    def total(self, dense: int) -> int:
        """The budget in non-zeros, for compressed tables of ``dense`` elements
        (the ``memory_budget`` form; the ``meta_sparsity`` form is per table)."""
        return self.count if self.count is not None else int(round(self.fraction * dense))

    def buckets_for(self, entities: int) -> int | None:
        """b for a table of ``entities`` rows: the stated count, or the stated fraction of
        the entities (never below ceil(sqrt(N)), where two entities would share both rows);
        None: derive it from the budget (``meta_density``)."""
        if self.buckets is None:
            return None
        if self.buckets >= 1:
            return int(self.buckets)
        smallest = math.isqrt(entities - 1) + 1 if entities > 1 else 1
        return max(math.ceil(self.buckets * entities), smallest)

    def meta_share(self, entities: int, cols: int) -> int:
        """``meta_sparsity``: the non-zeros a table keeps, (1 - s) * 2 * b * d' (the authors'
        count over the two meta tables P and Q, each b x d')."""
        return int(round((1.0 - self.meta_sparsity) * meta_elements(self.buckets_for(entities), cols)))


def meta_elements(buckets: int, cols: int) -> int:
    """Elements of the two meta tables P and Q (b x d' each), as the authors count them."""
    return 2 * int(buckets) * int(cols)


def _buckets(config) -> float | None:
    """``meta_buckets``: empty, a whole count b >= 1, or a fraction in (0, 1) of each table's entities."""
    value = config["meta_buckets"]
    if value is None:
        return None
    hint = "use b >= sqrt(rows), a fraction of the entities in (0, 1), or leave it empty"
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(f"meta_buckets={value} is not a number; {hint}") from None
    if not number > 0 or (number >= 1 and number != int(number)):
        raise UserError(f"meta_buckets={value} is neither a whole count >= 1 nor a fraction in (0, 1); {hint}")
    return int(number) if number >= 1 else number


