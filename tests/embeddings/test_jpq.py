"""RecJPQ's embedding: code assignment on real training data (ml-100k), lookups,
PQTopK scoring against the materialised table, export, bad input."""

import numpy as np
import pytest
import torch
from torch import nn

from recbole_compress import UserError
from recbole_compress.embeddings.jpq import JPQEmbedding, choose_scoring_path
from recbole_compress.embeddings.jpq_codes import assign_codes, quantile_codes, svd_max_code_length, training_matrix
from tests.conftest import load_splits

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def splits():
    """ml-100k as RecBole splits it for a sequential model (leave-one-out by time)."""
    full, train, valid, test = load_splits("SASRec_JPQ", {"state": "WARNING", "show_progress": False}, with_dataset=True)
    return full, train._dataset, valid._dataset, test._dataset


def _pairs(ds):
    return set(zip(ds.inter_feat[ds.uid_field].tolist(), ds.inter_feat[ds.iid_field].tolist()))


def test_training_matrix_holds_exactly_the_training_interactions(splits):
    full, train, valid, test = splits
    matrix = training_matrix(train)
    rows, cols = matrix.nonzero()
    train_pairs = set(zip(rows.tolist(), cols.tolist()))
    held_out = _pairs(valid) | _pairs(test)  # one valid and one test target per user
    assert len(held_out) == 2 * (full.user_num - 1)
    assert not train_pairs & held_out  # no validation/test target leaks into the codes
    # ml-100k has no repeated (user, item): training = every interaction but the held-out ones.
    # The augmented dataset has one row per target: every interaction but each user's first.
    interactions = full.inter_num + full.user_num - 1
    assert interactions == 100_000
    assert len(train_pairs) == interactions - len(held_out)
    assert matrix.shape == (full.user_num, full.item_num) and set(matrix.data.tolist()) == {1.0}


@pytest.mark.parametrize("strategy", ["svd", "bpr", "random"])
def test_codes_shape_dtype_range_and_determinism(splits, strategy):
    _, train, _, _ = splits
    matrix = training_matrix(train)
    fast = {"bpr_epochs": 2}  # keep the test quick; the default trains 20 epochs
    codes = assign_codes(strategy, matrix, 8, 256, seed=2020, **fast)
    assert codes.dtype == torch.uint8 and codes.shape == (train.item_num, 8)
    assert torch.all(codes[0] == 0)  # [PAD]
    assert int(codes[1:].max()) == 255 and int(codes[1:].min()) == 0
    assert torch.equal(codes, assign_codes(strategy, matrix, 8, 256, seed=2020, **fast))
    other = assign_codes(strategy, matrix, 8, 256, seed=7, **fast)
    if strategy != "svd":  # svd's factors hardly depend on the seed; its tie-breaks do
        assert not torch.equal(codes, other)
    small = assign_codes(strategy, matrix, 4, 16, seed=2020, **fast)
    assert small.shape == (train.item_num, 4) and int(small.max()) == 15
    if strategy != "random":  # quantile binning: equal-frequency bins on every split
        for k in range(8):
            counts = torch.bincount(codes[1:, k].long(), minlength=256)
            assert counts.max() - counts.min() <= 1


def test_svd_codes_follow_the_training_data(splits):
    """Codes come from the matrix they are given: the first SVD component of a
    binary interaction matrix is popularity, so the most popular training items sit
    in the top (or bottom) bins of split 0; a different matrix gives other codes."""
    _, train, _, _ = splits
    matrix = training_matrix(train)
    codes = assign_codes("svd", matrix, 8, 256, seed=0)
    popularity = np.asarray(matrix.sum(axis=0)).ravel()
    top = np.argsort(-popularity)[:10]
    first = codes[top, 0].tolist()
    assert all(c >= 240 for c in first) or all(c <= 15 for c in first)
    shuffled = matrix[:, np.r_[0, np.random.default_rng(0).permutation(np.arange(1, matrix.shape[1]))]]
    assert not torch.equal(codes, assign_codes("svd", shuffled, 8, 256, seed=0))


