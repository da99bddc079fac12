import math

import pytest
import torch

from recbole_compress import UserError
from recbole_compress.embeddings.cerp import CERPEmbedding, PEPEmbedding, QREmbedding, soft_threshold
from recbole_compress.embeddings.masked import enforce_masks
from recbole_compress.models.cerp import derive_buckets, qr_buckets


@pytest.mark.parametrize("entities, buckets", [(100, 10), (1682, 42), (1681, 41), (1682, 337), (943, 31), (50, 50), (7, 3)])
def test_mapping_is_unique_when_b_squared_covers_the_entities(entities, buckets):
    table = CERPEmbedding(entities + 1, 4, buckets)  # + RecBole's [PAD] row
    p, q = table.p_index[1:], table.q_index[1:]
    assert torch.equal(p, torch.arange(entities) % buckets)
    assert torch.equal(q, torch.arange(entities) // math.ceil(entities / buckets))
    assert int(q.max()) < buckets
    assert len({(int(a), int(b)) for a, b in zip(p, q)}) == entities


def test_b_squared_below_entities_is_an_error():
    with pytest.raises(UserError, match=r"meta_buckets=9: b\*b=81 < 100 entities.* use meta_buckets >= 10"):
        CERPEmbedding(101, 4, 9)


def test_lookup_sum_concat_and_pad_row():
    table = CERPEmbedding(21, 6, 5)
    ids = torch.tensor([[0, 3], [7, 20]])
    out = table(ids)
    assert out.shape == (2, 2, 6) and torch.all(out[0, 0] == 0)
    x = 7 - 1  # entity number of id 7
    expected = table.effective("P")[x % 5] + table.effective("Q")[x // 4]
    assert torch.allclose(out[1, 0], expected)
    assert torch.equal(table.weight[ids], out)
    concat = CERPEmbedding(21, 6, 5, combine="concat")
    assert concat.P.shape == (5, 3) and concat(ids).shape == (2, 2, 6)
    with pytest.raises(UserError, match="even embedding size"):
        CERPEmbedding(21, 5, 5, combine="concat")


def test_unused_meta_rows_are_masked_and_not_counted():
    # 1682 entities, b=337: ceil(1682/337)=5, Q rows 0..336 all used; b=336: ceil=6, rows 281.. unused
    table = CERPEmbedding(1683, 4, 336, threshold_init=-30.0)  # thresholds that prune nothing yet
    used = int(table.q_index.max()) + 1
    assert used == 281
    assert not table.mask_of("Q")[used:].any() and table.mask_of("Q")[:used].all()
    assert table.capacity() == (336 + 281) * 4 == table.parameter_count()


def test_soft_thresholds_prune_as_they_rise():
    w = torch.tensor([-0.3, -0.01, 0.0, 0.02, 0.5])
    out = soft_threshold(w, torch.full_like(w, math.log(0.05 / 0.95)))  # threshold 0.05
    assert torch.allclose(out, torch.tensor([-0.25, 0.0, 0.0, 0.0, 0.45]))
    table = CERPEmbedding(201, 8, 20, threshold_init=-15.0)
    counts = []
    for logit in (-15.0, -4.0, -3.0, -2.0):
        with torch.no_grad():
            for s in table.thresholds():
                s.fill_(logit)
        counts.append(table.parameter_count())
    assert counts[0] == table.capacity() and counts == sorted(counts, reverse=True) and counts[-1] < counts[1]


@pytest.mark.parametrize("budget", [1, 100, 239, 320])
def test_fix_mask_keeps_exactly_the_budget_by_margin(budget):
    table = CERPEmbedding(201, 8, 20)
    with torch.no_grad():
        table.P_threshold.fill_(-2.0)  # about half pruned: the budget may be above or below the survivors
        table.Q_threshold.fill_(-2.5)
    margins = torch.cat([(table.P.abs() - torch.sigmoid(table.P_threshold)).flatten(),
                         (table.Q.abs() - torch.sigmoid(table.Q_threshold))[table.mask_of("Q")]])
    kept = table.fix_mask(budget)
    assert kept == budget == table.parameter_count()
    assert table.fixed and not any(s.requires_grad for s in table.thresholds())
    cut = torch.topk(margins, budget).values.min()
    kept_margins = torch.cat([(table.P.abs() - torch.sigmoid(table.P_threshold))[table.mask_of("P")],
                              (table.Q.abs() - torch.sigmoid(table.Q_threshold))[table.mask_of("Q")]])
    assert kept_margins.min() >= cut


def test_fixed_mask_survives_optimizer_steps():
    table = CERPEmbedding(201, 8, 20)
    table.fix_mask(150)
    pruned = {n: ~table.mask_of(n) for n in table.parts}
    opt = torch.optim.Adam([p for p in table.parameters() if p.requires_grad], lr=0.1, weight_decay=0.1)
    opt.register_step_post_hook(lambda o, *_: enforce_masks(table, o))
    before = table.P.detach().clone()
    for _ in range(3):
        opt.zero_grad()
        table(torch.randint(0, 201, (64,))).sum().backward()
        opt.step()
    for name in table.parts:
        assert torch.all(getattr(table, name)[pruned[name]] == 0)
    assert not torch.equal(before, table.P.detach())
    assert table.parameter_count() == 150


@pytest.mark.parametrize("shape, density, form", [((10001, 64, 300), 0.01, "crow"), ((301, 16, 30), 0.6, "bitmap")])
def test_cerp_export_round_trip_equals_and_picks_the_smaller_form(shape, density, form):
    table = CERPEmbedding(*shape)
    table.fix_mask(int(density * table.capacity()))
    exported = table.export()
    rebuilt = CERPEmbedding.from_export(exported)
    assert torch.equal(rebuilt.weight, table.weight)
    assert rebuilt.parameter_count() == table.parameter_count()
    assert f"P.{form}" in exported and f"Q.{form}" in exported  # CSR only pays off when very sparse
    assert table.export_bytes() < table.dense_bytes()


def test_stage1_export_stores_the_thresholded_non_zeros():
    table = CERPEmbedding(101, 8, 12)
    with torch.no_grad():
        for s in table.thresholds():
            s.fill_(-2.0)
    rebuilt = CERPEmbedding.from_export(table.export())
    assert torch.allclose(rebuilt.weight, table.weight)
    assert rebuilt.parameter_count() == table.parameter_count()


def test_pep_and_qr_round_trip():
    pep = PEPEmbedding(51, 8)
    assert pep.P.shape == (50, 8) and pep.capacity() == 400
    pep.fix_mask(100)
    assert torch.equal(PEPEmbedding.from_export(pep.export()).weight, pep.weight)
    qr = QREmbedding(101, 8, 12)
    assert qr.P.shape == (12, 8) and qr.Q.shape == (9, 8) and qr.parameter_count() == 21 * 8
    ids = torch.tensor([5, 100])
    assert torch.allclose(qr(ids)[1], qr.P[99 % 12] + qr.Q[99 // 12])
    assert torch.equal(QREmbedding.from_export(qr.export()).weight, qr.weight)


def test_buckets_for_a_budget():
    # CERP: b*b >= N, meta tables hold budget / density
    b = derive_buckets(1682, 64, 21530, 0.5)
    assert b * b >= 1682 and CERPEmbedding.capacity_for(1682, b, 64) >= 2 * 21530
    assert CERPEmbedding.capacity_for(1682, b - 1, 64) < 2 * 21530
    assert derive_buckets(1682, 64, 100, 0.5) == 42  # the smallest b with b*b >= N
    # QR: the largest pair of tables within the budget
    b = qr_buckets(1682, 64, 0.05 * 1682 * 64, "item_embedding")
    assert QREmbedding.rows_for(1682, b) * 64 <= 0.05 * 1682 * 64 < QREmbedding.rows_for(1682, b + 1) * 64
    with pytest.raises(UserError, match=r"below the smallest quotient-remainder pair of tables \(5312 = \(42 \+ 41\) rows x 64\)"):
        qr_buckets(1682, 64, 5000, "item_embedding")
