"""CERP (Learning Compact Compositional Embeddings via Regularized Pruning,
ICDM 2023) and its two neighbours, as compressed embeddings.

- :class:`CERPEmbedding`: two meta tables P, Q (b x d'); entity x is
  ``P[x mod b] (+|concat) Q[x div ceil(N/b)]``, every element pruned by a
  learnable soft threshold ``sign(w) * relu(|w| - sigmoid(s))``.
- :class:`PEPEmbedding`: the same soft thresholds on one full N x d table (PEP).
- :class:`QREmbedding`: the quotient-remainder trick, two dense tables, no pruning.

Entities are the rows after RecBole's [PAD] row 0 (which stays zero and is not
counted). Stage 2 of the CERP/PEP training fixes the elements kept by
:meth:`PrunedEmbedding.fix_mask` with masked.py's :class:`TensorMask` and turns
the thresholds off; exports store the kept elements as the smaller of CSR or
bitmap (sparse_codec.py's encoding) plus the mapping's integers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recbole_compress.embeddings.base import CompressedEmbedding
from recbole_compress.embeddings import masked
from recbole_compress.embeddings.masked import add_mask, original_of
from recbole_compress.embeddings.sparse_codec import decode_masked, encode_masked
from recbole_compress.errors import UserError

COMBINES = ("sum", "concat")


def soft_threshold(weight: Tensor, threshold_logit: Tensor) -> Tensor:
    """PEP's pruning: ``sign(w) * relu(|w| - sigmoid(s))``; exactly zero below the threshold.
    Written as ``w - clamp(w, -t, t)``: the same values and gradients in three ops, not six."""
    t = torch.sigmoid(threshold_logit)
    return weight - torch.clamp(weight, -t, t)


def part_dim(dim: int, combine: str) -> int:
    """Columns of each meta table: d for ``sum``, d/2 for ``concat``."""
    if combine not in COMBINES:
        raise UserError(f"meta_combine={combine} is not one of {', '.join(COMBINES)}")
    if combine == "concat" and dim % 2:
        raise UserError(f"meta_combine=concat needs an even embedding size, got {dim}; use sum or an even size")
    return dim if combine == "sum" else dim // 2


def check_buckets(buckets: int, entities: int) -> None:
    """The (x mod b, x div ceil(N/b)) pair is unique for every x < N only when b*b >= N."""
    if buckets < 1 or buckets * buckets < entities:
        raise UserError(
            f"meta_buckets={buckets}: b*b={buckets * buckets} < {entities} entities, so two entities would share "
            f"both meta rows; use meta_buckets >= {math.isqrt(entities - 1) + 1} (or leave it empty to derive it)"
        )


def with_pad_row(entities: Tensor, padding_idx: int | None) -> Tensor:
    """The table of entity rows with RecBole's zero [PAD] row put back in place."""
    if padding_idx is None:
        return entities
    pad = entities.new_zeros(1, entities.shape[1])
    return torch.cat([entities[:padding_idx], pad, entities[padding_idx:]])


