"""RecJPQ (Petrov & Macdonald, WSDM 2024): an item table stored as sub-item codes.

Every item has ``m`` uint8 codes, fixed before training (see
:mod:`recbole_compress.embeddings.jpq_codes`); split ``k`` has a codebook of up to
256 trainable sub-embeddings of size ``d / m``; an item's vector is the
concatenation of its ``m`` sub-embeddings. The trainable part (``256 * d``
numbers) does not grow with the catalogue; the codes cost ``m`` bytes per item.

Rows after the coded ones are *special* rows stored densely (BERT4Rec's [MASK]
token: it is no item, has no interactions to derive codes from, and must not share
sub-embeddings with items). Row ``padding_idx`` ([PAD]) is always zero.

Scoring every item against a batch of sequence embeddings (``score_all``) never
needs the materialised table (PQTopK, Petrov & Macdonald, RecSys 2024): split the
query into ``m`` chunks, ``S[b, k, j] = query_k . codebook_k[j]`` (``m x 256`` dot
products per query), then ``score(item) = sum_k S[b, k, code[item, k]]``.
Three exact implementations, picked per regime by :func:`choose_scoring_path`:

- ``pairs``: per query, sums of split pairs ``S2[k, j1 * 256 + j2]`` (``m/2`` tables
  of 65,536), then ``m/2`` 1-D gathers over the catalogue. Best for one or two queries.
- ``bag``: ``embedding_bag(sum)`` over the flat code indices with ``S^T`` as the
  table: one fused gather-sum per item for a block of queries, written into the
  ``[B, n_items]`` result block by block (cache-sized). Best for small batches.
- ``dense``: materialise the table and matmul (cached while evaluating, see
  :meth:`JPQEmbedding.score_all`); BLAS beats a gather-sum for large batches when
  ``d / m`` is small.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recbole_compress.embeddings.base import CompressedEmbedding
from recbole_compress.embeddings.jpq_codes import MAX_CENTROIDS
from recbole_compress.errors import UserError

SCORING_PATHS = ("auto", "pairs", "bag", "dense")

# choose_scoring_path's thresholds, from benchmarks/pqtopk.py on the project's
# 2-core x86-64 CPU (torch, 1 thread; see docs/methods/jpq.md):
PAIRS_MAX_BATCH = 2  # pair tables win for 1-2 queries
BAG_MAX_BATCH = 16  # embedding_bag beats BLAS up to here even at d/m = 8
BAG_ANY_BATCH_DIM_PER_SPLIT = 16  # from d/m = 16 on, the gather-sum does fewer operations per score than BLAS can hide
MIN_TABLE_FLOATS_FOR_PQ = 2_000_000  # below ~8 MB the table stays in cache and a matmul beats building S
BAG_QUERY_CHUNK = 32
BAG_ITEM_BLOCK = 8192


def choose_scoring_path(batch: int, n_items: int, dim: int, code_length: int) -> str:
    """The fastest exact scoring path for a regime, as measured by benchmarks/pqtopk.py."""
    if n_items * dim < MIN_TABLE_FLOATS_FOR_PQ:
        return "dense"
    if batch <= PAIRS_MAX_BATCH and code_length % 2 == 0:
        return "pairs"
    if batch <= BAG_MAX_BATCH or dim // code_length >= BAG_ANY_BATCH_DIM_PER_SPLIT:
        return "bag"
    return "dense"


def check_divides(code_length: int, dim: int, where: str = "") -> None:
    """``code_length`` must divide ``dim``; the error names the nearest divisors."""
    if dim % code_length == 0:
        return
    divisors = [k for k in range(1, dim + 1) if dim % k == 0]
    below = max(k for k in divisors if k < code_length)
    above = [k for k in divisors if k > code_length]
    hint = f"{below} or {above[0]}" if above else str(below)
    where = f" ({where})" if where else ""
    raise UserError(f"jpq_code_length={code_length} does not divide embedding size {dim}{where}; use a divisor such as {hint}")


class JPQEmbedding(CompressedEmbedding):
    """``num_embeddings = codes.shape[0] + n_special`` rows of size ``embedding_dim``.

    ``codes``: uint8 ``[n_coded, m]`` (row ``padding_idx`` ignored); ``m`` must divide
    ``embedding_dim``; codes must be below ``n_centroids`` (<= 256).
    """

    def __init__(
        self,
        codes: Tensor,
        embedding_dim: int,
        n_centroids: int = MAX_CENTROIDS,
        n_special: int = 0,
        padding_idx: int | None = 0,
        init_std: float = 0.02,
        scoring: str = "auto",
    ):
        codes = torch.as_tensor(codes)
        if codes.dim() != 2 or codes.dtype != torch.uint8:
            raise UserError(f"JPQ codes must be a uint8 [n_items, m] tensor, got {codes.dtype} {tuple(codes.shape)}")
        n_coded, m = codes.shape
        super().__init__(n_coded + n_special, embedding_dim, padding_idx)
        if not 2 <= n_centroids <= MAX_CENTROIDS:
            raise UserError(f"jpq_centroids={n_centroids} is outside 2..{MAX_CENTROIDS}: codes are uint8; use at most {MAX_CENTROIDS}")
        check_divides(m, embedding_dim)
        if n_coded and int(codes.max()) >= n_centroids:
            raise UserError(f"JPQ codes go up to {int(codes.max())} but jpq_centroids={n_centroids}; use more centroids")
        if padding_idx is not None and not 0 <= padding_idx < n_coded:
            raise UserError(f"padding_idx={padding_idx} is not a coded row (0..{n_coded - 1})")
        if scoring not in SCORING_PATHS:
            raise UserError(f"jpq_scoring={scoring} is not one of {', '.join(SCORING_PATHS)}; use auto")
        self.code_length = m
        self.n_centroids = int(n_centroids)
        self.n_coded = n_coded
        self.n_special = int(n_special)
        self.sub_dim = embedding_dim // m
        self.scoring = scoring
        self.register_buffer("codes", codes.clone())
        self.codebooks = nn.Parameter(torch.empty(m, self.n_centroids, self.sub_dim))
        self.special = nn.Parameter(torch.empty(self.n_special, embedding_dim))
        self.register_buffer("_offsets", torch.arange(m) * self.n_centroids, persistent=False)
        nn.init.normal_(self.codebooks, 0.0, init_std)
        nn.init.normal_(self.special, 0.0, init_std)
        self._index_cache: dict = {}
        self._table_cache = None

    @classmethod
    def from_dense(cls, dense: nn.Embedding, codes: Tensor, n_centroids: int = MAX_CENTROIDS,
                   padding_idx: int | None = 0, scoring: str = "auto") -> "JPQEmbedding":
        """Replace ``dense``: its first ``codes.shape[0]`` rows become coded, the rest
        special (copied). Codebooks start with the dense table's spread (the
        backbone's own init: SASRec's N(0, 0.02), GRU4Rec's Xavier)."""
        n_special = dense.num_embeddings - codes.shape[0]
        if n_special < 0:
            raise UserError(
                f"JPQ got codes for {codes.shape[0]} items but the table has {dense.num_embeddings} rows; "
                "JPQ compresses item tables only (compress_tables: [item_embedding])"
            )
        weight = dense.weight.detach()
        rows = [i for i in range(codes.shape[0]) if i != padding_idx][:100_000]
        std = float(weight[rows].std()) if rows else 0.02
        module = cls(codes, dense.embedding_dim, n_centroids, n_special, padding_idx, init_std=std, scoring=scoring)
        with torch.no_grad():
            module.special.copy_(weight[codes.shape[0]:])
        return module.to(weight.device)

    # -- lookup ---------------------------------------------------------------
    def _gather(self, ids: Tensor) -> Tensor:
        """Rows for coded ``ids`` (any shape), [PAD] zeroed, without the full table."""
        flat = self.codes[ids].long() + self._offsets  # [..., m]
        rows = F.embedding(flat, self.codebooks.reshape(-1, self.sub_dim))  # [..., m, d/m]
        rows = rows.reshape(*ids.shape, self.embedding_dim)
        if self.padding_idx is not None:
            rows = rows * (ids != self.padding_idx).unsqueeze(-1).to(rows.dtype)
        return rows

    def forward(self, ids: Tensor) -> Tensor:
        if self.n_special == 0:
            return self._gather(ids)
        is_special = ids >= self.n_coded
        rows = self._gather(ids.clamp(max=self.n_coded - 1))
        special = F.embedding((ids - self.n_coded).clamp(min=0), self.special)
        return torch.where(is_special.unsqueeze(-1), special, rows)

    def coded_table(self) -> Tensor:
        """The materialised coded rows ``[n_coded, d]`` (differentiable)."""
        flat = self.codes.long() + self._offsets
        rows = F.embedding(flat, self.codebooks.reshape(-1, self.sub_dim)).reshape(self.n_coded, self.embedding_dim)
        if self.padding_idx is not None:
            rows[self.padding_idx] = 0.0  # in place on a fresh tensor: autograd gives the row zero gradient
        return rows

    @property
    def weight(self) -> Tensor:
        """The full table (coded rows, then special rows), differentiable."""
        table = self.coded_table()
        return torch.cat([table, self.special]) if self.n_special else table

    # -- scoring (PQTopK) -----------------------------------------------------
    def sub_scores(self, query: Tensor) -> Tensor:
        """``S[b, k, j] = query_k . codebook_k[j]``: ``[B, m, n_centroids]``."""
        q = query.reshape(query.shape[0], self.code_length, self.sub_dim)
        return torch.einsum("bks,kjs->bkj", q, self.codebooks)

    def score_all(self, query: Tensor, path: str | None = None) -> Tensor:
        """Scores of every coded row for each query: ``query @ coded_table().T``,
        ``[B, n_coded]`` ([PAD] column 0.0; special rows are not scored).

        ``path``: ``pairs``, ``bag`` (PQTopK: no table is materialised), ``dense``
        (materialise + matmul), or ``auto`` (default: the module's ``scoring``, which
        ``jpq_scoring`` sets) = :func:`choose_scoring_path`. The ``dense`` path keeps
        the materialised table between calls while the module is in eval mode and
        gradients are off (RecBole's evaluation loop), and drops it on ``train()``.
        """
        if query.dim() != 2 or query.shape[1] != self.embedding_dim:
            raise ValueError(f"score_all expects [batch, {self.embedding_dim}] queries, got {tuple(query.shape)}")
        path = path or self.scoring
        if path == "auto":
            path = choose_scoring_path(query.shape[0], self.n_coded, self.embedding_dim, self.code_length)
        if path == "pairs" and self.code_length % 2:
            path = "bag"
        if path == "dense":
            return query @ self._scoring_table().T
        if path == "pairs":
            scores = self._score_pairs(query)
        elif path == "bag":
            scores = self._score_bag(query)
        else:
            raise UserError(f"jpq_scoring={path} is not one of {', '.join(SCORING_PATHS)}; use auto")
        if self.padding_idx is not None:
            scores[:, self.padding_idx] = 0.0
        return scores

    def _scoring_table(self) -> Tensor:
        if self.training or torch.is_grad_enabled():
            self._table_cache = None
            return self.coded_table()
        key = (self.codebooks.data_ptr(), self.codebooks._version, self.codes.data_ptr(), self.codes._version)
        if self._table_cache is None or self._table_cache[0] != key:
            self._table_cache = (key, self.coded_table())
        return self._table_cache[1]

    def _indices(self, kind: str) -> Tensor:
        """int32 index tensors derived from the codes, kept between calls (runtime only,
        never exported): ``flat`` [n, m] = code + k * K; ``pairs`` [n, m/2] = index into
        the concatenated pair tables."""
        key = (kind, self.codes.data_ptr(), self.codes._version, self.codes.device)
        cached = self._index_cache.get(kind)
        if cached is not None and cached[0] == key:
            return cached[1]
        K = self.n_centroids
        codes = self.codes.int()
        if kind == "flat":
            index = codes + torch.arange(self.code_length, dtype=torch.int32, device=codes.device) * K
        else:
            half = self.code_length // 2
            index = codes[:, 0::2] * K + codes[:, 1::2] + torch.arange(half, dtype=torch.int32, device=codes.device) * (K * K)
        index = index.contiguous()
        self._index_cache[kind] = (key, index)
        return index

    def _score_pairs(self, query: Tensor) -> Tensor:
        B, K = query.shape[0], self.n_centroids
        S = self.sub_scores(query).reshape(B, self.code_length // 2, 2, K)
        index = self._indices("pairs")
        out = query.new_empty(B, self.n_coded)
        for b in range(B):  # one query at a time: its pair tables are m/2 * K * K floats (1 MiB at m=8)
            row = (S[b, :, 0, :, None] + S[b, :, 1, None, :]).reshape(-1)
            o = out[b]
            torch.index_select(row, 0, index[:, 0], out=o)
            for j in range(1, index.shape[1]):
                o += row.index_select(0, index[:, j])
        return out

    def _score_bag(self, query: Tensor) -> Tensor:
        B = query.shape[0]
        S = self.sub_scores(query).reshape(B, -1)  # [B, m * K]
        index = self._indices("flat")
        out = query.new_empty(B, self.n_coded)
        for c in range(0, B, BAG_QUERY_CHUNK):
            table = S[c : c + BAG_QUERY_CHUNK].T.contiguous()  # [m * K, chunk]
            block = BAG_ITEM_BLOCK * 4 if table.shape[1] <= 8 else BAG_ITEM_BLOCK
            for s in range(0, self.n_coded, block):
                e = min(self.n_coded, s + block)
                out[c : c + BAG_QUERY_CHUNK, s:e] = F.embedding_bag(index[s:e], table, mode="sum").T
        return out

    def train(self, mode: bool = True):
        if mode:
            self._table_cache = None
        return super().train(mode)

    # -- accounting and export ------------------------------------------------
    def parameter_count(self) -> int:
        return int(self.codebooks.numel() + self.special.numel())

    def export(self) -> dict[str, Tensor]:
        """uint8 codes (without the [PAD] row), float32 codebooks and special rows,
        and a small int32 header ``[n_coded, dim, padding_idx or -1, n_special]``."""
        keep = torch.ones(self.n_coded, dtype=torch.bool)
        if self.padding_idx is not None:
            keep[self.padding_idx] = False
        return {
            "codes": self.codes.detach().cpu()[keep].contiguous(),
            "codebooks": self.codebooks.detach().cpu().float().contiguous(),
            "special": self.special.detach().cpu().float().contiguous(),
            "header": torch.tensor(
                [self.n_coded, self.embedding_dim, -1 if self.padding_idx is None else self.padding_idx, self.n_special],
                dtype=torch.int32,
            ),
        }

    @classmethod
    def serving_form(cls, parts: dict[str, Tensor]):
        """Codes and codebooks as exported; PQTopK scoring (serving.py's CodedTable)."""
        from recbole_compress.embeddings.serving import dense_part
        from recbole_compress.embeddings.serving_coded import CodedTable

        n_coded, _, pad, _ = (int(x) for x in parts["header"])
        return CodedTable(parts["codes"], dense_part(parts, "codebooks"), dense_part(parts, "special"), n_coded,
                          None if pad < 0 else pad)

    @classmethod
    def from_export(cls, tensors: dict[str, Tensor]) -> "JPQEmbedding":
        n_coded, dim, pad, n_special = (int(x) for x in tensors["header"])
        pad = None if pad < 0 else pad
        codes = tensors["codes"]
        if pad is not None:
            codes = torch.cat([codes[:pad], torch.zeros(1, codes.shape[1], dtype=torch.uint8), codes[pad:]])
        codebooks = tensors["codebooks"]
        module = cls(codes, dim, codebooks.shape[1], n_special, pad)
        with torch.no_grad():
            module.codebooks.copy_(codebooks)
            module.special.copy_(tensors["special"])
        return module

    def extra_repr(self) -> str:
        return (
            f"{self.num_embeddings}, {self.embedding_dim}, code_length={self.code_length}, "
            f"centroids={self.n_centroids}, special_rows={self.n_special}, padding_idx={self.padding_idx}, "
            f"scoring={self.scoring}"
        )
