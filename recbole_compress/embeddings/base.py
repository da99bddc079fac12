"""The seam every method shares: a compressed embedding table.

A RecBole model uses its ``nn.Embedding`` tables two ways: it calls them on ids
(BPR, SASRec's input sequence) and it reads ``.weight`` for the whole table
(LightGCN's propagation, full-sort scoring). :class:`CompressedEmbedding`
supports both, so it can replace a dense table inside an unchanged RecBole model.
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch.nn.functional as F
from torch import Tensor, nn

from recbole_compress.errors import UserError

# exported artifacts: name -> subclass, so an artifact rebuilds its own module
EMBEDDING_CLASSES: dict[str, type["CompressedEmbedding"]] = {}


class CompressedEmbedding(nn.Module):
    """A table of ``num_embeddings`` x ``embedding_dim`` rows stored compactly.

    Row ``padding_idx`` (RecBole's [PAD] id 0) is always zero and is left out of
    parameter and byte accounting.
    """

    # True for methods whose own masks are part of their storage (tickets, CERP, PEP);
    # masks a composition adds to another method's tensors are handled by export.py
    masks_own_tensors = False

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = 0):
        super().__init__()
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.padding_idx = padding_idx

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("Parametrized"):  # parametrize's dynamic subclasses
            EMBEDDING_CLASSES[cls.__name__] = cls

    # -- lookup -------------------------------------------------------------
    @property
    def weight(self) -> Tensor:
        """The full table, differentiable (for models that read ``.weight``)."""
        raise NotImplementedError

    def forward(self, ids: Tensor) -> Tensor:
        return F.embedding(ids, self.weight)

    # -- accounting ---------------------------------------------------------
    def parameter_count(self) -> int:
        """Numbers a deployed model must keep (non-zeros, codebooks, ...)."""
        raise NotImplementedError

    def dense_parameter_count(self) -> int:
        """Numbers the dense table it replaces keeps ([PAD] row excluded)."""
        rows = self.num_embeddings - (self.padding_idx is not None)
        return rows * self.embedding_dim

    def export(self) -> dict[str, Tensor]:
        """Compact, weights-only artifact; its size is the sum of the tensors' nbytes."""
        raise NotImplementedError

    @classmethod
    def from_export(cls, tensors: dict[str, Tensor]) -> "CompressedEmbedding":
        raise NotImplementedError

    def export_bytes(self) -> int:
        return artifact_bytes(self.export())

    @classmethod
    def serving_form(cls, parts: dict[str, Tensor]) -> nn.Module:
        """The table as a served model holds it (embeddings/serving.py), built from its
        export ``parts``. This default has no compact form: it rebuilds the module and
        holds its full table dense (and a served model reports that size)."""
        import torch

        from recbole_compress.embeddings.serving import DenseMatrix, RowTable, decode_composed

        module = cls.from_export(decode_composed(parts))
        with torch.no_grad():
            weight = module.weight.detach().clone()
        return RowTable(DenseMatrix(weight), module.padding_idx)

    def dense_bytes(self) -> int:
        return self.num_embeddings * self.embedding_dim * 4

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, padding_idx={self.padding_idx}"


def embedding_kind(module: CompressedEmbedding) -> str:
    """The registered class a module is an instance of (parametrize wraps classes)."""
    for klass in type(module).__mro__:
        if EMBEDDING_CLASSES.get(klass.__name__) is klass:
            return klass.__name__
    raise TypeError(f"{type(module).__name__} is not a registered CompressedEmbedding")


def artifact_bytes(tensors: dict[str, Tensor]) -> int:
    return int(sum(t.numel() * t.element_size() for t in tensors.values()))


# -- swapping tables inside a model -------------------------------------------

def id_tables(model: nn.Module, dataset=None) -> list[str]:
    """Names of the model's user/item ID tables: the ``nn.Embedding`` modules with
    one row per user or per item (position and feature tables are left alone)."""
    sizes = set()
    for attr in ("n_users", "n_items"):
        if hasattr(model, attr):
            sizes.add(int(getattr(model, attr)))
    names = []
    for name, module in model.named_modules():
        if any(name.startswith(n + ".") for n in names):
            continue
        # a table another method already compressed counts too (compositions)
        if isinstance(module, (nn.Embedding, CompressedEmbedding)) and module.num_embeddings in sizes:
            names.append(name)
    return names


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def compress(
    model: nn.Module,
    make_embedding: Callable[[nn.Embedding, str], CompressedEmbedding],
    tables: list[str] | None = None,
    composes: str | None = None,
) -> list[str]:
    """Replace ``tables`` (default: the user/item ID tables) of ``model`` in place.

    ``make_embedding(dense_table, name)`` builds the compressed module, usually
    initialised from the dense table's values. A table that is already compressed
    is passed on only when the method composes (``composes`` names it); otherwise
    that is an error. Returns the names replaced.
    """
    names = tables if tables else id_tables(model)
    if not names:
        raise UserError(
            f"{type(model).__name__} has no user/item embedding table to compress; "
            "pick a model with ID embeddings (e.g. BPR, LightGCN, SASRec) or set compress_tables"
        )
    for name in names:
        try:
            dense = model.get_submodule(name)
        except AttributeError:
            raise UserError(f"compress_tables names '{name}', which {type(model).__name__} does not have") from None
        if isinstance(dense, CompressedEmbedding) and composes is None:
            raise UserError(
                f"'{name}' is already a {type(dense).__name__}; only a method that composes (LTH) can compress it "
                "again: put it last, e.g. LightGCN_QR_LTH"
            )
        if not isinstance(dense, (nn.Embedding, CompressedEmbedding)):
            raise UserError(f"compress_tables names '{name}', which is a {type(dense).__name__}, not an nn.Embedding")
        _set_submodule(model, name, make_embedding(dense, name))
    return names


def compressed_modules(model: nn.Module) -> Iterator[tuple[str, CompressedEmbedding]]:
    for name, module in model.named_modules():
        if isinstance(module, CompressedEmbedding):
            yield name, module


def _inside(name: str, prefixes: list[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)
