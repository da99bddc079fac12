"""RecJPQ's served form: codes + codebooks, scored by PQTopK without a cached index
(the codes are held as int16 pair codes, as many bytes as the uint8 codes). The other
served forms and what they share are in :mod:`recbole_compress.embeddings.serving`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from recbole_compress.embeddings.serving import ServingTable

CODED_ITEM_BLOCK = 8192  # PQTopK: items per block (index tensors live for one block only)
PAIRS_MAX_BATCH = 8  # PQTopK without a cached index: pair tables up to here, then the bag
BAG_MAX_BATCH = 32


def coded_scoring_path(batch: int, items: int, dim: int, code_length: int) -> str:
    """The fastest exact path without a cached index (benchmarks/serve.py's synthetic
    section, 1 thread): a small table is materialised block by block (a matmul beats
    building sub-scores); per-query pair tables up to 8 queries; the bag over sub-scores
    up to 32 (or with wide sub-vectors); blocks beyond."""
    from recbole_compress.embeddings.jpq import MIN_TABLE_FLOATS_FOR_PQ

    if items * dim < MIN_TABLE_FLOATS_FOR_PQ:
        return "blocks"
    if batch <= PAIRS_MAX_BATCH and code_length % 2 == 0:
        return "pairs"
    if batch <= BAG_MAX_BATCH or dim // code_length >= 16:
        return "bag"
    return "blocks"


class CodedTable(ServingTable):
    """RecJPQ: the codes of the entity rows ([PAD] left out, as exported), codebooks
    ``[m, K, d/m]`` and dense special rows after the coded ones (never scored).

    The codes are held pair by pair, split-major: ``pair_codes[j, x] = c[x, 2j] * K +
    c[x, 2j + 1]`` as int16 (offset by 32768), the same m bytes per item as the uint8
    codes, but a gather index after one widening pass: the pair path of PQTopK reads
    m/2 pair tables of K*K sums without a cached int32 index (which would hold 4x the
    codes). An odd m keeps its last split as uint8 (``last_codes``)."""

    OFFSET = 32768

    def __init__(self, codes: Tensor, codebooks: Tensor, special: Tensor, n_coded: int, padding_idx: int | None):
        m, k, sub = codebooks.shape
        super().__init__(n_coded + special.shape[0], m * sub, padding_idx)
        self.code_length, self.n_centroids, self.sub_dim = m, k, sub
        self.n_coded = int(n_coded)
        self.scored_rows = self.n_coded
        self.entities = codes.shape[0]
        wide = codes.int()
        pairs = (wide[:, 0 : m - 1 : 2] * k + wide[:, 1::2] - self.OFFSET).to(torch.int16)
        self.hold("pair_codes", pairs.T.contiguous())  # [m // 2, entities]
        self.hold("last_codes", codes[:, m - 1 :].T.contiguous() if m % 2 else codes.new_zeros(0, self.entities))
        self.hold("codebooks", codebooks.float().contiguous())
        self.hold("special", special.float().contiguous())

    def codes_of(self, entity: Tensor) -> Tensor:
        """int64 codes ``[len, m]`` of some entity rows."""
        pair = self.pair_codes[:, entity].long().T + self.OFFSET  # [len, m // 2]
        split = torch.stack([pair // self.n_centroids, pair % self.n_centroids], dim=-1).reshape(entity.numel(), -1)
        if self.code_length % 2:
            split = torch.cat([split, self.last_codes[:, entity].long().T], dim=1)
        return split

    def coded_rows(self, entity: Tensor) -> Tensor:
        flat = self.codes_of(entity.reshape(-1)) + torch.arange(self.code_length) * self.n_centroids
        rows = F.embedding(flat, self.codebooks.reshape(-1, self.sub_dim))
        return rows.reshape(*entity.shape, self.embedding_dim)

    def forward(self, ids: Tensor) -> Tensor:
        ids = ids.long()
        special = ids >= self.n_coded
        coded = ids.clamp(max=self.n_coded - 1)
        rows = self.zero_pad(self.coded_rows(self.entity_index(coded)), ids)
        if bool(special.any()):
            rows[special] = self.special[ids[special] - self.n_coded]
        return rows

    def score(self, query: Tensor) -> Tensor:
        """PQTopK: ``S[b, k, j] = query_k . codebook_k[j]``, each item sums its m entries
        of S (the path per regime: :func:`coded_scoring_path`)."""
        path = coded_scoring_path(query.shape[0], self.entities, self.embedding_dim, self.code_length)
        if path == "pairs":
            out = self._score_pairs(query)
        elif path == "bag":
            out = self._score_bag(query)
        else:
            out = self._score_blocks(query)
        return self.with_pad_column(out)

    def _sub_scores(self, query: Tensor) -> Tensor:
        return torch.einsum("bks,kjs->bkj", query.reshape(query.shape[0], self.code_length, self.sub_dim), self.codebooks)

    def _score_pairs(self, query: Tensor) -> Tensor:
        k = self.n_centroids
        sub = self._sub_scores(query)
        out = query.new_empty(query.shape[0], self.entities)
        for b in range(query.shape[0]):  # one query at a time: its pair tables are m/2 * K * K floats
            pairs = (sub[b, 0::2, :, None] + sub[b, 1::2, None, :]).reshape(self.code_length // 2, k * k)
            o = out[b]
            for j in range(pairs.shape[0]):
                index = self.pair_codes[j].int().add_(self.OFFSET)
                if j == 0:
                    torch.index_select(pairs[0], 0, index, out=o)
                else:
                    o += pairs[j].index_select(0, index)
        return out

    def _score_bag(self, query: Tensor) -> Tensor:
        table = self._sub_scores(query).reshape(query.shape[0], -1).T.contiguous()  # [m * K, B]
        shift = torch.arange(self.code_length) * self.n_centroids
        out = query.new_empty(query.shape[0], self.entities)
        for s in range(0, self.entities, CODED_ITEM_BLOCK):
            entity = torch.arange(s, min(self.entities, s + CODED_ITEM_BLOCK))
            out[:, s : s + entity.numel()] = F.embedding_bag(self.codes_of(entity) + shift, table, mode="sum").T
        return out

    def _score_blocks(self, query: Tensor) -> Tensor:
        out = query.new_empty(query.shape[0], self.entities)
        for s in range(0, self.entities, CODED_ITEM_BLOCK):  # one materialised block at a time
            rows = self.coded_rows(torch.arange(s, min(self.entities, s + CODED_ITEM_BLOCK)))
            out[:, s : s + rows.shape[0]] = query @ rows.T
        return out
