"""The sparse codec: exact round trips, a fixed byte format, and one byte formula."""

import pytest
import torch

from recbole_compress.embeddings.base import artifact_bytes
from recbole_compress.embeddings.sparse_codec import (
    decode_masked,
    encode_masked,
    encoded_bytes,
    encoded_bytes_bound,
    pack_bits,
    unpack_bits,
)


def _sparse(rows, cols, density, seed=0):
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(rows, cols, generator=g)
    mask = torch.rand(rows, cols, generator=g) < density
    return values * mask, mask


@pytest.mark.parametrize("density", [0.02, 0.3, 0.9])
def test_encoding_round_trips_and_picks_the_smaller_form(density):
    values, mask = _sparse(50, 64, density)
    encoded = encode_masked(values, mask)
    dense, decoded_mask = decode_masked(encoded)
    assert torch.equal(decoded_mask, mask) and torch.equal(dense, values)
    nnz = int(mask.sum())
    bitmap = (50 * 64 + 7) // 8
    csr = 51 * 4 + nnz * 2
    assert ("bitmap" in encoded) == (bitmap <= csr)


def test_the_artifact_format_is_fixed():
    """Bits most significant first, row-major; CSR as int32 row pointers and int16 columns."""
    mask = torch.tensor([[1, 0, 0, 1], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    bitmap = encode_masked(torch.arange(12.0).view(3, 4), mask)
    assert set(bitmap) == {"shape", "values", "bitmap"}
    assert bitmap["shape"].dtype == torch.int64 and bitmap["shape"].tolist() == [3, 4]
    assert bitmap["values"].dtype == torch.float32 and bitmap["values"].tolist() == [0.0, 3.0, 8.0, 9.0, 10.0, 11.0]
    assert bitmap["bitmap"].dtype == torch.uint8 and bitmap["bitmap"].tolist() == [0b10010000, 0b11110000]
    mask = torch.zeros(2, 100, dtype=torch.bool)
    mask[0, 5] = mask[0, 70] = mask[1, 99] = True
    csr = encode_masked(torch.arange(200.0).view(2, 100), mask)
    assert set(csr) == {"shape", "values", "crow", "col"} and csr["values"].tolist() == [5.0, 70.0, 199.0]
    assert csr["crow"].dtype == torch.int32 and csr["crow"].tolist() == [0, 2, 3]
    assert csr["col"].dtype == torch.int16 and csr["col"].tolist() == [5, 70, 99]
    assert encode_masked(torch.zeros(1, 40000), torch.rand(1, 40000) < 0.001)["col"].dtype == torch.int32


@pytest.mark.parametrize("rows,cols", [(1, 1), (3, 4), (2, 100), (50, 64), (944, 64), (1, 40000)])
@pytest.mark.parametrize("density", [0.0, 0.001, 0.05, 0.3, 1.0])
def test_encoded_bytes_are_the_real_bytes(rows, cols, density):
    values, mask = _sparse(rows, cols, density, seed=rows * cols)
    assert encoded_bytes(rows, cols, int(mask.sum())) == artifact_bytes(encode_masked(values, mask))


def test_the_bound_for_several_tensors_covers_each_choosing_its_own_form():
    shapes = [(40, 64), (3, 5000)]
    for density in (0.01, 0.2, 0.9):
        parts = [_sparse(r, c, density, seed=r) for r, c in shapes]
        kept = sum(int(m.sum()) for _, m in parts)
        real = sum(artifact_bytes(encode_masked(v, m)) for v, m in parts)
        assert real <= encoded_bytes_bound(shapes, kept)
    assert encoded_bytes_bound([(50, 64)], 123) == encoded_bytes(50, 64, 123)


def test_bits_pack_eight_a_byte_and_unpack():
    bits = torch.rand(21, generator=torch.Generator().manual_seed(0)) < 0.5
    packed = pack_bits(bits)
    assert packed.numel() == 3 and torch.equal(unpack_bits(packed, 21), bits)


def test_a_tensor_kept_whole_stores_no_index():
    values = torch.randn(5, 7)
    encoded = encode_masked(values, torch.ones(5, 7, dtype=torch.bool))
    assert set(encoded) == {"shape", "values"}
    dense, mask = decode_masked(encoded)
    assert torch.equal(dense, values) and bool(mask.all())
    assert artifact_bytes(encoded) == encoded_bytes(5, 7, 35) == 16 + 35 * 4
    assert encoded_bytes_bound([(5, 7), (2, 3)], 41) == 2 * 16 + 41 * 4  # both kept whole: no index
