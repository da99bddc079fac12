"""TransRec ("Learning Transferable Recommendation from Mixture-of-Modality Feedback"):
a SASRec-style sequential recommender with no item ID table.

Every item is encoded from its content (:class:`~recbole_compress.content.dataset.TransRecDataset`):
text through the all-MiniLM-L6-v2 sentence encoder (frozen and cached on disk by default;
or, :class:`~recbole_compress.content.text_tower.TextTower`, its top ``text_finetune_layers``
trained and/or its token states pooled by the authors' trained attention pooling,
``text_pooling: attention``), feature vectors (TikTok image/audio) as they are; each source
has a learned projection to ``hidden_size``, and an item described by several sources is
their mean. A Transformer over the encoded history gives the user vector; the score of an
item is its dot product with the encoded item.

Nothing in the model grows with the catalogue: the trainable part is the projections and
the user encoder, so a model trained on one dataset loads into a model for another one
with other users and items (``pretrained: PATH``, a finished run's folder or its
weights-only ``model.pt``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from recbole.model.abstract_recommender import SequentialRecommender
from recbole.model.layers import TransformerEncoder
from recbole.trainer import Trainer
from recbole.utils import InputType
from torch import nn

from recbole_compress.content.dataset import TEXT, TransRecDataset
from recbole_compress.content.text_tower import POOLINGS, TextTower
from recbole_compress.errors import UserError
from recbole_compress.registry import register_model
from recbole_compress.trainers.base import ProjectTrainerMixin

_LOG = logging.getLogger(__name__)
LOSSES = ("BCE", "CE")


class ContentProjection(nn.Module):
    """One source's vectors -> the model size: LayerNorm (features differ in scale), dropout, linear."""

    def __init__(self, in_dim: int, hidden_size: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(in_dim, hidden_size)

    @property
    def in_dim(self) -> int:
        return self.linear.in_features

    def forward(self, x):
        return self.linear(self.dropout(self.norm(x)))


@register_model
class TransRec(SequentialRecommender):
    """ID-free SASRec: items encoded from text and/or feature vectors."""

    input_type = InputType.POINTWISE
    dataset_class = TransRecDataset

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        content = getattr(dataset, "item_content", None)
        if content is None:
            raise UserError("TransRec needs item content: build its dataset with TransRecDataset (run_recbole_compress does)")
        self.loss_type = str(config["loss_type"])
        if self.loss_type not in LOSSES:
            raise UserError(f"loss_type={self.loss_type} is not one of {', '.join(LOSSES)} for TransRec; use BCE (sampled negatives) or CE")
        self.neg_samples = int(config["neg_samples"] or 1)
        self.hidden_size = config["hidden_size"]
        self.initializer_range = config["initializer_range"]
        self.sources = content.sources
        self.n_by_source = {s: int(h.sum()) for s, h in content.has.items()}
        self.register_buffer("modality", torch.from_numpy(content.modality()), persistent=False)

        self.finetune_layers = int(config["text_finetune_layers"] or 0)
        self.text_pooling = str(config["text_pooling"] or "mean")
        if self.text_pooling not in POOLINGS:
            raise UserError(f"text_pooling={self.text_pooling} is not one of {', '.join(POOLINGS)}")
        # the text goes through the model (not the on-disk vector cache) when anything of it learns
        tower = content.texts is not None and (self.finetune_layers > 0 or self.text_pooling == "attention")
        dims = {name: matrix.shape[1] for name, matrix in content.features.items()}
        for name, matrix in content.features.items():
            self.register_buffer(f"content_{name}", torch.from_numpy(matrix), persistent=False)
        if content.texts is not None and not tower:
            from recbole_compress.content.text import encode_texts

            with_text = [i for i, t in enumerate(content.texts) if t is not None]
            vectors = encode_texts(
                [content.texts[i] for i in with_text], max_length=config["text_max_length"],
                batch_size=config["text_batch_size"], cache_dir=config["text_cache_dir"],
            )
            table = np.zeros((content.n_items, vectors.shape[1]), dtype=np.float32)
            table[with_text] = vectors
            self.register_buffer(f"content_{TEXT}", torch.from_numpy(table), persistent=False)
        if content.texts is not None:  # all-MiniLM-L6-v2: 384; attention pooling: heads x head size
            dims[TEXT] = 384 if self.text_pooling == "mean" else \
                int(config["text_attention_heads"]) * int(config["text_attention_head_size"])

        dropout = config["hidden_dropout_prob"]
        self.projections = nn.ModuleDict({s: ContentProjection(dims[s], self.hidden_size, dropout) for s in self.sources})
        self.position_embedding = nn.Embedding(self.max_seq_length, self.hidden_size)
        self.trm_encoder = TransformerEncoder(
            n_layers=config["n_layers"], n_heads=config["n_heads"], hidden_size=self.hidden_size,
            inner_size=config["inner_size"], hidden_dropout_prob=dropout, attn_dropout_prob=config["attn_dropout_prob"],
            hidden_act=config["hidden_act"], layer_norm_eps=config["layer_norm_eps"],
        )
        self.LayerNorm = nn.LayerNorm(self.hidden_size, eps=config["layer_norm_eps"])
        self.dropout = nn.Dropout(dropout)
        self.apply(self._init_weights)
        if tower:  # after _init_weights: keep MiniLM's weights
            self.text_tower = TextTower(
                [t or "" for t in content.texts], config["text_max_length"], self.finetune_layers, self.text_pooling,
                dropout=dropout, heads=int(config["text_attention_heads"]), head_size=int(config["text_attention_head_size"]),
                query_size=int(config["text_attention_query_size"]),
            )
        self._item_cache = None
        self.pretrained_report = load_pretrained(self, config["pretrained"]) if config["pretrained"] else None

    def _init_weights(self, module):
        """SASRec's initialisation (RecBole)."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(mean=0.0, std=self.initializer_range)
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()

    # -- item encoder ---------------------------------------------------------
    def _source_rows(self, source: str, ids):
        if source == TEXT and hasattr(self, "text_tower"):
            return self.text_tower(ids)
        return getattr(self, f"content_{source}")[ids]

    def _encode_unique(self, ids):
        """[len(ids), hidden]: the mean of the projections of the sources each item has ([PAD]: zeros)."""
        flags = self.modality[ids]
        out = torch.zeros(len(ids), self.hidden_size, device=ids.device)
        count = torch.zeros(len(ids), 1, device=ids.device)
        for bit, source in enumerate(self.sources):
            where = ((flags >> bit) & 1).nonzero(as_tuple=True)[0]
            if len(where) == 0:
                continue
            out = out.index_add(0, where, self.projections[source](self._source_rows(source, ids[where])))
            count[where] += 1
        return out / count.clamp(min=1)

    def encode_items(self, *ids):
        """Item vectors for one or more id tensors of any shape, each distinct item encoded once
        (in evaluation: rows of the cached catalogue). One tensor in, one out; several, a tuple."""
        if not self.training:
            table = self.all_items()
            out = tuple(table[i] for i in ids)
        else:
            flat = torch.cat([i.reshape(-1) for i in ids])
            unique, inverse = flat.unique(return_inverse=True)
            rows = self._encode_unique(unique)[inverse]
            out = tuple(part.reshape(*i.shape, self.hidden_size) for part, i in zip(rows.split([i.numel() for i in ids]), ids))
        return out[0] if len(out) == 1 else out

    def all_items(self):
        """[n_items, hidden]; computed once per evaluation (cleared by train()/eval())."""
        if self.training:
            return self._encode_unique(torch.arange(self.n_items, device=self.modality.device))
        if self._item_cache is None:
            with torch.no_grad():
                self._item_cache = self._encode_unique(torch.arange(self.n_items, device=self.modality.device))
        return self._item_cache

    def train(self, mode: bool = True):
        self._item_cache = None  # weights change in training and on load_best_model
        return super().train(mode)

    # -- user encoder and scoring (SASRec) -------------------------------------
    def last_items(self, item_seq, item_seq_len):
        """Histories cut to their last ``MAX_ITEM_LIST_LENGTH`` items: pre-built history lists
        (benchmark files) reach the model at their own length, whatever that setting says."""
        keep = self.max_seq_length
        if item_seq.size(1) <= keep:
            return item_seq, item_seq_len
        positions = torch.arange(keep, device=item_seq.device)
        start = (item_seq_len - keep).clamp(min=0)
        cut = item_seq.gather(1, (start[:, None] + positions).clamp(max=item_seq.size(1) - 1))
        length = item_seq_len.clamp(max=keep)
        return cut * (positions < length[:, None]), length

    def forward(self, item_seq, item_seq_len, seq_items=None):
        """The user vector; ``seq_items``: the history's item vectors when already encoded."""
        if seq_items is None:
            item_seq, item_seq_len = self.last_items(item_seq, item_seq_len)
        position_ids = torch.arange(item_seq.size(1), dtype=torch.long, device=item_seq.device).unsqueeze(0).expand_as(item_seq)
        seq_items = self.encode_items(item_seq) if seq_items is None else seq_items
        input_emb = seq_items + self.position_embedding(position_ids)
        input_emb = self.dropout(self.LayerNorm(input_emb))
        output = self.trm_encoder(input_emb, self.get_attention_mask(item_seq), output_all_encoded_layers=True)[-1]
        return self.gather_indexes(output, item_seq_len - 1)

    def calculate_loss(self, interaction):
        item_seq, item_seq_len = self.last_items(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        pos_items = interaction[self.POS_ITEM_ID]
        if self.loss_type == "CE":
            logits = self.forward(item_seq, item_seq_len) @ self.all_items().T
            logits[:, 0] = float("-inf")  # [PAD] is never a target
            return F.cross_entropy(logits, pos_items)
        # BCE with uniformly sampled negatives (the paper); a draw equal to the positive is moved
        neg = torch.randint(1, self.n_items, (len(pos_items), self.neg_samples), device=pos_items.device)
        neg = torch.where(neg == pos_items[:, None], neg % (self.n_items - 1) + 1, neg)
        seq_items, items = self.encode_items(item_seq, torch.cat([pos_items[:, None], neg], dim=1))
        logits = (self.forward(item_seq, item_seq_len, seq_items).unsqueeze(1) * items).sum(-1)
        # mean over the positives plus mean over the negatives (the authors' two BCEWithLogitsLoss terms)
        pos_loss = F.binary_cross_entropy_with_logits(logits[:, 0], torch.ones_like(logits[:, 0]))
        neg_loss = F.binary_cross_entropy_with_logits(logits[:, 1:], torch.zeros_like(logits[:, 1:]))
        return pos_loss + neg_loss

    def predict(self, interaction):
        seq_output = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        return (seq_output * self.encode_items(interaction[self.ITEM_ID])).sum(-1)

    def full_sort_predict(self, interaction):
        seq_output = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        return seq_output @ self.all_items().T

    # -- accounting --------------------------------------------------------------
    def accounting(self) -> dict:
        """What the model keeps, split by what grows with the catalogue (nothing trainable)."""
        def count(module, trainable_only=True):
            return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)

        item_encoder = count(self.projections)
        user_encoder = count(self.position_embedding) + count(self.trm_encoder) + count(self.LayerNorm)
        text_tower = getattr(self, "text_tower", None)
        content_bytes = sum(b.numel() * b.element_size() for n, b in self.named_buffers() if n.startswith("content_"))
        report = {
            "sources": list(self.sources),
            "items": int(self.n_items - 1),
            "items_by_source": dict(self.n_by_source),
            "item_encoder_parameters": int(item_encoder + (count(text_tower) if text_tower is not None else 0)),
            "text_pooling": self.text_pooling if TEXT in self.sources else None,
            "text_pooling_parameters": int(text_tower.pooling_parameters() if text_tower is not None else 0),
            "user_encoder_parameters": int(user_encoder),
            "catalogue_parameters": 0,
            "text_encoder_parameters": int(text_encoder_parameter_count() if TEXT in self.sources else 0),
            "text_encoder_trainable_parameters": int(text_tower.encoder_parameters() if text_tower is not None else 0),
            "content_cache_bytes": int(content_bytes),
            "sasrec_item_table_parameters": int(self.n_items * self.hidden_size),
            "loss_type": self.loss_type,
        }
        if self.pretrained_report is not None:
            report["pretrained"] = self.pretrained_report
        return report


def text_encoder_parameter_count() -> int:
    """Parameters of the (frozen, shared) sentence encoder, from its weights file's header."""
    from safetensors import safe_open

    from recbole_compress.content.text import _model_dir

    total = 0
    with safe_open(str(_model_dir() / "model.safetensors"), framework="pt") as handle:
        for key in handle.keys():
            total += int(np.prod(handle.get_slice(key).get_shape()))
    return total


def _source_of(key: str) -> str | None:
    return key.split(".")[1] if key.startswith("projections.") else None


def load_pretrained(model: TransRec, path) -> dict:
    """Load a pre-trained TransRec's weights (weights-only ``model.pt``) into ``model``.

    Loaded: the user encoder, and the projection of every source both models have.
    A source the checkpoint lacks starts fresh; one only the checkpoint has is skipped.
    The position table may be cut to a shorter ``MAX_ITEM_LIST_LENGTH`` (rows are
    positions from the start of the history).
    """
    from recbole_compress.export import load_artifact

    file = Path(path)
    if file.is_dir():
        file = file / "model.pt"
    if not file.is_file():
        raise UserError(f"pretrained={path}: no such file; give a finished TransRec run's output folder or its model.pt")
    try:
        tensors = load_artifact(file)["tensors"]
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same one-line answer
        raise UserError(f"pretrained={path} is not a recbole_compress model.pt ({type(err).__name__}); give a TransRec run's model.pt") from None
    tensors = {k: v for k, v in tensors.items() if "::" not in k}
    if not any(k.startswith("trm_encoder.") for k in tensors) or not any(k.startswith("projections.") for k in tensors):
        raise UserError(f"pretrained={path} is not a TransRec model (no projections/trm_encoder weights); pre-train with --model=TransRec")
    own = model.state_dict()
    tower = sorted(k for k in tensors if k.startswith("text_tower.") and k not in own)
    if tower:  # before the projections: their sizes follow from the pooling
        raise UserError(f"pretrained={path} trained part of its text encoder ('{tower[0]}'); set text_finetune_layers "
                        "and text_pooling as in pre-training")
    state, skipped = {}, []
    for key, value in tensors.items():
        if key not in own:
            if _source_of(key) is not None:
                skipped.append(key)
                continue
            raise UserError(f"pretrained={path} has weight '{key}' that this TransRec lacks; set n_layers/n_heads as in pre-training")
        want = own[key].shape
        if value.shape != want:
            source = _source_of(key)
            if key == "position_embedding.weight" and value.shape[1] == want[1] and value.shape[0] >= want[0]:
                value = value[: want[0]]
            elif source is not None and value.dim() >= 1 and value.shape[-1] != want[-1] and (value.dim() == 1 or value.shape[0] == want[0]):
                raise UserError(
                    f"feature dimension mismatch for '{source}': the pre-trained model projects {value.shape[-1]}-d vectors, "
                    f"this dataset's '{source}' has {want[-1]}-d; use features of the same encoder/dimension or leave "
                    f"'{source}' out (item_features)"
                )
            else:
                raise UserError(
                    f"pretrained={path}: '{key}' has shape {tuple(value.shape)}, this model {tuple(want)}; "
                    "set hidden_size, inner_size and MAX_ITEM_LIST_LENGTH (at most the pre-trained one) as in pre-training"
                )
        state[key] = value
    model.load_state_dict(state, strict=False)
    fresh = sorted(k for k in own if k not in state)
    _LOG.info(f"pretrained {file}: {len(state)} tensors loaded, fresh: {fresh or 'none'}, skipped: {skipped or 'none'}")
    return {"path": str(file.resolve()), "loaded": len(state), "fresh": fresh, "skipped": skipped}


class TransRecTrainer(ProjectTrainerMixin, Trainer):
    """RecBole's Trainer; adds TransRec's parameter accounting to summary.json."""

    def extra_summary(self) -> dict:
        return {"transrec": self.model.accounting()}


TransRec.trainer_class = TransRecTrainer
