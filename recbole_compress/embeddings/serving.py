"""Tables as a served model holds them: in their exported form, never re-densified.

A served table answers two questions: the rows of some ids (a user's vector, the items
of a sequence) and the scores of every row against a batch of queries (full ranking).
Each form computes both from what the artifact stores:

- :class:`DenseMatrix`: a plain float matrix (dense tables, tables kept whole).
- :class:`SparseMatrix`: row-sparse (CSR) non-zeros; scores are a bag matmul
  (``embedding_bag`` of the query's columns weighted by the kept values), lookups
  gather each row's non-zeros. A bitmap-encoded export is turned into CSR once at load,
  with column indices and row counts as narrow as the width allows (one byte each up
  to 255 columns); :func:`matrix_form` never holds more than the dense matrix.
- :class:`RowTable`: a table whose entity rows are one matrix ([PAD] row implied).
- :class:`MetaTable`: CERP and QR: entity x is ``P[x mod b] (+|concat) Q[x div D]``;
  scores are ``q . P^T`` and ``q . Q^T`` (b rows each) spread over the entities, so the
  full table is never built.
- :class:`~recbole_compress.embeddings.serving_coded.CodedTable` (its own module): RecJPQ
  codes + codebooks, scored by PQTopK without a cached index.

Every form registers what it holds as non-persistent buffers, so :func:`held_bytes`
counts exactly the memory a served table keeps.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recbole_compress.embeddings.sparse_codec import unpack_bits

SPARSE_MV_MAX_BATCH = 4  # up to here torch's CSR matrix-vector product beats the bag matmul
FEW_ROWS = 16  # lookups of up to this many rows take the numpy path


def held_bytes(tensors) -> int:
    """Bytes of the distinct storages behind ``tensors`` (a view counts its whole storage once)."""
    seen, total = set(), 0
    for tensor in tensors:
        storage = tensor.untyped_storage()
        if storage.data_ptr() in seen:
            continue
        seen.add(storage.data_ptr())
        total += storage.nbytes()
    return total


class ServedPart(nn.Module):
    """Something a served table holds; its tensors are buffers (never in a state dict)."""

    def hold(self, name: str, tensor: Tensor) -> None:
        self.register_buffer(name, tensor, persistent=False)

    def held_bytes(self) -> int:
        return held_bytes(self.buffers())


# -- matrices: rows of one stored tensor -------------------------------------------------

class DenseMatrix(ServedPart):
    def __init__(self, values: Tensor):
        super().__init__()
        self.rows_count, self.cols = values.shape
        self.hold("values", values.float().contiguous())

    def rows(self, index: Tensor) -> Tensor:
        return F.embedding(index, self.values)

    def rows_numpy(self, index: np.ndarray) -> np.ndarray:
        return self.values.numpy()[index]

    def scores(self, query: Tensor) -> Tensor:
        return query @ self.values.T


def column_dtype(cols: int) -> torch.dtype:
    """The narrowest integer dtype that holds every integer below ``cols``."""
    if cols <= 256:
        return torch.uint8
    return torch.int16 if cols <= 32767 else torch.int32


class SparseMatrix(ServedPart):
    """CSR, held narrow: float32 values, column indices in the narrowest dtype, and
    per-row counts (uint8 up to 255 columns) with an int64 row pointer every
    ``ANCHOR`` rows in place of an int32 pointer per row. Scoring rebuilds the row
    pointers for the call (one cumulative sum); a lookup sums at most ``ANCHOR - 1`` counts."""

    ANCHOR = 64

    def __init__(self, cols: int, counts: Tensor, col: Tensor, values: Tensor):
        super().__init__()
        self.rows_count, self.cols = counts.numel(), int(cols)
        counts = counts.long()
        starts = torch.cumsum(counts, 0) - counts
        self.hold("counts", counts.to(column_dtype(cols + 1)).contiguous())
        self.hold("anchors", starts[:: self.ANCHOR].clone())
        self.hold("col", col.to(column_dtype(cols)).contiguous())
        self.hold("values", values.float().contiguous())

    @classmethod
    def from_mask(cls, values: Tensor, mask: Tensor) -> "SparseMatrix":
        return cls(mask.shape[1], mask.sum(dim=1), mask.nonzero()[:, 1], values)

    def row_pointers(self) -> Tensor:
        crow = torch.zeros(self.rows_count + 1, dtype=torch.int32)
        torch.cumsum(self.counts, 0, dtype=torch.int32, out=crow[1:])
        return crow

    def scores(self, query: Tensor) -> Tensor:
        """``query @ M^T``: torch's CSR product for a few queries, else one bag per row
        (the row's kept values weight the query's columns), whichever is faster."""
        crow = self.row_pointers()
        if query.shape[0] <= SPARSE_MV_MAX_BATCH:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "sparse CSR tensor support is in beta"
                matrix = torch.sparse_csr_tensor(crow, self.col.int(), self.values, (self.rows_count, self.cols))
            if query.shape[0] == 1:
                return torch.mv(matrix, query[0]).unsqueeze(0)  # half the time of the matrix product
            return (matrix @ query.T).T
        out = F.embedding_bag(
            self.col.int(), query.T.contiguous(), crow, mode="sum",
            per_sample_weights=self.values, include_last_offset=True,
        )  # [rows, B]
        return out.T

    def starts(self, rows: Tensor) -> Tensor:
        """First value of each of ``rows``: the anchor before it plus the counts in between."""
        base = rows // self.ANCHOR * self.ANCHOR
        step = torch.arange(self.ANCHOR - 1)
        window = (base.unsqueeze(-1) + step).clamp(max=self.rows_count - 1)
        inside = step < (rows - base).unsqueeze(-1)
        return self.anchors[rows // self.ANCHOR] + (self.counts[window].long() * inside).sum(-1)

    def rows(self, index: Tensor) -> Tensor:
        if index.numel() <= FEW_ROWS:
            return torch.from_numpy(self.rows_numpy(index.reshape(-1).numpy())).view(*index.shape, self.cols)
        flat = index.reshape(-1).long()
        start, counts = self.starts(flat), self.counts[flat].long()
        owner = torch.repeat_interleave(torch.arange(flat.numel()), counts)
        offset = torch.arange(int(counts.sum())) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        position = start[owner] + offset
        out = self.values.new_zeros(flat.numel(), self.cols)
        out[owner, self.col[position].long()] = self.values[position]
        return out.view(*index.shape, self.cols)


    def rows_numpy(self, index: np.ndarray) -> np.ndarray:
        """A few rows (one user's vector) in numpy, whose small operations cost a
        fraction of torch's dispatch."""
        counts, anchors = self.counts.numpy(), self.anchors.numpy()
        col, values = self.col.numpy(), self.values.numpy()
        out = np.zeros((len(index), self.cols), dtype=np.float32)
        for i, row in enumerate(index.tolist()):
            base = row - row % self.ANCHOR
            start = int(anchors[row // self.ANCHOR]) + int(counts[base:row].sum(dtype=np.int64))
            end = start + int(counts[row])
            out[i, col[start:end]] = values[start:end]
        return out


def csr_bytes(rows: int, cols: int, kept: int) -> int:
    """Bytes a :class:`SparseMatrix` holds."""
    anchors = -(-rows // SparseMatrix.ANCHOR) * 8
    return rows * column_dtype(cols + 1).itemsize + anchors + kept * (4 + column_dtype(cols).itemsize)


def matrix_form(encoded: dict[str, Tensor], empty_row: int | None = None) -> DenseMatrix | SparseMatrix:
    """A codec encoding (sparse_codec.py) as served: kept whole -> dense; CSR -> held as
    stored (columns narrowed where they fit); bitmap -> CSR once, unless the dense
    matrix is smaller (the served form is never larger than the dense one).
    ``empty_row``: put back an all-zero row there (the [PAD] row an export left out), so
    lookups and scores need no id arithmetic."""
    rows, cols = (int(x) for x in encoded["shape"])
    values = encoded["values"]
    if "bitmap" not in encoded and "crow" not in encoded:
        dense = values.reshape(rows, cols)
        if empty_row is not None:
            dense = torch.cat([dense[:empty_row], dense.new_zeros(1, cols), dense[empty_row:]])
        return DenseMatrix(dense)
    if "crow" in encoded:
        counts, col = encoded["crow"].long().diff(), encoded["col"]
    else:
        mask = unpack_bits(encoded["bitmap"], rows * cols).view(rows, cols)
        if csr_bytes(rows + (empty_row is not None), cols, values.numel()) >= (rows + (empty_row is not None)) * cols * 4:
            dense = torch.zeros(rows, cols)
            dense[mask] = values.float()
            return matrix_form({"shape": encoded["shape"], "values": dense.flatten()}, empty_row)
        counts, col = mask.sum(dim=1), mask.nonzero()[:, 1]
    if empty_row is not None:
        counts = torch.cat([counts[:empty_row], counts.new_zeros(1), counts[empty_row:]])
    return SparseMatrix(cols, counts, col, values)


def encoded_part(parts: dict[str, Tensor], key: str) -> dict[str, Tensor] | None:
    """The codec encoding stored under ``<key>.`` in a table's export, if any."""
    prefix = f"{key}."
    found = {k[len(prefix):]: v for k, v in parts.items() if k.startswith(prefix)}
    return found or None


def part_form(parts: dict[str, Tensor], key: str, empty_row: int | None = None) -> DenseMatrix | SparseMatrix:
    """A 2-D tensor of a table's export: stored plainly (``key``) or encoded (``key.*``,
    a method's pruning or a composed ticket's)."""
    if key in parts:
        return matrix_form({"shape": torch.tensor(parts[key].shape), "values": parts[key].flatten()}, empty_row)
    encoded = encoded_part(parts, key)
    if encoded is None:
        raise KeyError(key)
    return matrix_form(encoded, empty_row)


def decode_composed(parts: dict[str, Tensor]) -> dict[str, Tensor]:
    """A table's export with the tensors a composed ticket stored as non-zeros (the
    encodings that carry a ``full_shape``) decoded back to dense tensors."""
    composed = {k.rsplit(".", 1)[0] for k in parts if k.endswith(".full_shape")}
    out = {k: v for k, v in parts.items() if not any(k.startswith(f"{c}.") for c in composed)}
    for key in composed:
        out[key] = dense_part(parts, key)
    return out


def dense_part(parts: dict[str, Tensor], key: str) -> Tensor:
    """A tensor of a table's export as a dense tensor of its full shape (small tensors
    such as codebooks, which a composed ticket may have masked)."""
    from recbole_compress.embeddings.sparse_codec import decode_masked

    if key in parts:
        return parts[key]
    encoded = encoded_part(parts, key)
    dense, _ = decode_masked(encoded)
    shape = encoded.get("full_shape")
    return dense.reshape(torch.Size(shape.tolist())) if shape is not None else dense


# -- tables ----------------------------------------------------------------------------------

class ServingTable(ServedPart):
    """``num_embeddings`` rows of ``embedding_dim``; ``forward(ids)`` looks rows up (a drop-in
    for the table inside a RecBole model) and ``score(query)`` scores the first
    ``scored_rows`` rows ([PAD] column 0.0), like ``query @ weight[:scored_rows].T``."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.padding_idx = padding_idx
        self.scored_rows = self.num_embeddings

    def forward(self, ids: Tensor) -> Tensor:
        raise NotImplementedError

    def score(self, query: Tensor) -> Tensor:
        raise NotImplementedError

    def entity_index(self, ids: Tensor) -> Tensor:
        """Entity number of every id ([PAD] left out; the [PAD] id maps to entity 0 and is zeroed)."""
        ids = ids.long()
        if self.padding_idx is None:
            return ids
        if ids.numel() <= FEW_ROWS:  # one user's lookup: numpy's small operations are cheaper
            x = ids.numpy()
            return torch.from_numpy(np.maximum(x - (x > self.padding_idx), 0))
        return (ids - (ids > self.padding_idx).long()).clamp(min=0)

    def zero_pad(self, rows: Tensor, ids: Tensor) -> Tensor:
        if self.padding_idx is None:
            return rows
        if ids.numel() <= FEW_ROWS and not (ids.numpy() == self.padding_idx).any():
            return rows
        return rows.masked_fill((ids == self.padding_idx).unsqueeze(-1), 0.0)

    def with_pad_column(self, entity_scores: Tensor, other: Tensor | None = None) -> Tensor:
        """Entity scores ``[B, rows - 1]`` (plus ``other``, when given) -> ``[B, rows]`` with
        the [PAD] column 0.0, written once into the result."""
        if self.padding_idx is None:
            return entity_scores if other is None else entity_scores + other
        pad, (batch, n) = self.padding_idx, entity_scores.shape
        out = entity_scores.new_empty(batch, n + 1)
        out[:, pad] = 0.0
        if other is None:
            out[:, :pad], out[:, pad + 1:] = entity_scores[:, :pad], entity_scores[:, pad:]
        elif pad == 0:
            torch.add(entity_scores, other, out=out[:, 1:])
        else:
            out[:, :pad], out[:, pad + 1:] = entity_scores[:, :pad] + other[:, :pad], entity_scores[:, pad:] + other[:, pad:]
        return out

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, padding_idx={self.padding_idx}, held={self.held_bytes()} B"


class RowTable(ServingTable):
    """One matrix holding every row of the table (an all-zero [PAD] row included)."""

    def __init__(self, matrix, padding_idx: int | None):
        super().__init__(matrix.rows_count, matrix.cols, padding_idx)
        self.matrix = matrix

    def forward(self, ids: Tensor) -> Tensor:
        return self.matrix.rows(ids)

    def score(self, query: Tensor) -> Tensor:
        return self.matrix.scores(query)


class MetaTable(ServingTable):
    """Entity x = ``P[x mod b] (+|concat) Q[x div divisor]`` (CERP: divisor ceil(N/b); QR: b)."""

    def __init__(self, p, q, num_embeddings, embedding_dim, padding_idx, buckets, divisor, combine):
        super().__init__(num_embeddings, embedding_dim, padding_idx)
        self.P, self.Q = p, q
        self.buckets, self.divisor, self.combine = int(buckets), int(divisor), combine
        self.entities = self.num_embeddings - (padding_idx is not None)

    def forward(self, ids: Tensor) -> Tensor:
        if ids.numel() <= FEW_ROWS:  # one user's lookup, in numpy
            flat = ids.reshape(-1).long().numpy()
            x = flat if self.padding_idx is None else np.maximum(flat - (flat > self.padding_idx), 0)
            p, q = self.P.rows_numpy(x % self.buckets), self.Q.rows_numpy(x // self.divisor)
            rows = p + q if self.combine == "sum" else np.concatenate([p, q], axis=1)
            if self.padding_idx is not None:
                rows[flat == self.padding_idx] = 0.0
            return torch.from_numpy(rows).view(*ids.shape, self.embedding_dim)
        x = self.entity_index(ids)
        p, q = self.P.rows(x % self.buckets), self.Q.rows(x // self.divisor)
        rows = p + q if self.combine == "sum" else torch.cat([p, q], dim=-1)
        return self.zero_pad(rows, ids)

    def score(self, query: Tensor) -> Tensor:
        if self.combine == "sum":
            sp, sq = self.P.scores(query), self.Q.scores(query)
        else:
            half = self.P.cols
            sp, sq = self.P.scores(query[:, :half]), self.Q.scores(query[:, half:])
        n = self.entities
        if query.shape[0] == 1:  # one user: the spread in numpy
            tiled = np.tile(sp[0].numpy(), -(-n // self.buckets))[:n]
            stretched = np.repeat(sq[0].numpy(), self.divisor)[:n]
            return self.with_pad_column(torch.from_numpy(tiled)[None], torch.from_numpy(stretched)[None])
        tiled = sp.repeat(1, -(-n // self.buckets))[:, :n]  # P[x mod b]
        stretched = sq.repeat_interleave(self.divisor, dim=1)[:, :n]  # Q[x div divisor]
        return self.with_pad_column(tiled, stretched)
