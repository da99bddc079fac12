"""Budgets -> method settings: met by construction, bounded by the real export sizes."""

import pytest
import torch

from recbole_compress import UserError
from recbole_compress.budgets import PLANNERS, Table, plan
from recbole_compress.export import pruned_bytes_bound
from recbole_compress.embeddings.base import artifact_bytes
from recbole_compress.embeddings.masked import MaskedEmbedding

# ml-100k's LightGCN tables at d=64 ([PAD] rows included)
TABLES = [Table("user_embedding", 944, 64), Table("item_embedding", 1683, 64)]
DENSE = sum(t.dense_bytes for t in TABLES)


@pytest.mark.parametrize("method", ["LTH", "PEP", "CERP", "QR", "QR+LTH"])
@pytest.mark.parametrize("budget", [0.5, 0.2, 0.05])
def test_plans_fit_and_use_the_budget(method, budget):
    p = plan(method, "LightGCN", TABLES, budget)
    assert p.max_bytes == int(budget * DENSE)
    if not p.feasible:  # only the dense QR tables have a floor above a budget here
        assert method in ("QR", "QR+LTH") and budget == 0.05 and "cannot fit" in p.reason
        return
    assert p.planned_bytes <= p.max_bytes
    # the largest setting that fits: a dense QR table grows in steps of a whole row
    assert p.planned_bytes >= p.max_bytes - (2 * 64 * 4 * 40 if method.startswith("QR") else 64)


def test_bigger_budgets_keep_more():
    kept = [plan("PEP", "LightGCN", TABLES, b).overrides["memory_budget"] for b in (0.05, 0.2, 0.5)]
    assert kept == sorted(kept) and len(set(kept)) == 3


def test_ticket_rate_keeps_exactly_the_planned_count():
    p = plan("LTH", "LightGCN", TABLES, 0.2)
    total = sum((t.rows - 1) * t.dim for t in TABLES)
    kept = total - int(round(p.overrides["prune_rate"] * total))
    modules = [MaskedEmbedding(torch.zeros(t.rows, t.dim)) for t in TABLES]
    assert pruned_bytes_bound(modules, kept) == p.planned_bytes <= p.max_bytes
    assert pruned_bytes_bound(modules, kept + 1) > p.max_bytes or kept == total


@pytest.mark.parametrize("kept_fraction", [0.02, 0.3, 0.9])
def test_bound_matches_the_exported_bytes(kept_fraction):
    """Real exports of masked tables with random masks never exceed the bound, and equal
    it when every table picks the same encoding."""
    generator = torch.Generator().manual_seed(0)
    modules = [MaskedEmbedding(torch.randn(t.rows, t.dim, generator=generator)) for t in TABLES]
    kept = 0
    for m in modules:
        mask = (torch.rand(m.num_embeddings, m.embedding_dim, generator=generator) < kept_fraction)
        mask[0] = False
        m.parametrizations.table[0].mask.copy_(mask)
        kept += int(mask.sum())
    real = sum(artifact_bytes(m.export()) for m in modules)
    assert real == pruned_bytes_bound(modules, kept)


def test_jpq_takes_the_richest_code_that_fits():
    items = [Table("item_embedding", 12102, 64)]  # Amazon Beauty's item table
    p = plan("JPQ", "SASRec", items, 0.05)
    m = p.overrides["jpq_code_length"]
    assert 64 % m == 0 and p.planned_bytes <= p.max_bytes
    # 256 sub-embeddings per split no longer fit 2%: fewer centroids do
    small = plan("JPQ", "SASRec", items, 0.02)
    assert small.planned_bytes <= small.max_bytes and small.overrides["jpq_centroids"] < 256
    assert plan("JPQ", "SASRec", items, 0.001).reason.startswith("cannot fit")


def test_bad_requests_fail_clearly():
    with pytest.raises(UserError, match="outside"):
        plan("LTH", "LightGCN", TABLES, 1.5)
    with pytest.raises(UserError, match="unknown method"):
        plan("ZIP", "LightGCN", TABLES, 0.5)
    assert set(PLANNERS) >= {"LTH", "PEP", "CERP", "QR", "QR+LTH", "JPQ"}