def tiled(table: Tensor, count: int) -> Tensor:
    """``table[x mod b]`` for x < count, as a tile: its gradient is a sum, not a scatter."""
    reps = -(-count // table.shape[0])
    return table.repeat(reps, 1)[:count]


def stretched(table: Tensor, count: int, times: int) -> Tensor:
    """``table[x div times]`` for x < count, as a repeat: its gradient is a sum, not a scatter."""
    return table.repeat_interleave(times, dim=0)[:count]


class PrunedEmbedding(CompressedEmbedding):
    """Tables whose elements are pruned by learnable soft thresholds (stage 1),
    then kept by a fixed mask (stage 2). Subclasses say which tables (``parts``)
    there are and how an entity's row is assembled from them."""

    masks_own_tensors = True

    parts: tuple[str, ...] = ()

    def __init__(self, num_embeddings, embedding_dim, padding_idx=0, threshold_init=-6.0):
        super().__init__(num_embeddings, embedding_dim, padding_idx)
        self.entities = self.num_embeddings - (padding_idx is not None)
        self.threshold_init = float(threshold_init)
        self.fixed = False  # stage 2: masks fixed, thresholds off

    def _add_parts(self, shapes: dict[str, tuple[int, int]], unused: dict[str, Tensor] | None = None) -> None:
        for name, shape in shapes.items():
            weight = torch.empty(shape)
            nn.init.xavier_normal_(weight)
            self.register_parameter(name, nn.Parameter(weight))
            self.register_parameter(f"{name}_threshold", nn.Parameter(torch.full(shape, self.threshold_init)))
            mask = add_mask(self, name)
            if unused and name in unused:  # rows no entity maps to: never kept, never counted
                mask.mask[unused[name]] = False
                original_of(self, name).data.mul_(mask.mask)
        real = torch.ones(self.num_embeddings, 1)
        if self.padding_idx is not None:
            real[self.padding_idx] = 0.0
        self.register_buffer("real_rows", real, persistent=False)

    # -- the pruned tables -----------------------------------------------------------
    def mask_of(self, name: str) -> Tensor:
        return masked.mask_of(self, name).mask

    def effective(self, name: str) -> Tensor:
        """The table as used: soft-thresholded in stage 1, masked in stage 2."""
        weight = getattr(self, name)  # already times the mask (parametrisation)
        if self.fixed:
            return weight
        return soft_threshold(weight, getattr(self, f"{name}_threshold"))

    def thresholds(self) -> list[nn.Parameter]:
        return [getattr(self, f"{name}_threshold") for name in self.parts]

    def capacity(self) -> int:
        """Elements that can be kept (rows no entity uses excluded)."""
        return self._capacity

    def parameter_count(self) -> int:
        if self.fixed:
            return int(sum(self.mask_of(n).sum() for n in self.parts))
        with torch.no_grad():
            return int(sum(torch.count_nonzero(self.effective(n)) for n in self.parts))

    @torch.no_grad()
    def fix_mask(self, budget: int) -> int:
        """End of stage 1: keep exactly ``min(budget, capacity)`` elements, those with
        the largest margin ``|w| - sigmoid(s)`` (the soft threshold's own order: every
        element still alive ranks above every pruned one), then fix the mask and turn
        the thresholds off. Returns the number kept."""
        margins, positions = [], []
        for name in self.parts:
            alive = self.mask_of(name)
            weight = original_of(self, name)
            margin = weight.abs() - torch.sigmoid(getattr(self, f"{name}_threshold"))
            margins.append(margin[alive])
            positions.append(alive.nonzero(as_tuple=True))
        flat = torch.cat(margins)
        keep = min(int(budget), flat.numel())
        chosen = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
        chosen[torch.topk(flat, keep).indices] = True
        offset = 0
        for name, pos in zip(self.parts, positions):
            count = pos[0].numel()
            mask = self.mask_of(name)
            mask.zero_()
            mask[tuple(p[chosen[offset : offset + count]] for p in pos)] = True
            original_of(self, name).mul_(mask)
            offset += count
        self.set_fixed()
        return keep

    def set_fixed(self) -> None:
        self.fixed = True
        for threshold in self.thresholds():
            threshold.requires_grad_(False)

    # -- lookup ------------------------------------------------------------------------
    def rows(self, ids: Tensor) -> Tensor:
        raise NotImplementedError

    @property
    def weight(self) -> Tensor:
        return self.rows(torch.arange(self.num_embeddings, device=self.real_rows.device))

    def forward(self, ids: Tensor) -> Tensor:
        return self.rows(ids)

    # -- export --------------------------------------------------------------------------
    def _export_parts(self) -> dict[str, Tensor]:
        out = {}
        for name in self.parts:
            values = self.effective(name).detach()
            mask = self.mask_of(name) if self.fixed else values.ne(0)
            for key, value in encode_masked(values, mask).items():
                out[f"{name}.{key}"] = value
        return out

    @staticmethod
    def _import_parts(module: "PrunedEmbedding", tensors: dict[str, Tensor]) -> "PrunedEmbedding":
        with torch.no_grad():
            for name in module.parts:
                prefix = f"{name}."
                dense, mask = decode_masked({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
                module.mask_of(name).copy_(mask)
                original_of(module, name).copy_(dense)
        module.set_fixed()
        return module


class CERPEmbedding(PrunedEmbedding):
    """Two pruned meta tables P, Q of ``buckets`` rows; entity x (0-based, [PAD]
    excluded) uses ``P[x mod b]`` and ``Q[x div ceil(N/b)]``, summed or concatenated."""

    parts = ("P", "Q")

    def __init__(self, num_embeddings, embedding_dim, buckets, combine="sum", padding_idx=0, threshold_init=-6.0):
        super().__init__(num_embeddings, embedding_dim, padding_idx, threshold_init)
        check_buckets(int(buckets), self.entities)
        self.buckets = int(buckets)
        self.combine = combine
        self.divisor = math.ceil(self.entities / self.buckets)
        cols = part_dim(self.embedding_dim, combine)
        p_index, q_index = self.mapping()
        self.register_buffer("p_index", p_index, persistent=False)
        self.register_buffer("q_index", q_index, persistent=False)
        used_q = int(q_index.max()) + 1
        self._add_parts({"P": (self.buckets, cols), "Q": (self.buckets, cols)}, {"Q": slice(used_q, None)})
        self._capacity = self.capacity_for(self.entities, self.buckets, cols)

    @staticmethod
    def capacity_for(entities: int, buckets: int, cols: int) -> int:
        """Elements of P and of the Q rows some entity uses (Q row x div ceil(N/b))."""
        used_q = (entities - 1) // math.ceil(entities / buckets) + 1
        return (buckets + used_q) * cols

    def mapping(self) -> tuple[Tensor, Tensor]:
        """(P row, Q row) of every table row; [PAD] maps to row 0 and is zeroed."""
        x = torch.arange(self.num_embeddings)
        if self.padding_idx is not None:
            x = (x - (x > self.padding_idx).long()).clamp(min=0)  # entity number, [PAD] skipped
        return x % self.buckets, x // self.divisor

    def rows(self, ids: Tensor) -> Tensor:
        p = F.embedding(self.p_index[ids], self.effective("P"))
        q = F.embedding(self.q_index[ids], self.effective("Q"))
        combined = p + q if self.combine == "sum" else torch.cat([p, q], dim=-1)
        return combined * self.real_rows[ids]

    @property
    def weight(self) -> Tensor:
        p = tiled(self.effective("P"), self.entities)
        q = stretched(self.effective("Q"), self.entities, self.divisor)
        return with_pad_row(p + q if self.combine == "sum" else torch.cat([p, q], dim=-1), self.padding_idx)

    def export(self) -> dict[str, Tensor]:
        out = self._export_parts()
        # the index mapping is arithmetic: its integers are all an importer needs
        out["mapping"] = torch.tensor(
            [self.num_embeddings, self.embedding_dim, self.buckets, self.divisor, COMBINES.index(self.combine),
             -1 if self.padding_idx is None else self.padding_idx], dtype=torch.int64,
        )
        return out

    @classmethod
    def serving_form(cls, parts: dict[str, Tensor]):
        """The two pruned meta tables, row-sparse; scores never build the full table."""
        from recbole_compress.embeddings.serving import MetaTable, part_form

        num, dim, buckets, divisor, combine, pad = (int(v) for v in parts["mapping"])
        pad = None if pad < 0 else pad
        return MetaTable(part_form(parts, "P"), part_form(parts, "Q"), num, dim, pad, buckets, divisor, COMBINES[combine])

    @classmethod
    def from_export(cls, tensors: dict[str, Tensor]) -> "CERPEmbedding":
        num, dim, buckets, _, combine, pad = (int(v) for v in tensors["mapping"])
        module = cls(num, dim, buckets, COMBINES[combine], None if pad < 0 else pad)
        return cls._import_parts(module, tensors)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, buckets={self.buckets}, combine={self.combine}, fixed={self.fixed}"


class PEPEmbedding(PrunedEmbedding):
    """PEP (Liu et al., ICLR 2021): one full table with element-wise soft thresholds."""

    parts = ("P",)

    def __init__(self, num_embeddings, embedding_dim, padding_idx=0, threshold_init=-6.0):
        super().__init__(num_embeddings, embedding_dim, padding_idx, threshold_init)
        x = torch.arange(self.num_embeddings)
        if padding_idx is not None:
            x = (x - (x > padding_idx).long()).clamp(min=0)
        self.register_buffer("p_index", x, persistent=False)
        self._add_parts({"P": (self.entities, self.embedding_dim)})
        self._capacity = self.entities * self.embedding_dim

    def rows(self, ids: Tensor) -> Tensor:
        return F.embedding(self.p_index[ids], self.effective("P")) * self.real_rows[ids]

    @property
    def weight(self) -> Tensor:
        return with_pad_row(self.effective("P"), self.padding_idx)

    def export(self) -> dict[str, Tensor]:
        out = self._export_parts()
        pad = -1 if self.padding_idx is None else self.padding_idx
        out["mapping"] = torch.tensor([self.num_embeddings, self.embedding_dim, pad], dtype=torch.int64)
        return out

    @classmethod
    def serving_form(cls, parts: dict[str, Tensor]):
        """The pruned entity rows, row-sparse."""
        from recbole_compress.embeddings.serving import RowTable, part_form

        pad = int(parts["mapping"][2])
        pad = None if pad < 0 else pad
        return RowTable(part_form(parts, "P", empty_row=pad), pad)

    @classmethod
    def from_export(cls, tensors: dict[str, Tensor]) -> "PEPEmbedding":
        num, dim, pad = (int(v) for v in tensors["mapping"])
        return cls._import_parts(cls(num, dim, None if pad < 0 else pad), tensors)


class QREmbedding(CompressedEmbedding):
    """Quotient-remainder trick (Shi et al., KDD 2020): ``P[x mod b]`` and
    ``Q[x div b]`` (``ceil(N/b)`` rows), summed or concatenated; dense, no pruning."""

    def __init__(self, num_embeddings, embedding_dim, buckets, combine="sum", padding_idx=0):
        super().__init__(num_embeddings, embedding_dim, padding_idx)
        self.entities = self.num_embeddings - (padding_idx is not None)
        self.buckets = int(buckets)
        self.combine = combine
        cols = part_dim(self.embedding_dim, combine)
        x = torch.arange(self.num_embeddings)
        if padding_idx is not None:
            x = (x - (x > padding_idx).long()).clamp(min=0)
        self.register_buffer("p_index", x % self.buckets, persistent=False)
        self.register_buffer("q_index", x // self.buckets, persistent=False)
        self.P = nn.Parameter(nn.init.xavier_normal_(torch.empty(self.buckets, cols)))
        self.Q = nn.Parameter(nn.init.xavier_normal_(torch.empty(math.ceil(self.entities / self.buckets), cols)))
        real = torch.ones(self.num_embeddings, 1)
        if padding_idx is not None:
            real[padding_idx] = 0.0
        self.register_buffer("real_rows", real, persistent=False)

    @staticmethod
    def rows_for(entities: int, buckets: int) -> int:
        return buckets + math.ceil(entities / buckets)

    def rows(self, ids: Tensor) -> Tensor:
        p, q = F.embedding(self.p_index[ids], self.P), F.embedding(self.q_index[ids], self.Q)
        combined = p + q if self.combine == "sum" else torch.cat([p, q], dim=-1)
        return combined * self.real_rows[ids]

    @property
    def weight(self) -> Tensor:
        p = tiled(self.P, self.entities)
        q = stretched(self.Q, self.entities, self.buckets)
        return with_pad_row(p + q if self.combine == "sum" else torch.cat([p, q], dim=-1), self.padding_idx)

    def forward(self, ids: Tensor) -> Tensor:
        return self.rows(ids)

    def parameter_count(self) -> int:
        return self.P.numel() + self.Q.numel()

    def export(self) -> dict[str, Tensor]:
        pad = -1 if self.padding_idx is None else self.padding_idx
        return {
            "P": self.P.detach().clone(),
            "Q": self.Q.detach().clone(),
            "mapping": torch.tensor([self.num_embeddings, self.embedding_dim, self.buckets, COMBINES.index(self.combine), pad], dtype=torch.int64),
        }

    @classmethod
    def serving_form(cls, parts: dict[str, Tensor]):
        """The two tables (row-sparse where a composed ticket pruned them)."""
        from recbole_compress.embeddings.serving import MetaTable, part_form

        num, dim, buckets, combine, pad = (int(v) for v in parts["mapping"])
        pad = None if pad < 0 else pad
        return MetaTable(part_form(parts, "P"), part_form(parts, "Q"), num, dim, pad, buckets, buckets, COMBINES[combine])

    @classmethod
    def from_export(cls, tensors: dict[str, Tensor]) -> "QREmbedding":
        num, dim, buckets, combine, pad = (int(v) for v in tensors["mapping"])
        module = cls(num, dim, buckets, COMBINES[combine], None if pad < 0 else pad)
        with torch.no_grad():
            module.P.copy_(tensors["P"])
            module.Q.copy_(tensors["Q"])
        return module

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, buckets={self.buckets}, combine={self.combine}"
