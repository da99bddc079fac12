"""Serving forms: each equals its trained table (lookups and full scores) and holds no more
than its export promises (never the re-densified table)."""

import pytest
import torch

from recbole_compress.embeddings import jpq as jpq_module
from recbole_compress.embeddings.base import artifact_bytes
from recbole_compress.embeddings.cerp import CERPEmbedding, PEPEmbedding, QREmbedding
from recbole_compress.embeddings.jpq import JPQEmbedding
from recbole_compress.embeddings.masked import MaskedEmbedding, add_mask, enforce_masks
from recbole_compress.embeddings.serving import (
    DenseMatrix,
    MetaTable,
    RowTable,
    SparseMatrix,
    csr_bytes,
    matrix_form,
)
from recbole_compress.embeddings.serving_coded import CodedTable
from recbole_compress.embeddings.sparse_codec import encode_masked
from recbole_compress.export import export_table

pytestmark = pytest.mark.usefixtures("one_thread")


def _prune(mask, keep, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask &= torch.rand(mask.shape, generator=g) < keep


def _ticket(rows=300, dim=64, keep=0.2):
    table = MaskedEmbedding(torch.randn(rows, dim, generator=torch.Generator().manual_seed(1)))
    _prune(table.mask, keep)
    enforce_masks(table)
    return table


def _cerp(combine="sum"):
    table = CERPEmbedding(1000, 64, 40, combine)
    for name in table.parts:
        _prune(table.mask_of(name), 0.3, seed=len(name))
    enforce_masks(table)
    table.set_fixed()
    return table


def _pep():
    table = PEPEmbedding(500, 32)
    _prune(table.mask_of("P"), 0.2)
    enforce_masks(table)
    table.set_fixed()
    return table


def _qr_ticket():
    table = QREmbedding(1000, 64, 40)
    for name in ("P", "Q"):
        _prune(add_mask(table, name).mask, 0.5, seed=len(name))
    enforce_masks(table)
    return table


def _jpq(items=2000, m=8, special=0, centroids=256):
    codes = torch.randint(0, centroids, (items, m), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    table = JPQEmbedding(codes, 64 if m != 3 else 48, centroids, n_special=special)
    torch.nn.init.normal_(table.special)
    return table


TABLES = {
    "ticket 20%": _ticket,
    "ticket kept whole": lambda: _ticket(keep=1.1),
    "ticket 2%": lambda: _ticket(keep=0.02),
    "CERP sum": _cerp,
    "CERP concat": lambda: _cerp("concat"),
    "PEP": _pep,
    "QR": lambda: QREmbedding(1000, 64, 40),
    "QR concat": lambda: QREmbedding(1000, 64, 40, "concat"),
    "QR + ticket": _qr_ticket,
    "JPQ": _jpq,
    "JPQ odd m, special row": lambda: _jpq(300, 3, special=1, centroids=16),
}


def _served(table):
    parts, _ = export_table(table)
    return type(table).serving_form(parts), parts


@pytest.mark.parametrize("name", TABLES)
def test_served_lookups_and_scores_equal_the_trained_table(name):
    table = TABLES[name]().eval()
    form, _ = _served(table)
    with torch.no_grad():
        weight = table.weight.detach()
        ids = torch.randint(0, table.num_embeddings, (4, 9), generator=torch.Generator().manual_seed(3))
        ids[0, :3] = torch.tensor([0, 1, table.num_embeddings - 1])
        assert torch.allclose(form(ids), weight[ids], atol=1e-6)
        for batch in (1, 3, 40):  # the CSR product, the bag matmul; PQTopK's paths below
            query = torch.randn(batch, weight.shape[1])
            assert torch.allclose(form.score(query), query @ weight[: form.scored_rows].T, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 8, 20, 40])
def test_coded_scores_equal_on_every_pqtopk_path(monkeypatch, batch):
    monkeypatch.setattr(jpq_module, "MIN_TABLE_FLOATS_FOR_PQ", 0)  # a small table takes the PQ paths too
    for m in (8, 3):
        table = _jpq(3000, m).eval()
        form, _ = _served(table)
        query = torch.randn(batch, table.embedding_dim)
        with torch.no_grad():
            assert torch.allclose(form.score(query), query @ table.weight.T, atol=1e-5)


@pytest.mark.parametrize("name", TABLES)
def test_served_tables_hold_their_export_not_the_dense_table(name):
    table = TABLES[name]()
    form, parts = _served(table)
    exported, held = artifact_bytes(parts), form.held_bytes()
    # row-sparse forms trade the bitmap for narrow column indices: at most 1.2x the export
    assert held <= 1.2 * exported, (held, exported)
    if name != "ticket kept whole":  # kept whole: the dense values, no index (no larger than dense)
        assert held < 0.8 * table.dense_bytes()
    else:
        assert held <= table.dense_bytes()


def test_a_bitmap_becomes_narrow_csr_and_never_outgrows_the_dense_matrix():
    values = torch.randn(100, 64)
    for keep, form in ((0.2, SparseMatrix), (0.95, DenseMatrix)):
        mask = torch.rand(100, 64, generator=torch.Generator().manual_seed(0)) < keep
        served = matrix_form(encode_masked(values * mask, mask))
        assert isinstance(served, form) and served.held_bytes() <= 100 * 64 * 4
        if form is SparseMatrix:
            assert served.col.dtype == torch.uint8 and served.counts.dtype == torch.uint8
            assert served.held_bytes() == csr_bytes(100, 64, int(mask.sum()))
        assert torch.equal(served.rows(torch.arange(100)), values * mask)


def test_kinds_are_as_documented():
    assert isinstance(_served(_ticket())[0], RowTable)
    assert isinstance(_served(_cerp())[0], MetaTable) and isinstance(_served(_cerp())[0].P, SparseMatrix)
    coded = _served(_jpq())[0]
    assert isinstance(coded, CodedTable) and coded.pair_codes.dtype == torch.int16
    assert coded.held_bytes() == artifact_bytes(_served(_jpq())[1]) - 16  # all but the int32 header