# plan() on ml-100k's tables as the planners gave it before each method sized its own
# tables (hooks on CompressionMethod): (method, budget, settings, (overrides, planned bytes) or reason).
# LTH at 0.05 and 0.02 (CSR-encoded tickets) moved by a few bytes when ticket exports left out
# the [PAD] row (two row pointers fewer, a num_embeddings scalar more per table).
_TICKET = {"prune_schedule": "oneshot", "prune_rounds": 1, "ticket_select": "sparsest", "target_sparsity": None}
PLANNED_BEFORE_HOOKS = [
    ("LTH", 0.5, {}, ({**_TICKET, "prune_rate": 0.5309642857142857}, 336256)),
    ("LTH", 0.2, {}, ({**_TICKET, "prune_rate": 0.8311964285714286}, 134500)),
    ("LTH", 0.05, {}, ({**_TICKET, "prune_rate": 0.9771309523809524}, 33624)),
    ("LTH", 0.02, {}, ({**_TICKET, "prune_rate": 0.9971488095238096}, 13446)),
    ("PEP", 0.5, {}, ({"memory_budget": 78794}, 336256)),
    ("PEP", 0.2, {}, ({"memory_budget": 28355}, 134500)),
    ("PEP", 0.05, {}, ({"memory_budget": 3839}, 33622)),
    ("PEP", 0.02, {}, ({"memory_budget": 477}, 13450)),
    ("CERP", 0.5, {}, ({"memory_budget": 78772}, 336256)),
    ("CERP", 0.2, {}, ({"memory_budget": 31481}, 134500)),
    ("CERP", 0.05, {}, ({"memory_budget": 7862}, 33624)),
    ("CERP", 0.02, {}, ({"memory_budget": 3030}, 13448)),
    ("CERP", 0.1, {"meta_combine": "concat"}, ({"memory_budget": 15720}, 67248)),
    ("QR", 0.5, {}, ({"memory_budget": 84098}, 336208)),
    ("QR", 0.2, {}, ({"memory_budget": 33671}, 134480)),
    ("QR", 0.05, {}, "cannot fit 33625 bytes: its smallest tables need 44112 bytes"),
    ("QR", 0.02, {}, "cannot fit 13450 bytes: its smallest tables need 44112 bytes"),
    ("QR+LTH", 0.5, {}, ({**_TICKET, "memory_budget": 158201, "prune_rate": 0.5}, 336128)),
    ("QR+LTH", 0.2, {}, ({**_TICKET, "memory_budget": 63244, "prune_rate": 0.5}, 134440)),
    ("QR+LTH", 0.05, {}, ({**_TICKET, "memory_budget": 15779, "prune_rate": 0.5}, 33528)),
    ("QR+LTH", 0.02, {}, "cannot fit 13450 bytes: its smallest quotient-remainder tables do not fit even when pruned"),
    ("QR+LTH", 0.1, {}, ({**_TICKET, "memory_budget": 31560, "prune_rate": 0.5}, 67120)),
    ("QR+LTH", 0.1, {"meta_combine": "concat"}, ({**_TICKET, "memory_budget": 31560, "prune_rate": 0.5}, 67188)),
    ("QR+LTH", 0.1, {"compose_keep": 0.3}, ({**_TICKET, "memory_budget": 50638, "prune_rate": 0.7}, 67200)),
    ("JPQ", 0.5, {}, ({"jpq_code_length": 64, "jpq_centroids": 256}, 299104)),
    ("JPQ", 0.2, {}, ({"jpq_code_length": 32, "jpq_centroids": 64}, 116800)),
    ("JPQ", 0.05, {}, ({"jpq_code_length": 8, "jpq_centroids": 16}, 29224)),
    ("JPQ", 0.02, {}, ({"jpq_code_length": 1, "jpq_centroids": 16}, 10849)),
    ("JPQ", 0.1, {"jpq_centroids": 64}, ({"jpq_code_length": 16, "jpq_centroids": 32}, 58416)),
]


