"""A memory budget in bytes -> each method's settings, met by construction.

A budget is a fraction of the dense bytes of the compressed tables (the user and
item ID tables a method replaces, float32). Each planner finds the largest setting
of its method whose exported tables fit: the number of kept values for the pruning
methods (tickets, PEP, CERP, the QR ticket), the table sizes for the QR trick, the
code length for RecJPQ. Sizes come from the real table modules, built (untrained)
at the candidate setting and exported; for pruned tables the values and index
bytes are bounded from the kept count, since which elements survive is known only
after training (the bound is exact whenever all parts pick the same encoding).

The authors of CERP state budgets as the sparsity of their meta tables instead
(``meta_sparsity`` s with ``meta_buckets`` b: (1 - s) * 2 * b * d' non-zeros per table);
:func:`meta_sparsity_budget` turns such a budget into the byte budget the comparison
plans every method at, so CERP keeps exactly the authors' count there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from recbole_compress.errors import UserError


@dataclass(frozen=True)
class Table:
    """One ID table to compress: its name in the model, rows ([PAD] included), width."""

    name: str
    rows: int
    dim: int

    @property
    def dense_bytes(self) -> int:
        return self.rows * self.dim * 4


@dataclass
class Plan:
    """A method's settings for one budget (``overrides``), the model that runs them, and
    the planned upper bound on the tables' exported bytes; or why it cannot fit."""

    method: str
    model: str
    budget: float
    max_bytes: int
    overrides: dict = field(default_factory=dict)
    planned_bytes: int | None = None
    reason: str | None = None

    @property
    def feasible(self) -> bool:
        return self.reason is None


class CannotFit(Exception):
    """The method has no setting whose tables fit the budget (the message says why)."""


def _smallest_buildable(size, low: int, high: int) -> int | None:
    """The smallest count in [low, high] at which the method can build its tables at all
    (``size(count)`` is not None); buildable counts form an upper interval."""
    first, probe = low, low
    while size(probe) is None:
        if probe >= high:
            return None
        first, probe = probe + 1, min(high, probe * 2)
    while first < probe:
        mid = (first + probe) // 2
        if size(mid) is None:
            first = mid + 1
        else:
            probe = mid
    return probe


def _largest(fits, low: int, high: int) -> int | None:
    """The largest k in [low, high] with fits(k) (fits is monotone: true, then false)."""
    if high < low or not fits(low):
        return None
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return low


# -- planners ------------------------------------------------------------------------------------

def _method(name: str):
    """The registered method whose hooks size its tables."""
    from recbole_compress.registry import compression_methods

    return compression_methods()[name]


def _budget_config(method: str, extra: dict | None = None):
    """The settings the CERP/PEP/QR table builders read, from the method's property file."""
    import yaml

    from recbole_compress.config import properties_dir
    from recbole_compress.registry import PlanSettings

    settings = PlanSettings(yaml.safe_load((properties_dir() / "model" / f"{method}.yaml").read_text()) or {})
    settings.update(extra or {})
    return settings


def _prunable(tables: list[Table]) -> int:
    return sum((t.rows - 1) * t.dim for t in tables)  # [PAD] rows are never kept


def plan_ticket(tables, max_bytes, settings):
    """One-shot magnitude ticket on the dense tables: keep the K largest values."""
    lth = _method("LTH")

    def size(kept):
        return lth.exported_table_bytes(tables, kept, settings)

    total = _prunable(tables)
    kept = _largest(lambda k: size(k) <= max_bytes, 1, total - 1)
    if kept is None:
        raise CannotFit(f"even one kept value needs {size(1)} bytes of index")
    rate = (total - kept) / total
    while total - int(round(rate * total)) > kept:  # the trainer rounds rate * total
        rate = math.nextafter(rate, 1.0)
    overrides = {"prune_schedule": "oneshot", "prune_rounds": 1, "prune_rate": rate, "ticket_select": "sparsest",
                 "target_sparsity": None}
    return overrides, size(total - int(round(rate * total)))


def _plan_budget_method(name):
    def plan(tables, max_bytes, settings):
        method = _method(name)
        config = _budget_config(name, settings)
        total = _prunable(tables)

        def size(count):
            return method.exported_table_bytes(tables, count, config)

        def fits(count):
            found = size(count)
            return found is not None and found <= max_bytes

        low = _smallest_buildable(size, min(t.dim for t in tables) * len(tables), total - 1)
        count = None if low is None else _largest(fits, low, total - 1)
        if count is None:
            raise CannotFit(f"its smallest tables need {size(low)} bytes" if low else "no table size of this method fits")
        return {"memory_budget": count}, size(count)

    plan.__doc__ = f"{name} tables sized (and pruned) to ``memory_budget`` non-zeros."
    return plan


def plan_qr_ticket(tables, max_bytes, settings):
    """Composition: QR tables as large as fit once a one-shot magnitude ticket keeps
    ``compose_keep`` (default 0.5) of their values, i.e. about twice what the budget holds dense."""
    keep = float(settings.get("compose_keep", 0.5))
    if not 0.0 < keep < 1.0:
        raise UserError(f"compose_keep={keep} is outside (0, 1); use e.g. --compose_keep=0.5")
    qr, lth = _method("QR"), _method("LTH")
    config = _budget_config("QR", settings)

    def size(count):
        modules = qr.untrained_tables(tables, count, config)
        return None if modules is None else lth.composed_table_bytes(modules, keep, config)

    def fits(count):
        found = size(count)
        return found is not None and found <= max_bytes

    low = _smallest_buildable(size, min(t.dim for t in tables) * len(tables), _prunable(tables) - 1)
    count = None if low is None else _largest(fits, low, _prunable(tables) - 1)
    if count is None:
        raise CannotFit("its smallest quotient-remainder tables do not fit even when pruned")
    overrides = {"memory_budget": count, "prune_schedule": "oneshot", "prune_rounds": 1, "prune_rate": 1.0 - keep,
                 "ticket_select": "sparsest", "target_sparsity": None}
    return overrides, size(count)


