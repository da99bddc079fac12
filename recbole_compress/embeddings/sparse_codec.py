"""Exact, compact encoding of the kept values of a masked 2-D tensor, and its size.

The kept values are float32 in row-major order; where they are is stored as the
smaller of a bitmap (1 bit per position) or CSR (int32 row pointers plus one
int16 column index per value, int32 past 32767 columns); a tensor that keeps every
position stores no index at all (its values are the whole tensor, so a fully kept
table exports no larger than the dense one). Both the encoder's choice and the
budget planner's bound come from :func:`index_bytes`, so a planned size is the size
the artifact will have.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

SHAPE_BYTES = 2 * 8  # the int64 (rows, cols) pair every encoding carries
VALUE_BYTES = 4  # float32 kept values
# keys of one encoded tensor (bare, or after "<part>." when a table encodes several)
ENCODING_KEYS = ("shape", "values", "bitmap", "crow", "col")


def column_dtype(cols: int) -> torch.dtype:
    return torch.int16 if cols <= 32767 else torch.int32


def index_bytes(shapes: list[tuple[int, int]], kept: int) -> tuple[int, int]:
    """(bitmap, CSR) bytes of the index of ``kept`` values spread over tensors of
    ``shapes``: one bitmap per tensor, or each tensor's row pointers plus a column
    index per value (the widest column type of them: exact for one tensor, an
    upper bound for several)."""
    bitmap = sum(math.ceil(rows * cols / 8) for rows, cols in shapes)
    col_width = max((column_dtype(cols).itemsize for _, cols in shapes), default=2)
    csr = sum((rows + 1) * 4 for rows, _ in shapes) + col_width * kept
    return bitmap, csr


def stored_index_bytes(shapes: list[tuple[int, int]], kept: int) -> int:
    """Bytes of the index the encoder stores for ``kept`` values over ``shapes``: none
    when every position is kept, else the cheaper of bitmap and CSR."""
    if kept >= sum(rows * cols for rows, cols in shapes):
        return 0
    return min(index_bytes(shapes, kept))


def encoded_bytes_bound(shapes: list[tuple[int, int]], kept: int) -> int:
    """Bytes of the encodings of tensors of ``shapes`` keeping ``kept`` values in all,
    when all of them use the cheaper index form for the whole (an upper bound on what
    each tensor choosing its own form takes; a tensor kept whole stores no index)."""
    return len(shapes) * SHAPE_BYTES + VALUE_BYTES * kept + stored_index_bytes(shapes, kept)


def encoded_bytes(rows: int, cols: int, kept: int) -> int:
    """Exact bytes of :func:`encode_masked` for a ``rows`` x ``cols`` tensor keeping ``kept`` values."""
    return encoded_bytes_bound([(rows, cols)], kept)


def encoded_shapes(tensors: dict[str, Tensor]) -> list[tuple[int, int]]:
    """(rows, cols) of every encoded tensor among an export's tensors."""
    return [tuple(int(x) for x in v) for k, v in tensors.items() if k == "shape" or k.endswith(".shape")]


def is_encoding_key(key: str) -> bool:
    """Whether an export's key is part of an encoded tensor (whose size :func:`encoded_bytes_bound` gives)."""
    return key.rpartition(".")[2] in ENCODING_KEYS


def encode_masked(values: Tensor, mask: Tensor) -> dict[str, Tensor]:
    """The smallest of three exact encodings of the kept values of a 2-D tensor:
    no index (every position kept), a bitmap (1 bit per position) or CSR (row
    pointers + column indices). Values are float32 in row-major order of the kept
    positions."""
    values = values.detach().cpu().float()
    mask = mask.detach().cpu().bool()
    rows, cols = mask.shape
    kept = values[mask].contiguous()
    out = {"shape": torch.tensor([rows, cols], dtype=torch.int64), "values": kept}
    if kept.numel() == rows * cols:
        return out  # kept whole: the values are the tensor
    bitmap_bytes, csr_bytes = index_bytes([(rows, cols)], kept.numel())
    if bitmap_bytes <= csr_bytes:
        out["bitmap"] = pack_bits(mask.flatten())
    else:
        counts = mask.sum(dim=1, dtype=torch.int32)
        out["crow"] = torch.cat([torch.zeros(1, dtype=torch.int32), counts.cumsum(0, dtype=torch.int32)])
        out["col"] = mask.nonzero()[:, 1].to(column_dtype(cols))
    return out


def decode_masked(tensors: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Inverse of :func:`encode_masked`: (dense values, boolean mask)."""
    rows, cols = (int(x) for x in tensors["shape"])
    if "bitmap" in tensors:
        mask = unpack_bits(tensors["bitmap"], rows * cols).view(rows, cols)
    elif "crow" not in tensors:  # kept whole
        return tensors["values"].float().reshape(rows, cols).clone(), torch.ones(rows, cols, dtype=torch.bool)
    else:
        crow = tensors["crow"].long()
        row_ids = torch.repeat_interleave(torch.arange(rows), crow[1:] - crow[:-1])
        mask = torch.zeros(rows, cols, dtype=torch.bool)
        mask[row_ids, tensors["col"].long()] = True
    dense = torch.zeros(rows, cols, dtype=torch.float32)
    dense[mask] = tensors["values"].float()
    return dense, mask


_BIT_WEIGHTS = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8)


def pack_bits(bits: Tensor) -> Tensor:
    """Booleans as bytes, 8 a byte, most significant bit first (the last byte zero-padded)."""
    pad = (-bits.numel()) % 8
    padded = torch.cat([bits.to(torch.uint8), torch.zeros(pad, dtype=torch.uint8)]).view(-1, 8)
    return (padded * _BIT_WEIGHTS).sum(dim=1, dtype=torch.uint8)


def unpack_bits(packed: Tensor, count: int) -> Tensor:
    """Inverse of :func:`pack_bits`: the first ``count`` booleans."""
    bits = (packed.view(-1, 1) & _BIT_WEIGHTS).ne(0)
    return bits.flatten()[:count]