def test_plans_are_those_of_the_planners_before_the_method_hooks():
    for method, budget, settings, expected in PLANNED_BEFORE_HOOKS:
        p = plan(method, "LightGCN", TABLES, budget, settings)
        assert p.max_bytes == int(budget * DENSE) and p.model == f"LightGCN_{PLANNERS[method][0]}"
        got = p.reason if isinstance(expected, str) else (p.overrides, p.planned_bytes)
        assert got == expected, (method, budget, settings)


def test_each_method_sizes_its_own_tables_or_says_it_cannot():
    from recbole_compress.registry import PlanSettings, compression_methods

    methods = compression_methods()
    assert methods["CERP"].exported_table_bytes(TABLES, 10, PlanSettings()) is None  # under one row per table
    assert methods["JPQ"].exported_table_bytes(TABLES, (3, 16), PlanSettings()) is None  # 3 does not divide 64
    qr = methods["QR"].untrained_tables(TABLES, 40000, PlanSettings())
    dense_qr = methods["QR"].exported_table_bytes(TABLES, 40000, PlanSettings())
    assert dense_qr == sum(artifact_bytes(m.export()) for m in qr)
    assert methods["LTH"].composed_table_bytes(qr, 0.5, PlanSettings()) < dense_qr
    ticket = methods["LTH"].exported_table_bytes
    assert ticket(TABLES, 1000, {}) < ticket(TABLES, 2000, {})


# -- the authors' form (meta sparsity) and very small budgets ----------------------------------

TABLES_128 = [Table("user_embedding", 944, 128), Table("item_embedding", 1683, 128)]


@pytest.mark.parametrize("sparsity", [0.5, 0.8, 0.95])
def test_cerp_planned_at_a_meta_sparsity_budget_keeps_exactly_the_authors_count(sparsity):
    from recbole_compress.budgets import meta_sparsity_budget

    meta = meta_sparsity_budget(TABLES_128, sparsity, {"meta_buckets": 0.0141})
    assert meta.buckets == (31, 42)  # 1.41% of 943 / 1682 is below sqrt(N): raised to ceil(sqrt(N))
    assert meta.kept == sum(round((1 - sparsity) * 2 * b * 128) for b in meta.buckets)
    p = plan("CERP", "LightGCN", TABLES_128, meta.budget, {"meta_buckets": 0.0141})
    assert p.max_bytes == meta.table_bytes and p.overrides == {"memory_budget": meta.kept}
    assert 0.002 < meta.full_table_fraction < 0.03  # the authors' budgets: well under 5% of the full table
    # the others get the same bytes (or say why they cannot)
    for method in ("PEP", "LTH", "QR"):
        other = plan(method, "LightGCN", TABLES_128, meta.budget, {"meta_buckets": 0.0141})
        assert (other.feasible and other.planned_bytes <= meta.table_bytes) or "cannot fit" in other.reason


@pytest.mark.parametrize("method", sorted(PLANNERS))
@pytest.mark.parametrize("budget", [0.01, 0.001])
def test_budgets_down_to_a_tenth_of_a_percent_are_planned_or_refused_with_a_reason(method, budget):
    p = plan(method, "LightGCN", TABLES_128, budget)
    assert p.feasible == (p.reason is None)
    assert (p.planned_bytes <= p.max_bytes) if p.feasible else p.reason.startswith("cannot fit")


def test_meta_sparsity_is_not_a_comparison_budget():
    with pytest.raises(UserError, match="byte budgets, not meta_sparsity"):
        plan("CERP", "LightGCN", TABLES_128, 0.01, {"meta_sparsity": 0.9, "meta_buckets": 50})
    from recbole_compress.budgets import meta_sparsity_budget

    with pytest.raises(UserError, match="needs meta_buckets"):
        meta_sparsity_budget(TABLES_128, 0.9, {})
    with pytest.raises(UserError, match="outside"):
        meta_sparsity_budget(TABLES_128, 1.0, {"meta_buckets": 50})