def test_quantile_bins_equal_frequency_with_ties():
    factors = np.zeros((1000, 2))
    factors[:500, 1] = np.arange(500)
    codes = quantile_codes(factors, 256, np.random.default_rng(0))
    for k in range(2):
        counts = np.bincount(codes[:, k], minlength=256)
        assert counts.max() - counts.min() <= 1  # all-zero ties still spread over every bin


def _table(n=41_000, d=16, m=8, k=256, special=0, seed=0):
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, k, (n, m), generator=g).to(torch.uint8)
    table = JPQEmbedding(codes, d, k, n_special=special)
    with torch.no_grad():
        table.codebooks.normal_(generator=g)
        table.special.normal_(generator=g)
    return table


def test_lookup_matches_the_materialised_table_and_pad_is_zero():
    table = _table(n=300, special=1)
    weight = table.weight
    assert weight.shape == (301, 16)
    ids = torch.tensor([[0, 1, 2], [299, 300, 5]])
    assert torch.equal(table(ids), weight[ids])
    assert torch.all(weight[0] == 0) and torch.all(table(ids)[0, 0] == 0)
    assert torch.equal(weight[300], table.special[0])  # the special ([MASK]) row is its own dense row
    # item vector = concatenation of its sub-embeddings
    item = 7
    expect = torch.cat([table.codebooks[k, int(table.codes[item, k])] for k in range(8)])
    assert torch.equal(weight[item], expect)
    table(ids).sum().backward()
    assert table.codebooks.grad.abs().sum() > 0 and table.special.grad.abs().sum() > 0


def test_pad_row_gets_no_gradient():
    table = _table(n=50)
    pad_code = table.codes[0].long()
    table.codes[1:, 0] = (pad_code[0] + 1) % 256  # nothing but [PAD] uses code pad_code[0] of split 0
    table(torch.tensor([0, 0, 3])).sum().backward()
    assert torch.all(table.codebooks.grad[0, pad_code[0]] == 0)
    table.codebooks.grad = None
    table.weight.sum().backward()  # models that read .weight (SASRec's CE loss)
    assert torch.all(table.codebooks.grad[0, pad_code[0]] == 0) and table.codebooks.grad.abs().sum() > 0


