"""Masks as a reparametrisation: the machinery of lottery tickets (and of any
method that prunes elements of a tensor).

``TensorMask`` is a ``torch.nn.utils.parametrize`` parametrisation: the module's
tensor is recomputed as ``original * mask`` on every access, so models that read
``.weight`` directly (LightGCN, SASRec's scoring) never see a stale tensor, which
is the trap of ``torch.nn.utils.prune`` (it recomputes only in a forward pre-hook).
``MaskedEmbedding`` is the compressed-embedding form of it.
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

from recbole_compress.embeddings.base import CompressedEmbedding
from recbole_compress.embeddings.sparse_codec import decode_masked, encode_masked


class TensorMask(nn.Module):
    """Parametrisation ``w -> w * mask`` with a boolean ``mask`` buffer."""

    def __init__(self, shape: torch.Size, padding_idx: int | None = None):
        super().__init__()
        mask = torch.ones(shape, dtype=torch.bool)
        if padding_idx is not None:
            mask[padding_idx] = False  # RecBole's [PAD] row: always zero, never counted
        self.register_buffer("mask", mask)
        self.padding_idx = padding_idx
        self._multiplier: tuple | None = None

    def multiplier(self, like: Tensor) -> Tensor:
        """The mask as 0/1 in ``like``'s dtype, rebuilt only when the mask changes:
        multiplying by a bool tensor converts it on every access (forward and
        backward), a measurable share of a LightGCN step."""
        key = (self.mask._version, self.mask.data_ptr(), like.dtype, like.device)
        if self._multiplier is None or self._multiplier[0] != key:
            self._multiplier = (key, self.mask.to(dtype=like.dtype))
        return self._multiplier[1]

    def forward(self, original: Tensor) -> Tensor:
        return original * self.multiplier(original)

    def prunable(self) -> Tensor:
        """Boolean tensor of the positions that count (all but the [PAD] row)."""
        keep = torch.ones_like(self.mask)
        if self.padding_idx is not None:
            keep[self.padding_idx] = False
        return keep


def add_mask(module: nn.Module, name: str, padding_idx: int | None = None) -> TensorMask:
    """Register a :class:`TensorMask` on ``module.<name>`` and return it."""
    shape = getattr(module, name).shape
    mask = TensorMask(shape, padding_idx).to(getattr(module, name).device)
    parametrize.register_parametrization(module, name, mask)
    with torch.no_grad():
        original_of(module, name).mul_(mask.mask)
    return mask


# -- where a mask and its tensor live (torch's parametrize layout, known only here) --------

def mask_of(module: nn.Module, name: str) -> TensorMask | None:
    """The mask on ``module.<name>``, or None when that tensor is not masked."""
    if not parametrize.is_parametrized(module, name):
        return None
    return next((p for p in getattr(module.parametrizations, name) if isinstance(p, TensorMask)), None)


def original_of(module: nn.Module, name: str) -> Tensor:
    """The stored (trained) tensor behind ``module.<name>``: the unmasked original of a
    masked tensor, the tensor itself otherwise."""
    if parametrize.is_parametrized(module, name):
        return getattr(module.parametrizations, name).original
    return getattr(module, name)


def _masks_on(module: nn.Module) -> Iterator[tuple[str, Tensor, TensorMask]]:
    """(tensor name, original, mask) for every mask on ``module``'s own tensors."""
    if not parametrize.is_parametrized(module):
        return
    for tensor_name, plist in module.parametrizations.items():
        for p in plist:
            if isinstance(p, TensorMask):
                yield tensor_name, plist.original, p


def tensor_masks(module: nn.Module) -> dict[str, TensorMask]:
    """The masks on ``module``'s own tensors (not its children's): tensor name -> mask."""
    return {name: mask for name, _, mask in _masks_on(module)}


def masked_tensors(model: nn.Module) -> Iterator[tuple[str, Tensor, TensorMask]]:
    """Every masked tensor of ``model``: (qualified name, original tensor, mask)."""
    for module_name, module in model.named_modules():
        for tensor_name, original, mask in _masks_on(module):
            name = f"{module_name}.{tensor_name}" if module_name else tensor_name
            yield name, original, mask


