"""CERP and its baselines under one memory budget: ``<Model>_CERP``, ``<Model>_PEP``,
``<Model>_QR``.

The budget is stated once for all compressed tables, in one of two forms:
``memory_budget`` (a count of non-zeros, or a fraction of the dense tables), split
over the tables in proportion to their dense size, so every table (user, item) is
compressed to the same fraction; or the authors' ``meta_sparsity`` s with
``meta_buckets`` b, where each table keeps (1 - s) * 2 * b * d' non-zeros (PEP and QR
then keep what CERP would). Tables are built after all of them are known (the count form needs
the total): ``make_embedding`` leaves a placeholder that ``prepare_model`` replaces.

``BPR_CERP`` and ``LightGCN_CERP`` are the paper's backbones (user and item tables);
a sequential model (``SASRec_CERP``) has only an item ID table, which is the one
compressed.
"""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace

from recbole.model.general_recommender import BPR, LightGCN
from torch import nn

from recbole_compress.embeddings.base import _set_submodule
from recbole_compress.embeddings.cerp import COMBINES, CERPEmbedding, PEPEmbedding, QREmbedding, check_buckets, part_dim
from recbole_compress.errors import UserError
from recbole_compress.export import exported_bytes, pruned_bytes_bound
from recbole_compress.registry import (
    CompressionMethod,
    PlanSettings,
    compressed_model_class,
    register_method,
    register_model,
)
from recbole_compress.trainers.budget_settings import BudgetSettings, meta_elements
from recbole_compress.trainers.cerp import BudgetTrainerMixin


class PendingTable(nn.Module):
    """Stands in for a table until ``prepare_model`` knows its share of the budget."""

    def __init__(self, dense: nn.Embedding):
        super().__init__()
        self.num_embeddings, self.embedding_dim = dense.num_embeddings, dense.embedding_dim

    @property
    def entities(self) -> int:
        return self.num_embeddings - 1  # RecBole's [PAD] row 0 is not an entity

    def dense_parameters(self) -> int:
        return self.entities * self.embedding_dim


def _pending(dense, config, name, dataset):
    return PendingTable(dense)