@pytest.mark.parametrize("path", ["pairs", "bag", "dense", "auto"])
@pytest.mark.parametrize("batch", [1, 3, 40])
def test_pqtopk_equals_materialised_scores(path, batch, monkeypatch):
    table = _table().eval()
    query = torch.randn(batch, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = query @ table.coded_table().T
        expected[:, 0] = 0.0
        if path in ("pairs", "bag"):  # PQTopK never builds the table
            monkeypatch.setattr(JPQEmbedding, "coded_table", lambda self: pytest.fail("table materialised"))
        scores = table.score_all(query, path)
    assert scores.shape == (batch, 41_000)
    assert torch.allclose(scores, expected, atol=1e-4, rtol=1e-4)


def test_pqtopk_with_odd_code_length_and_few_centroids():
    table = _table(n=5000, d=15, m=3, k=10).eval()
    query = torch.randn(2, 15)
    with torch.no_grad():
        expected = query @ table.coded_table().T
        for path in ("pairs", "bag"):  # pairs falls back to bag for odd m
            assert torch.allclose(table.score_all(query, path), expected, atol=1e-4)


def test_auto_path_rules():
    assert choose_scoring_path(1, 1_000_000, 64, 8) == "pairs"
    assert choose_scoring_path(8, 1_000_000, 64, 8) == "bag"
    assert choose_scoring_path(128, 1_000_000, 512, 8) == "bag"
    assert choose_scoring_path(128, 1_000_000, 64, 8) == "dense"
    assert choose_scoring_path(1, 10_000, 64, 8) == "dense"  # 2.6 MB table: cache-sized, matmul wins
    assert choose_scoring_path(1, 10_000, 512, 8) == "pairs"  # 20 MB table: PQTopK wins (benchmarks/pqtopk.py)


def test_dense_path_caches_only_while_evaluating():
    table = _table(n=2000)
    query = torch.randn(4, 16)
    table.eval()
    with torch.no_grad():
        first = table.score_all(query, "dense")
        assert table._table_cache is not None
        table.codebooks.add_(1.0)  # an update invalidates the cache
        second = table.score_all(query, "dense")
    assert torch.allclose(second, query @ table.coded_table().detach().T, atol=1e-5)
    assert not torch.allclose(first, second)
    table.train()
    assert table._table_cache is None
    out = table.score_all(query, "dense")
    assert out.requires_grad and table._table_cache is None


def test_export_round_trip_and_bytes():
    table = _table(n=3000, d=64, special=1)
    exported = table.export()
    assert exported["codes"].dtype == torch.uint8 and exported["codes"].shape == (2999, 8)  # [PAD] row not stored
    rebuilt = JPQEmbedding.from_export(exported)
    assert torch.equal(rebuilt.weight, table.weight) and torch.equal(rebuilt.codes[1:], table.codes[1:])
    assert rebuilt.parameter_count() == table.parameter_count() == 256 * 64 + 64
    assert table.export_bytes() == 2999 * 8 + 256 * 64 * 4 + 64 * 4 + 16
    assert table.dense_bytes() == 3001 * 64 * 4


def test_from_dense_keeps_special_rows_and_init_spread():
    dense = nn.Embedding(1001, 32, padding_idx=0)
    nn.init.normal_(dense.weight, 0, 0.02)
    codes = torch.randint(0, 256, (1000, 4)).to(torch.uint8)
    table = JPQEmbedding.from_dense(dense, codes)
    assert table.n_special == 1 and torch.equal(table.special[0], dense.weight[1000])
    assert abs(float(table.codebooks.std()) - 0.02) < 0.003


def test_bad_inputs():
    codes = torch.zeros(10, 5, dtype=torch.uint8)
    with pytest.raises(UserError, match="jpq_code_length=5 does not divide embedding size 64; use a divisor such as 4 or 8"):
        JPQEmbedding(codes, 64)
    with pytest.raises(UserError, match="jpq_centroids=300 .* at most 256"):
        JPQEmbedding(torch.zeros(10, 4, dtype=torch.uint8), 64, n_centroids=300)
    with pytest.raises(UserError, match="uint8"):
        JPQEmbedding(torch.zeros(10, 4, dtype=torch.int64), 64)
    with pytest.raises(UserError, match="codes go up to 20"):
        JPQEmbedding(torch.full((10, 4), 20, dtype=torch.uint8), 64, n_centroids=16)
    matrix = __import__("scipy.sparse", fromlist=["csr_matrix"]).random(30, 12, density=0.3, format="csr", random_state=0)
    assert svd_max_code_length(matrix) == 10
    with pytest.raises(UserError, match=r"jpq_code_length=11 is more than svd code assignment allows .*\(at most 10\)"):
        assign_codes("svd", matrix, 11)
    assert assign_codes("random", matrix, 11).shape == (12, 11)  # random has no such limit
    with pytest.raises(UserError, match="jpq_assignment=kmeans is not one of svd, bpr, random"):
        assign_codes("kmeans", matrix, 4)
    with pytest.raises(UserError, match="jpq_centroids=257"):
        assign_codes("random", matrix, 4, 257)
    with pytest.raises(UserError, match="jpq_scoring=fast"):
        JPQEmbedding(torch.zeros(10, 4, dtype=torch.uint8), 64, scoring="fast")
    with pytest.raises(UserError, match="item tables only"):
        JPQEmbedding.from_dense(nn.Embedding(5, 8), torch.zeros(10, 4, dtype=torch.uint8))
