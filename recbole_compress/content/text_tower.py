"""Item text through the sentence encoder inside the model: its top layers trainable, and the
pooling of the token states into one vector per item (mean, or the TransRec authors'
attention pooling).

The bottom layers stay frozen, so their output for every item text is computed once when
the model is built (``token_states``, a buffer) and each step runs only the trainable top
``trainable_layers`` layers and the pooling: on a CPU this is what makes fine-tuning
affordable. With no trainable layer (``trainable_layers=0``) the buffer holds the encoder's
final token states and only the pooling learns.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from recbole_compress.errors import UserError

POOLINGS = ("mean", "attention")
# rows per forward pass when no gradient is kept (evaluation encodes the whole catalogue)
_EVAL_CHUNK = 512
_PRECOMPUTE_CHUNK = 256


class AttentionPooling(nn.Module):
    """The TransRec authors' item text head (their ``TextEncoder`` after BERT): dropout on the
    token states, multi-head self-attention (``heads`` x ``head_size``, no output projection),
    dropout, then additive attention over the tokens (a ``query_size`` tanh layer scoring each
    token). Padding tokens are masked out (the authors' code passes no mask)."""

    def __init__(self, in_dim: int, heads: int, head_size: int, query_size: int, dropout: float):
        super().__init__()
        if min(heads, head_size, query_size) < 1:
            raise UserError(
                f"text_attention_heads={heads}, text_attention_head_size={head_size} and "
                f"text_attention_query_size={query_size} must all be at least 1 (the authors: 4, 20, 200)"
            )
        self.heads, self.head_size = heads, head_size
        self.output_dim = heads * head_size
        self.query = nn.Linear(in_dim, self.output_dim)
        self.key = nn.Linear(in_dim, self.output_dim)
        self.value = nn.Linear(in_dim, self.output_dim)
        for layer in (self.query, self.key, self.value):  # as the authors' MultiHeadAttention
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.score_hidden = nn.Linear(self.output_dim, query_size)
        self.score = nn.Linear(query_size, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, states, mask):
        """``states`` [n, tokens, in_dim], ``mask`` [n, tokens] (1 = a real token) -> [n, output_dim]."""
        n, length, _ = states.shape
        x = self.dropout(states)
        split = lambda t: t.view(n, length, self.heads, self.head_size).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        present = mask.bool()
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_size)
        scores = scores.masked_fill(~present[:, None, None, :], float("-inf"))
        context = (scores.softmax(-1) @ v).transpose(1, 2).reshape(n, length, self.output_dim)
        context = self.dropout(context)
        weights = self.score(torch.tanh(self.score_hidden(context))).squeeze(-1)
        weights = weights.masked_fill(~present, float("-inf")).softmax(-1)
        return (weights.unsqueeze(-1) * context).sum(1)


class TextTower(nn.Module):
    """Item ids -> text vectors: frozen bottom layers (precomputed), ``trainable_layers`` top
    layers of all-MiniLM-L6-v2 trained, then ``pooling``: ``mean`` (the sentence encoder's own
    mean pooling and L2 normalisation: untrained, the vectors equal the frozen encoder's) or
    ``attention`` (:class:`AttentionPooling`, trained)."""

    def __init__(self, texts: list[str], max_length: int, trainable_layers: int, pooling: str = "mean",
                 dropout: float = 0.1, heads: int = 4, head_size: int = 20, query_size: int = 200):
        super().__init__()
        from recbole_compress.content.text import load_sentence_encoder

        if pooling not in POOLINGS:
            raise UserError(f"text_pooling={pooling} is not one of {', '.join(POOLINGS)}")
        encoder = load_sentence_encoder(max_length)
        bert = encoder[0].auto_model.eval()
        layers = bert.encoder.layer
        if not 0 <= trainable_layers <= len(layers):
            raise UserError(f"text_finetune_layers={trainable_layers} must be in 0..{len(layers)} (the encoder's layers)")
        tokens = encoder.tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        frozen = len(layers) - trainable_layers
        with torch.no_grad():  # the frozen bottom: once, for every item
            states = [
                bert(input_ids=tokens["input_ids"][i : i + _PRECOMPUTE_CHUNK],
                     attention_mask=tokens["attention_mask"][i : i + _PRECOMPUTE_CHUNK],
                     output_hidden_states=True).hidden_states[frozen]
                for i in range(0, len(texts), _PRECOMPUTE_CHUNK)
            ]
        self.register_buffer("token_states", torch.cat(states).contiguous(), persistent=False)
        self.register_buffer("attention_mask", tokens["attention_mask"], persistent=False)
        self.top = nn.ModuleList(layers[frozen:])
        for p in self.top.parameters():
            p.requires_grad_(True)
        self.trainable_layers = trainable_layers
        self.pooling = pooling
        hidden = bert.config.hidden_size
        self.pool = AttentionPooling(hidden, heads, head_size, query_size, dropout) if pooling == "attention" else None
        self.output_dim = self.pool.output_dim if self.pool is not None else hidden

    def encoder_parameters(self) -> int:
        """Trainable numbers of the encoder's top layers (the pooling not counted)."""
        return sum(p.numel() for p in self.top.parameters() if p.requires_grad)

    def pooling_parameters(self) -> int:
        return sum(p.numel() for p in self.pool.parameters()) if self.pool is not None else 0

    def forward(self, ids):
        if not torch.is_grad_enabled() and len(ids) > _EVAL_CHUNK:
            return torch.cat([self._encode(ids[i : i + _EVAL_CHUNK]) for i in range(0, len(ids), _EVAL_CHUNK)])
        return self._encode(ids)

    def _encode(self, ids):
        mask = self.attention_mask[ids]
        length = max(int(mask.sum(1).max()), 1)  # cut the batch's common padding
        mask = mask[:, :length]
        hidden = self.token_states[ids, :length]
        if self.top:
            additive = (1.0 - mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
            for layer in self.top:
                out = layer(hidden, additive)
                hidden = out[0] if isinstance(out, tuple) else out  # transformers 4 returns a tuple
        if self.pool is not None:
            return self.pool(hidden, mask)
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, p=2, dim=1)
