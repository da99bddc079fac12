"""The backbone's prediction at every position, and the all-position losses.

SASRec's and GRU4Rec's ``forward(item_seq, item_seq_len)`` compute the output at
every position (causal attention / a left-to-right GRU over left-aligned
sequences) and end with ``self.gather_indexes(output, item_seq_len - 1)``. With
``gather_indexes`` shadowed on the instance by the identity for the duration of one
call, the same unchanged forward returns ``[B, L, H]``: position ``t`` sees items
``0..t`` only, exactly what a prefix sample of length ``t + 1`` sees.

Losses, averaged over the non-padded positions (one term per training transition,
as in prefix training):

- ``CE``: full softmax over the item table (RecBole's CE, ``item_embedding.weight``);
- ``BCE``: ``-log s(pos) - sum_j log(1 - s(neg_j))`` with ``k`` sampled negatives
  (k = 1: the original SASRec loss, RecJPQ's regime);
- ``gBCE`` (gSASRec, Petrov & Macdonald, RecSys 2023): the positive term weighted by
  ``beta = alpha (t (1 - 1/alpha) + 1/alpha)``, ``alpha = k / (items - 1)``, i.e.
  ``-log s(pos)^beta``; t = 0 is BCE. (The gSASRec code feeds the transformed logit
  ``log(1 / (s^-beta - 1))`` to BCE; its sigmoid is ``s^beta``, the same loss.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from recbole_compress.errors import UserError


def _every_position(output: torch.Tensor, gather_index: torch.Tensor) -> torch.Tensor:
    return output


def position_outputs(model, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
    """``model.forward`` without its final gather: ``[B, L, H]``."""
    model.gather_indexes = _every_position  # instance attribute shadows the method for this call
    try:
        output = model.forward(item_seq, item_seq_len)
    finally:
        del model.gather_indexes
    if output.dim() != 3 or output.shape[:2] != item_seq.shape:
        raise UserError(
            f"{type(model).__name__}.forward does not end with gather_indexes over a [B, L, H] output; "
            "train_mode=all_positions cannot train it, use train_mode: prefix"
        )
    return output


def gbce_beta(neg_samples: int, real_items: int, t: float) -> float:
    """gSASRec's beta for ``neg_samples`` negatives drawn from the ``real_items - 1``
    items other than the positive (RecBole's ``n_items`` counts [PAD]: real = n_items - 1)."""
    alpha = neg_samples / (real_items - 1)
    return alpha * (t * (1.0 - 1.0 / alpha) + 1.0 / alpha)


def ce_loss(output, targets, table: torch.Tensor) -> torch.Tensor:
    """Full-softmax CE at the non-padded positions (``targets != 0``)."""
    mask = targets != 0
    logits = output[mask] @ table.transpose(0, 1)
    return F.cross_entropy(logits, targets[mask])


def sampled_bce_loss(output, targets, negatives, item_embedding, beta: float = 1.0) -> torch.Tensor:
    """BCE (``beta`` = 1) or gBCE on one positive and ``k`` negatives per non-padded position."""
    mask = targets != 0
    hidden = output[mask]  # [P, H]
    pos = item_embedding(targets[mask])  # [P, H]
    neg = item_embedding(negatives[mask])  # [P, k, H]
    pos_score = (hidden * pos).sum(-1)
    neg_score = torch.einsum("ph,pkh->pk", hidden, neg)
    per_position = -beta * F.logsigmoid(pos_score) + F.softplus(neg_score).sum(-1)
    return per_position.mean()


def make_loss(model, settings):
    """``calculate_loss(interaction)`` for a batch of :class:`AllPositionsLoader`."""
    n_real_items = int(model.n_items) - 1  # RecBole's n_items counts [PAD]
    beta = gbce_beta(settings.neg_samples, n_real_items, settings.gbce_t) if settings.loss == "gBCE" else 1.0

    def calculate_loss(interaction):
        output = position_outputs(model, interaction[model.ITEM_SEQ], interaction[model.ITEM_SEQ_LEN])
        targets = interaction[model.POS_ITEM_ID]
        if settings.loss == "CE":
            return ce_loss(output, targets, model.item_embedding.weight)
        return sampled_bce_loss(output, targets, interaction[model.NEG_ITEM_ID], model.item_embedding, beta)

    return calculate_loss
