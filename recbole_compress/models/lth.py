"""Lottery tickets (Exploring Lottery Ticket Hypothesis in Media Recommender Systems,
arXiv 2108.00944): ID tables as :class:`MaskedEmbedding`, found by
:class:`LTHTrainerMixin`'s rounds of pruning and rewinding.

``BPR_LTH`` and ``LightGCN_LTH`` are the paper's models; any RecBole model with ID
tables works as ``<Model>_LTH`` (``SASRec_LTH``, ``NeuMF_LTH``, ...).
"""

from __future__ import annotations

import torch
from recbole.model.general_recommender import BPR, LightGCN

from recbole_compress.embeddings.base import CompressedEmbedding, compressed_modules
from recbole_compress.embeddings.masked import MaskedEmbedding, add_mask, original_of
from recbole_compress.errors import UserError
from recbole_compress.export import pruned_bytes_bound
from recbole_compress.registry import CompressionMethod, compressed_model_class, register_method, register_model
from recbole_compress.trainers.lth import LTHSettings, LTHTrainerMixin


def _masked_table(dense, config, name, dataset):
    if isinstance(dense, CompressedEmbedding):  # composition: a ticket over another method's tensors
        return mask_compressed_table(dense, name)
    return MaskedEmbedding.from_dense(dense, padding_idx=0)


def mask_compressed_table(table: CompressedEmbedding, name: str) -> CompressedEmbedding:
    """Mask every weight tensor a compressed table stores (QR's two tables, JPQ's
    codebooks, ...), so tickets prune them like any other masked tensor."""
    if table.masks_own_tensors:
        raise UserError(
            f"'{name}' is a {type(table).__name__}, which is already pruned by its own method; "
            "compose LTH with a method that stores dense tensors (e.g. LightGCN_QR_LTH)"
        )
    weights = [n for n, p in table.named_parameters(recurse=False) if p.dim() >= 2 and p.requires_grad]
    if not weights:
        raise UserError(f"'{name}' ({type(table).__name__}) has no weight tensor for a ticket to prune")
    for tensor_name in weights:
        add_mask(table, tensor_name)
    return table


def _prepare(model, config) -> None:
    """After the tables are masked: one init scale for them (``joint_init``), then the
    other weight matrices masked too (``prune_target: all``)."""
    if config["joint_init"]:
        joint_init(model)
    _mask_all_weights(model, config)


@torch.no_grad()
def joint_init(model) -> None:
    """Draw every masked ID table from ONE xavier-uniform over the tables joined row-wise
    ((users + items) x d), as LTH-MRS does. RecBole initialises each table on its own
    scale (xavier over its own rows), so the item table of a catalogue smaller than the
    user base starts larger, and one global magnitude threshold then prunes the two
    tables unevenly for a reason that has nothing to do with training."""
    tables = [m for _, m in compressed_modules(model) if isinstance(m, MaskedEmbedding)]
    if not tables:
        raise UserError("joint_init needs ID tables masked by LTH (e.g. LightGCN_LTH, BPR_LTH)")
    dims = {m.embedding_dim for m in tables}
    if len(dims) != 1:
        raise UserError(f"joint_init needs tables of one width, got {sorted(dims)}; set joint_init: false")
    rows = [m.num_embeddings - (m.padding_idx is not None) for m in tables]  # [PAD] rows stay zero
    joined = torch.nn.init.xavier_uniform_(torch.empty(sum(rows), dims.pop()))
    for module, part in zip(tables, joined.split(rows)):
        weight = original_of(module, "table")
        keep = torch.ones(module.num_embeddings, dtype=torch.bool)
        if module.padding_idx is not None:
            keep[module.padding_idx] = False
            weight[module.padding_idx] = 0.0
        weight[keep] = part.to(weight)


def _mask_all_weights(model, config) -> None:
    """``prune_target: all``: also mask every other weight matrix (biases and norms stay dense)."""
    target = str(config["prune_target"])
    if target == "embeddings":
        return
    if target != "all":
        raise UserError(f"prune_target={target} is not one of embeddings, all")
    inside = [name for name, _ in compressed_modules(model)]
    for module_name, module in list(model.named_modules()):
        if any(module_name == p or module_name.startswith(p + ".") for p in inside):
            continue
        for tensor_name, param in list(module.named_parameters(recurse=False)):
            if param.dim() >= 2 and param.requires_grad:
                add_mask(module, tensor_name)


# -- budget planning ----------------------------------------------------------------------------

def untrained_tables(tables, setting=None, settings=None) -> list[MaskedEmbedding]:
    """Ticket tables over dense ``tables`` (records with .rows, .dim); a ticket's
    setting (its kept count) does not change their shape."""
    return [MaskedEmbedding(torch.zeros(t.rows, t.dim)) for t in tables]


def ticket_table_bytes(tables, kept: int, settings=None) -> int:
    """Bytes the ticket tables export keeping ``kept`` values in all (a bound: which
    values survive is known only after training)."""
    return pruned_bytes_bound(untrained_tables(tables), kept)


def composed_table_bytes(inner_tables: list[CompressedEmbedding], keep: float, settings=None) -> int:
    """Bytes another method's (untrained) tables export once a one-shot ticket keeps
    ``keep`` of their weights (the trainer prunes ``round((1 - keep) * total)``)."""
    for module in inner_tables:
        mask_compressed_table(module, type(module).__name__)
    total = sum(p.numel() for m in inner_tables for p in m.parameters())
    return pruned_bytes_bound(inner_tables, total - int(round((1.0 - keep) * total)))


LTH = register_method(
    CompressionMethod(
        name="LTH",
        make_embedding=_masked_table,
        trainer_mixin=LTHTrainerMixin,
        prepare_model=_prepare,
        check_config=LTHSettings,
        doc="Iterative magnitude pruning with rewinding finds a sparse winning ticket.",
        composes=True,
        untrained_tables=untrained_tables,
        exported_table_bytes=ticket_table_bytes,
        composed_table_bytes=composed_table_bytes,
    )
)

BPR_LTH = register_model(compressed_model_class(BPR, LTH))
LightGCN_LTH = register_model(compressed_model_class(LightGCN, LTH))
