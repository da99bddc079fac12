"""Token <-> internal id maps and each user's training items, held as stored.

A :class:`TokenMap` keeps the UTF-8 buffer and offsets of the artifact plus one int32
order (the ids sorted by token), and finds a token by binary search: a Python dict of
every token would hold tens of bytes per token more than the model it serves.
"""

from __future__ import annotations

import bisect

import numpy as np
import torch
from torch import Tensor

from recbole_compress.errors import UserError

PAD_TOKEN = "[PAD]"
SHOWN_UNKNOWN = 5  # unknown tokens named in an error


class TokenMap:
    """Tokens of one field (``what``: user or item); id 0 is RecBole's [PAD], never a token
    a caller can ask for."""

    def __init__(self, what: str, buffer: Tensor, offsets: Tensor):
        self.what = what
        self.buffer = buffer.numpy()
        self.offsets = offsets.numpy()
        self.size = len(self.offsets) - 1
        keys = np.array([self.token_bytes(i) for i in range(1, self.size)], dtype=object)
        self.order = (np.argsort(keys, kind="stable") + 1).astype(np.int32) if self.size > 1 else np.zeros(0, np.int32)
        self.tensors = (buffer, offsets, torch.from_numpy(self.order))

    def __len__(self) -> int:
        return self.size

    def token_bytes(self, index) -> bytes:
        return self.buffer[int(self.offsets[index]) : int(self.offsets[index + 1])].tobytes()

    def token(self, index: int) -> str:
        return self.token_bytes(index).decode("utf-8")

    def find(self, token: str) -> int | None:
        wanted = str(token).encode("utf-8")
        at = bisect.bisect_left(self.order, wanted, key=self.token_bytes)
        if at < len(self.order) and self.token_bytes(self.order[at]) == wanted:
            return int(self.order[at])
        return None

    def ids(self, tokens) -> list[int]:
        """Internal ids of ``tokens``; unknown ones are one error naming them."""
        found = [self.find(t) for t in tokens]
        unknown = [str(t) for t, i in zip(tokens, found) if i is None]
        if unknown:
            shown = ", ".join(repr(t) for t in unknown[:SHOWN_UNKNOWN])
            more = f" and {len(unknown) - SHOWN_UNKNOWN} more" if len(unknown) > SHOWN_UNKNOWN else ""
            raise UserError(
                f"unknown {self.what} token{'s' if len(unknown) > 1 else ''} {shown}{more}: not in this model's "
                f"training data ({self.size - 1} {self.what}s); use tokens from the dataset it was trained on"
            )
        return found


class SeenItems:
    """Each user's training items as CSR (the artifact's tensors, held as they are)."""

    def __init__(self, crow: Tensor, col: Tensor):
        self.crow, self.col = crow, col
        self.tensors = (crow, col)

    def items_of(self, users: Tensor) -> tuple[Tensor, Tensor]:
        """(row in ``users``, item id) of every training item of ``users``."""
        if users.numel() == 1:  # one user: a slice
            user = int(users[0])
            items = torch.from_numpy(self.col[int(self.crow[user]) : int(self.crow[user + 1])].numpy().astype(np.int64))
            return torch.zeros(items.numel(), dtype=torch.long), items
        start, end = self.crow[users].long(), self.crow[users + 1].long()
        counts = end - start
        owner = torch.repeat_interleave(torch.arange(users.numel()), counts)
        offset = torch.arange(int(counts.sum())) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        return owner, self.col[start[owner] + offset].long()

    def coo(self, num_users: int, num_items: int):
        """The user x item matrix (scipy COO, ones): the graph a LightGCN rebuild propagates over."""
        import scipy.sparse as sp

        crow = self.crow.long().numpy()
        rows = np.repeat(np.arange(len(crow) - 1), np.diff(crow))
        data = np.ones(len(rows), dtype=np.float64)
        return sp.coo_matrix((data, (rows, self.col.long().numpy())), shape=(num_users, num_items))
