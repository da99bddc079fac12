"""Lottery tickets (Exploring Lottery Ticket Hypothesis in Media Recommender Systems,
arXiv 2108.00944): ID tables as :class:`MaskedEmbedding`, found by
:class:`LTHTrainerMixin`'s rounds of pruning and rewinding.

``BPR_LTH`` and ``LightGCN_LTH`` are the paper's models; any RecBole model with ID
tables works as ``<Model>_LTH`` (``SASRec_LTH``, ``NeuMF_LTH``, ...).
"""

from __future__ import annotations

from recbole.model.general_recommender import BPR, LightGCN

from recbole_compress.embeddings.base import CompressedEmbedding, compressed_modules
from recbole_compress.embeddings.masked import MaskedEmbedding, add_mask
from recbole_compress.errors import UserError
from recbole_compress.models.compressed import compressed_model_class
from recbole_compress.registry import CompressionMethod, register_method, register_model
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


LTH = register_method(
    CompressionMethod(
        name="LTH",
        make_embedding=_masked_table,
        trainer_mixin=LTHTrainerMixin,
        prepare_model=_mask_all_weights,
        check_config=LTHSettings,
        doc="Iterative magnitude pruning with rewinding finds a sparse winning ticket.",
        composes=True,
    )
)

BPR_LTH = register_model(compressed_model_class(BPR, LTH))
LightGCN_LTH = register_model(compressed_model_class(LightGCN, LTH))