def plan_jpq(tables, max_bytes, settings):
    """RecJPQ: the code (length m dividing d, and sub-embeddings per split) that carries
    the most bits per item, m * log2(centroids), within the budget; ties: more
    centroids. A longer code at 256 centroids is the paper's axis; fewer centroids
    let the codebooks (centroids x d numbers) fit small budgets."""
    from recbole_compress.embeddings.jpq import MAX_CENTROIDS

    jpq = _method("JPQ")
    most = min(int(settings.get("jpq_centroids") or MAX_CENTROIDS), MAX_CENTROIDS)
    dims = {t.dim for t in tables}
    if len(dims) != 1:
        raise CannotFit("tables of different widths")
    dim = dims.pop()
    best, smallest = None, None
    for centroids in (c for c in (256, 128, 64, 32, 16) if c <= most):
        for m in (m for m in range(1, dim + 1) if dim % m == 0):
            size = jpq.exported_table_bytes(tables, (m, centroids), settings)
            smallest = size if smallest is None else min(smallest, size)
            key = (m * math.log2(centroids), centroids)
            if size <= max_bytes and (best is None or key > best[0]):
                best = (key, {"jpq_code_length": m, "jpq_centroids": centroids}, size)
    if best is None:
        raise CannotFit(f"its smallest codes and codebooks need {smallest} bytes")
    return best[1], best[2]


# method -> (model suffix, planner); the composition is its own method
PLANNERS = {
    "LTH": ("LTH", plan_ticket),
    "PEP": ("PEP", _plan_budget_method("PEP")),
    "CERP": ("CERP", _plan_budget_method("CERP")),
    "QR": ("QR", _plan_budget_method("QR")),
    "QR+LTH": ("QR_LTH", plan_qr_ticket),
    "JPQ": ("JPQ", plan_jpq),
}


def plan(method: str, backbone: str, tables: list[Table], budget: float, settings: dict | None = None) -> Plan:
    """Settings of ``method`` on ``backbone`` whose compressed tables fit ``budget``
    (a fraction of the tables' dense bytes)."""
    if method not in PLANNERS:
        raise UserError(f"unknown method '{method}' for a comparison; choose from {', '.join(PLANNERS)}")
    if not 0.0 < budget < 1.0:
        raise UserError(f"budget {budget} is outside (0, 1); budgets are fractions of the dense tables' bytes, e.g. 0.05")
    if (settings or {}).get("meta_sparsity") is not None:
        raise UserError(
            "a comparison plans every method at byte budgets, not meta_sparsity; turn each meta sparsity into "
            "its byte budget (recbole_compress.budgets.meta_sparsity_budget) and give those as the budgets"
        )
    suffix, planner = PLANNERS[method]
    max_bytes = int(budget * sum(t.dense_bytes for t in tables))
    result = Plan(method, f"{backbone}_{suffix}", budget, max_bytes)
    try:
        result.overrides, result.planned_bytes = planner(tables, max_bytes, dict(settings or {}))
    except CannotFit as why:
        result.reason = f"cannot fit {max_bytes} bytes: {why}"
    return result


# -- the authors' form of a budget ------------------------------------------------------------

@dataclass(frozen=True)
class MetaBudget:
    """CERP's tables at a meta sparsity: the kept count, their exported bytes (a bound
    from the count), the dense tables' elements and bytes, and each table's b."""

    meta_sparsity: float
    kept: int
    table_bytes: int
    dense_elements: int
    dense_bytes: int
    buckets: tuple[int, ...]

    @property
    def budget(self) -> float:
        """The byte budget (fraction of the dense bytes) that holds exactly these tables;
        half a byte of slack so that int(budget * dense_bytes) is table_bytes despite rounding."""
        return (self.table_bytes + 0.5) / self.dense_bytes

    @property
    def full_table_fraction(self) -> float:
        """The kept values as a share of the full tables' elements ([PAD] rows excluded)."""
        return self.kept / self.dense_elements


def meta_sparsity_budget(tables: list[Table], meta_sparsity: float, settings: dict | None = None) -> MetaBudget:
    """The byte budget at which CERP keeps exactly what the authors' ``meta_sparsity``
    keeps ((1 - s) * 2 * b * d' per table, b from ``meta_buckets`` in ``settings``).
    Planned at ``.budget``, CERP gets this count and every other method the same bytes."""
    from recbole_compress.models.cerp import untrained_tables

    if not 0.0 < float(meta_sparsity) < 1.0:
        raise UserError(f"meta sparsity {meta_sparsity} is outside (0, 1); e.g. 0.5, 0.8, 0.95 as the authors")
    settings = {k: v for k, v in (settings or {}).items() if k != "memory_budget"}
    if settings.get("meta_buckets") is None:
        raise UserError("a meta-sparsity budget needs meta_buckets (b, or a fraction of each table's entities)")
    config = _budget_config("CERP", {**settings, "meta_sparsity": float(meta_sparsity)})
    modules = untrained_tables("CERP", tables, None, config, quiet=False)
    kept = sum(m.budget for m in modules)
    size = _method("CERP").exported_table_bytes(tables, kept, {**config, "meta_sparsity": None})
    return MetaBudget(float(meta_sparsity), kept, int(size), _prunable(tables), sum(t.dense_bytes for t in tables),
                      tuple(m.buckets for m in modules))
