"""Training sequences for all-position training, rebuilt from RecBole's training split.

RecBole's sequential dataset stores one row per training target: the target item and
its history (the previous ``MAX_ITEM_LIST_LENGTH`` items). The rows of a user are its
prefixes in time order, so the user's training sequence is the first row's history
followed by every target in order. Only training rows are read: the validation and
test targets (the last two items under leave-one-out) are never part of a sequence,
and :func:`training_sequences` checks every row's history against the rebuilt sequence.

A sequence of ``L`` items holds ``L - 1`` transitions (predict item t from items < t),
exactly the rows RecBole trains on. Sequences longer than ``W + 1`` items
(``W = MAX_ITEM_LIST_LENGTH``) are cut into windows of at most ``W`` transitions,
counted from the end, so the most recent transitions keep the longest context.
With an overlap ``o``, each window but a user's first starts ``o`` items before the
transitions it trains (context only), so every trained position past the first
window sees at least ``o`` earlier items, as a prefix sample of RecBole sees up to
``W``; each transition is still trained once per epoch, at ``W / (W - o)`` times the
positions computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from recbole.data.interaction import Interaction

from recbole_compress.errors import UserError

_CHECK_CHUNK = 16_384  # rows per chunk of the history check (bounds its memory)


@dataclass
class Sequences:
    """Every user's training sequence, concatenated: ``items[offsets[u]:offsets[u+1]]``."""

    users: np.ndarray  # [n_users] user ids
    offsets: np.ndarray  # [n_users + 1]
    items: np.ndarray  # [total] item ids

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def transitions(self) -> int:
        return int(np.maximum(self.lengths - 1, 0).sum())


def training_sequences(dataset, item_seq_field: str, item_seq_len_field: str) -> Sequences:
    """Rebuild each user's training sequence from the rows of RecBole's training split."""
    feat = dataset.inter_feat
    uid = feat[dataset.uid_field].numpy()
    target = feat[dataset.iid_field].numpy().astype(np.int64)
    history = feat[item_seq_field].numpy()
    hist_len = feat[item_seq_len_field].numpy().astype(np.int64)
    n, width = history.shape
    order = np.argsort(uid, kind="stable")  # a user's rows stay in time order
    uid, target, history, hist_len = uid[order], target[order], history[order], hist_len[order]

    first = np.flatnonzero(np.r_[True, uid[1:] != uid[:-1]]) if n else np.zeros(0, dtype=np.int64)
    rows = np.diff(np.r_[first, n])  # training targets per user
    head = hist_len[first]  # the first row's history: the items before the first target
    offsets = np.r_[0, np.cumsum(head + rows)].astype(np.int64)
    items = np.zeros(offsets[-1], dtype=np.int64)
    steps = np.arange(width)
    in_head = steps[None, :] < head[:, None]
    items[(offsets[:-1, None] + steps[None, :])[in_head]] = history[first][in_head]
    row_user = np.repeat(np.arange(len(first)), rows)
    rank = np.arange(n) - np.repeat(first, rows)
    target_at = offsets[row_user] + head[row_user] + rank
    items[target_at] = target
    _check_histories(items, offsets[row_user], target_at, history, hist_len)
    return Sequences(users=uid[first], offsets=offsets, items=items)


def _check_histories(items, user_start, target_at, history, hist_len) -> None:
    """Every row's history must be the items just before its target in the rebuilt sequence."""
    width = history.shape[1]
    steps = np.arange(width)
    for lo in range(0, len(target_at), _CHECK_CHUNK):
        hi = lo + _CHECK_CHUNK
        length = hist_len[lo:hi, None]
        used = steps[None, :] < length
        at = target_at[lo:hi, None] - length + steps[None, :]
        inside = at >= user_start[lo:hi, None]
        same = items[np.clip(at, 0, len(items) - 1)] == history[lo:hi]
        if not np.all(~used | (inside & same)):
            raise UserError(
                "the training split's rows are not the prefixes of one time-ordered sequence per user, so "
                "train_mode=all_positions cannot rebuild the sequences; use RecBole's own augmentation "
                "(no benchmark_filename with other rows) or train_mode: prefix"
            )


@dataclass
class Windows:
    """Training samples: window ``w`` inputs ``items[start[w] : start[w] + length[w]]``
    and targets the same slice shifted by one."""

    items: torch.Tensor  # [total] long
    start: torch.Tensor  # [n_windows] long
    length: torch.Tensor  # [n_windows] long, 1..W transitions
    user: torch.Tensor  # [n_windows] long
    skip: torch.Tensor  # [n_windows] long: leading positions that are context only (0 or the overlap)

    def __len__(self) -> int:
        return int(self.start.numel())

    def positions(self) -> int:
        """Trained positions (each training transition once)."""
        return int((self.length - self.skip).sum())