def masked_state_keys(module_name: str, tensor_name: str) -> tuple[str, str]:
    """State-dict keys of a masked tensor ``<module_name>.<tensor_name>``: (original, mask)."""
    prefix = f"{module_name}.parametrizations.{tensor_name}" if module_name else f"parametrizations.{tensor_name}"
    return f"{prefix}.original", f"{prefix}.0.mask"


def mask_state_keys(model: nn.Module) -> set[str]:
    """State-dict keys of every mask of ``model`` (what rewinding leaves alone)."""
    return {f"{name}.mask" for name, module in model.named_modules() if isinstance(module, TensorMask)}


@torch.no_grad()
def enforce_masks(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> None:
    """Zero pruned positions in every masked tensor and in the optimiser's state
    for it (Adam's moments would otherwise revive pruned weights)."""
    for _, original, mask in masked_tensors(model):
        original.mul_(mask.mask)
        if optimizer is not None:
            for value in optimizer.state.get(original, {}).values():
                if torch.is_tensor(value) and value.shape == original.shape:
                    value.mul_(mask.mask)


# -- the compressed embedding ---------------------------------------------------

class MaskedEmbedding(CompressedEmbedding):
    """A dense table times a fixed-shape boolean mask; stored as its non-zeros."""

    masks_own_tensors = True

    def __init__(self, weight: Tensor, padding_idx: int | None = 0):
        num, dim = weight.shape
        super().__init__(num, dim, padding_idx)
        self.table = nn.Parameter(weight.detach().clone())
        add_mask(self, "table", padding_idx)

    @classmethod
    def from_dense(cls, dense: nn.Embedding, padding_idx: int | None = 0) -> "MaskedEmbedding":
        return cls(dense.weight, padding_idx)

    @property
    def weight(self) -> Tensor:
        return self.table

    def forward(self, ids: Tensor) -> Tensor:
        # rows of original * mask, without materialising the whole masked table
        # (BPR and LightGCN's regulariser look up a few rows per batch)
        original = original_of(self, "table")
        return F.embedding(ids, original) * F.embedding(ids, mask_of(self, "table").multiplier(original))

    @property
    def mask(self) -> Tensor:
        return mask_of(self, "table").mask

    def parameter_count(self) -> int:
        return int(self.mask.sum())

    def export(self) -> dict[str, Tensor]:
        """The kept values of the entity rows: the [PAD] row (always zero, never kept)
        is left out, so a table that keeps every entity weight stores no index."""
        table, mask = original_of(self, "table"), self.mask
        if self.padding_idx is not None:
            keep = torch.arange(self.num_embeddings, device=mask.device) != self.padding_idx
            table, mask = table[keep], mask[keep]
        out = encode_masked(table, mask)
        out["padding_idx"] = torch.tensor(-1 if self.padding_idx is None else self.padding_idx)
        out["num_embeddings"] = torch.tensor(self.num_embeddings)  # marks the [PAD] row as left out
        return out

    @staticmethod
    def entity_rows(tensors: dict[str, Tensor]) -> tuple[int, int | None, bool]:
        """(rows of the table, padding_idx, whether the export left the [PAD] row out);
        exports before ``num_embeddings`` was recorded kept the [PAD] row."""
        pad = int(tensors["padding_idx"])
        pad = None if pad < 0 else pad
        if "num_embeddings" in tensors:
            return int(tensors["num_embeddings"]), pad, pad is not None
        return int(tensors["shape"][0]), pad, False

    @classmethod
    def serving_form(cls, parts: dict[str, Tensor]):
        """Row-sparse: the kept values with their CSR index (serving.py's matrix_form)."""
        from recbole_compress.embeddings.serving import RowTable, matrix_form

        _, pad, dropped = cls.entity_rows(parts)
        return RowTable(matrix_form(parts, empty_row=pad if dropped else None), pad)

    @classmethod
    def from_export(cls, tensors: dict[str, Tensor]) -> "MaskedEmbedding":
        dense, mask = decode_masked(tensors)
        _, pad, dropped = cls.entity_rows(tensors)
        if dropped:  # put the zero [PAD] row back in place
            dense = torch.cat([dense[:pad], dense.new_zeros(1, dense.shape[1]), dense[pad:]])
            mask = torch.cat([mask[:pad], mask.new_zeros(1, mask.shape[1]), mask[pad:]])
        module = cls(dense, pad)
        module.mask.copy_(mask)
        return module
