"""Budgets -> method settings: met by construction, bounded by the real export sizes."""

import pytest
import torch

from recbole_compress import UserError
from recbole_compress.budgets import PLANNERS, Table, plan, pruned_bytes_bound
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