def split_budget(settings: BudgetSettings, tables: dict[str, PendingTable]) -> dict[str, int]:
    """Each table's share of the budget: ``memory_budget`` in proportion to the tables'
    dense sizes (the shares add up to the stated budget exactly); ``meta_sparsity``
    what each table's meta tables keep at that sparsity."""
    if settings.meta_sparsity is not None:
        return {name: _meta_share(settings, name, t) for name, t in tables.items()}
    sizes = {name: t.dense_parameters() for name, t in tables.items()}
    total = sum(sizes.values())
    budget = settings.total(total)
    shares = {name: budget * size // total for name, size in sizes.items()}
    for name in sorted(sizes, key=sizes.get, reverse=True)[: budget - sum(shares.values())]:
        shares[name] += 1
    for name, share in shares.items():
        dim = tables[name].embedding_dim
        if share < dim:
            raise UserError(
                f"memory_budget={settings.stated} leaves '{name}' {share} non-zeros, less than one row of {dim}; "
                "raise the budget"
            )
    return shares


def _meta_share(settings: BudgetSettings, name: str, table: PendingTable) -> int:
    share = settings.meta_share(table.entities, part_dim(table.embedding_dim, settings.combine))
    if share < 1:
        raise UserError(f"meta_sparsity={settings.meta_sparsity} leaves '{name}' no non-zero; lower it or raise meta_buckets")
    if share >= table.dense_parameters():
        raise UserError(
            f"meta_sparsity={settings.meta_sparsity} with meta_buckets={settings.buckets} keeps {share} non-zeros in "
            f"'{name}', not fewer than its dense {table.dense_parameters()}; raise meta_sparsity or lower meta_buckets"
        )
    return share


def derive_buckets(entities: int, cols: int, budget: int, density: float) -> int:
    """The smallest b (with b*b >= N) whose meta tables hold ``budget / density``
    elements: stage 1 then prunes about ``1 - density`` of them."""
    b = math.isqrt(entities - 1) + 1 if entities > 1 else 1
    want = budget / density
    while b < entities and CERPEmbedding.capacity_for(entities, b, cols) < want:
        b += 1
    return b


def _build(config, name: str, table: PendingTable, budget: int, method: str):
    settings = BudgetSettings(config)
    n, d = table.entities, table.embedding_dim
    if method == "PEP":
        module = PEPEmbedding(table.num_embeddings, d, threshold_init=settings.threshold_init)
    elif method == "QR":
        module = QREmbedding(table.num_embeddings, d, qr_buckets(n, part_dim(d, settings.combine), budget, name), settings.combine)
    else:
        cols = part_dim(d, settings.combine)
        buckets = settings.buckets_for(n)
        if buckets is None:
            buckets = derive_buckets(n, cols, budget, settings.density)
        else:
            check_buckets(buckets, n)
        capacity = CERPEmbedding.capacity_for(n, buckets, cols)
        if budget > capacity:
            stated = f"memory_budget={settings.stated}" if settings.meta_sparsity is None else f"meta_sparsity={settings.meta_sparsity}"
            raise UserError(
                f"{stated} gives '{name}' {budget} non-zeros, more than the {capacity} elements "
                f"its meta tables hold (b={buckets}, {cols} columns); raise meta_buckets or leave it empty to derive it"
            )
        module = CERPEmbedding(table.num_embeddings, d, buckets, settings.combine, threshold_init=settings.threshold_init)
    module.budget = budget
    # the authors' count of the meta tables (2 * b * d'), for the meta_sparsity reached;
    # PEP and QR have one when b is stated (the meta tables CERP would build)
    b = getattr(module, "buckets", None) if method == "CERP" else settings.buckets_for(n)
    module.meta_elements = None if b is None else meta_elements(b, part_dim(d, settings.combine))
    return module


def qr_buckets(entities: int, cols: int, budget: int, name: str) -> int:
    """The largest remainder table (b rows, with b >= ceil(N/b)) whose two tables
    fit the budget; rows b + ceil(N/b) grow with b from b = ceil(sqrt(N))."""
    b = math.isqrt(entities - 1) + 1 if entities > 1 else 1
    smallest = QREmbedding.rows_for(entities, b) * cols
    if smallest > budget:
        raise UserError(
            f"a budget of {budget} non-zeros for '{name}' is below the smallest quotient-remainder pair of tables "
            f"({smallest} = ({b} + {math.ceil(entities / b)}) rows x {cols}); raise memory_budget"
        )
    while b < entities and QREmbedding.rows_for(entities, b + 1) * cols <= budget:
        b += 1
    return b


def build_tables(model, config, method: str) -> None:
    """Replace every placeholder with ``method``'s table, at its share of the budget."""
    settings = BudgetSettings(config)
    pending = {name: m for name, m in model.named_modules() if isinstance(m, PendingTable)}
    total = sum(t.dense_parameters() for t in pending.values())
    if settings.count is not None and settings.count >= total:
        raise UserError(
            f"memory_budget={settings.stated} is not below the dense size of the compressed tables ({total}); "
            f"use fewer non-zeros or a fraction such as 0.2"
        )
    for name, share in split_budget(settings, pending).items():
        _set_submodule(model, name, _build(config, name, pending[name], share, method).to(_device(model)))


# -- budget planning: the tables at a memory_budget, before any model exists --------------

def untrained_tables(method: str, tables, count: int | None, settings, quiet: bool = True) -> list | None:
    """The tables ``<Model>_<method>`` builds for ``memory_budget = count`` (``tables``:
    records with .name, .rows, .dim; ``count`` None: the budget ``settings`` state, e.g.
    ``meta_sparsity``); None when that budget cannot be built (``quiet=False``: the
    one-line error saying why)."""
    config = PlanSettings({**settings, "memory_budget": count} if count is not None else settings)
    try:
        budget = BudgetSettings(config)
        pending = {t.name: PendingTable(SimpleNamespace(num_embeddings=t.rows, embedding_dim=t.dim)) for t in tables}
        shares = split_budget(budget, pending)
        return [_build(config, name, pending[name], shares[name], method) for name in pending]
    except UserError:
        if quiet:
            return None
        raise


def exported_table_bytes(method: str, tables, count: int | None, settings) -> int | None:
    """Bytes those tables export: QR's as they are; CERP's and PEP's bounded for
    ``count`` kept values, whichever survive training."""
    modules = untrained_tables(method, tables, count, settings)
    if modules is None:
        return None
    if method == "QR":
        return exported_bytes(modules)
    return pruned_bytes_bound(modules, sum(m.budget for m in modules) if count is None else count)


def _device(model):
    return next((p.device for p in model.parameters()), "cpu")


def _method(name: str, doc: str) -> CompressionMethod:
    return register_method(
        CompressionMethod(
            name=name,
            make_embedding=_pending,
            trainer_mixin=BudgetTrainerMixin,
            prepare_model=functools.partial(build_tables, method=name),
            check_config=BudgetSettings,
            doc=doc,
            untrained_tables=functools.partial(untrained_tables, name),
            exported_table_bytes=functools.partial(exported_table_bytes, name),
        )
    )


CERP = _method("CERP", "Two pruned meta tables per ID table (CERP); stage 1 prunes to memory_budget, stage 2 retrains the mask.")
PEP = _method("PEP", "Soft-threshold pruning of the full table (PEP) to memory_budget, then retraining with the mask fixed.")
QR = _method("QR", "Quotient-remainder trick: two dense tables sized to memory_budget, no pruning.")

BPR_CERP = register_model(compressed_model_class(BPR, CERP))
LightGCN_CERP = register_model(compressed_model_class(LightGCN, CERP))

__all__ = ["CERP", "PEP", "QR", "BPR_CERP", "LightGCN_CERP", "COMBINES"]