def check_window_overlap(overlap, width: int | None) -> None:
    """``window_overlap`` is a whole number in [0, ``width``) (no upper bound while the
    width is unknown); checked where the config is read and where windows are cut."""
    whole = isinstance(overlap, int) and not isinstance(overlap, bool)
    if not whole or overlap < 0 or (width and overlap >= width):
        raise UserError(f"window_overlap={overlap} must be in [0, MAX_ITEM_LIST_LENGTH={width}), a whole number; "
                        f"e.g. --window_overlap={(width or 50) // 2}")


def windows(sequences: Sequences, width: int, overlap: int = 0) -> Windows:
    """Cut every sequence's transitions into windows of at most ``width``, from the end;
    consecutive windows of a user share ``overlap`` items, trained in the later one only."""
    if width < 1:
        raise UserError(f"MAX_ITEM_LIST_LENGTH={width} must be >= 1")
    check_window_overlap(overlap, width)
    stride = width - overlap
    transitions = np.maximum(sequences.lengths - 1, 0)
    # windows until one starts at the sequence's first item; 0 for a sequence of one item
    count = np.where(transitions > 0, -(-np.maximum(transitions - width, 0) // stride) + 1, 0)
    owner = np.repeat(np.arange(len(transitions)), count)
    back = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)  # 0 = the last window
    end = transitions[owner] - back * stride
    begin = np.maximum(end - width, 0)
    return Windows(
        items=torch.from_numpy(sequences.items),
        start=torch.from_numpy(sequences.offsets[owner] + begin),
        length=torch.from_numpy(end - begin),
        user=torch.from_numpy(sequences.users[owner].astype(np.int64)),
        skip=torch.from_numpy(np.where(begin > 0, overlap, 0).astype(np.int64)),
    )


def sample_negatives(positives: torch.Tensor, count: int, n_items: int) -> torch.Tensor:
    """``count`` items per position, uniform over the real items ``1..n_items-1``
    except that position's positive (drawn from ``n_items - 2`` values, shifted
    past the positive): ``[*positives.shape, count]``. Uses torch's global RNG,
    so a run is deterministic under RecBole's ``init_seed``."""
    if n_items < 3:
        raise UserError(f"negative sampling needs at least 2 items besides [PAD]; the dataset has {n_items - 1}")
    draw = torch.randint(1, n_items - 1, (*positives.shape, count), device=positives.device)
    return draw + (draw >= positives.unsqueeze(-1)).long()


class AllPositionsLoader:
    """Batches of windows as RecBole ``Interaction``s, reshuffled every epoch:
    ``ITEM_SEQ`` [B, L] inputs (left-aligned, 0-padded to the batch's longest window),
    ``ITEM_SEQ_LEN`` [B], ``POS_ITEM_ID`` [B, L] targets (0 = padding, and at a window's
    context-only overlap, which the losses skip) and, when ``neg_samples`` > 0,
    ``NEG_ITEM_ID`` [B, L, k].

    ``length_bucketing``: batches are formed from pools of 50 batches sorted by length,
    then shuffled, so a batch pads to a similar length (short histories dominate
    Amazon-style data); the pools are random every epoch."""

    POOL = 50

    def __init__(self, windows: Windows, fields: dict[str, str], batch_size: int, n_items: int,
                 neg_samples: int = 0, length_bucketing: bool = True):
        self.windows = windows
        self.fields = fields
        self.batch_size = int(batch_size)
        self.n_items = int(n_items)
        self.neg_samples = int(neg_samples)
        self.length_bucketing = length_bucketing
        self.shuffle = True

    def __len__(self) -> int:
        return math.ceil(len(self.windows) / self.batch_size)

    def batch_order(self) -> list[torch.Tensor]:
        order = torch.randperm(len(self.windows))
        size = self.batch_size
        if not self.length_bucketing:
            return list(order.split(size))
        batches = []
        for pool in order.split(size * self.POOL):
            by_length = pool[torch.argsort(self.windows.length[pool], stable=True)]
            batches += list(by_length.split(size))
        return [batches[i] for i in torch.randperm(len(batches)).tolist()]

    def __iter__(self):
        for index in self.batch_order():
            yield self.batch(index)

    def batch(self, index: torch.Tensor) -> Interaction:
        w = self.windows
        length = w.length[index]
        steps = torch.arange(int(length.max()))
        valid = steps[None, :] < length[:, None]
        at = torch.where(valid, w.start[index, None] + steps[None, :], 0)
        inputs = torch.where(valid, w.items[at], 0)
        trained = valid & (steps[None, :] >= w.skip[index, None])
        targets = torch.where(trained, w.items[torch.where(valid, at + 1, 0)], 0)
        data = {
            self.fields["user"]: w.user[index],
            self.fields["item_seq"]: inputs,
            self.fields["item_seq_len"]: length,
            self.fields["pos_item"]: targets,
        }
        if self.neg_samples:
            negatives = sample_negatives(targets, self.neg_samples, self.n_items)
            data[self.fields["neg_item"]] = negatives * trained.unsqueeze(-1)
        return Interaction(data)
