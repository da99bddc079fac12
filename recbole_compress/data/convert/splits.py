"""Train/valid/test interaction splits: reading user lines, duplicates, overlap, the
validation carve and unseen users/items (the rules are in formats.RULES).

Used by the ``lightgcn``, ``lastfm`` and ``seqsplit`` converters; the only numpy module of
the shared code, imported when a conversion runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recbole_compress.data.convert.common import (
    ConversionResult,
    ConvertError,
    check_ids,
    finish,
    read_lines,
    read_user_lines,
    write_inter,
)
from recbole_compress.data.convert.output import Destination, staged_output

MIN_INTER_FOR_VALID = 5


@dataclass
class Split:
    users: np.ndarray  # int64
    items: np.ndarray  # int64
    extra: np.ndarray | None = None  # object array of raw strings (lastfm weight)

    def __len__(self) -> int:
        return len(self.users)

    def take(self, mask: np.ndarray) -> "Split":
        return Split(self.users[mask], self.items[mask], None if self.extra is None else self.extra[mask])


def read_user_item_lines(path: Path) -> Split:
    """Read ``user item item ...`` lines (one per user, non-negative integer ids)."""
    users: list[int] = []
    items: list[int] = []
    for user, seq in read_user_lines(path):
        users.extend([user] * len(seq))
        items.extend(seq)
    try:
        return Split(np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64))
    except OverflowError:  # an id past int64: find its line only now (no cost on good files)
        for lineno, line in read_lines(path):
            check_ids([int(tok) for tok in line.split()], path, lineno, line)
        raise


# --------------------------------------------------------------------------- cleaning


def _pair_keys(splits: dict[str, Split]) -> dict[str, np.ndarray]:
    """One int64 key per (user, item) row, equal across splits exactly when the pair is."""
    users = np.concatenate([p.users for p in splits.values()])
    items = np.concatenate([p.items for p in splits.values()])
    width = int(items.max()) + 1 if len(items) else 1
    if len(users) and int(users.max()) >= (2**63 - 1) // width:  # ids too large to pack: pack their ranks
        users = np.unique(users, return_inverse=True)[1].astype(np.int64)
        items = np.unique(items, return_inverse=True)[1].astype(np.int64)
        width = int(items.max()) + 1
    keys = users * width + items
    bounds = np.cumsum([0] + [len(p) for p in splits.values()])
    return {key: keys[a:b] for key, a, b in zip(splits, bounds[:-1], bounds[1:])}


def _first_copies(keys: np.ndarray) -> np.ndarray:
    """True at the first row of each key (a stable sort; numpy's hash-based unique is slower here)."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    first = np.zeros(len(keys), dtype=bool)
    first[order[np.r_[True, ordered[1:] != ordered[:-1]]]] = True
    return first


def _member(keys: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """``np.isin(keys, pool)`` by binary search in the sorted pool."""
    pool = np.sort(pool)
    if len(pool) == 0:
        return np.zeros(len(keys), dtype=bool)
    at = np.minimum(np.searchsorted(pool, keys), len(pool) - 1)
    return pool[at] == keys


def drop_duplicates(
    splits: dict[str, Split], keys: dict[str, np.ndarray], keep: bool
) -> tuple[dict[str, Split], dict[str, np.ndarray], dict[str, int]]:
    """Keep the first row of each user-item pair repeated inside a split; count the others."""
    counts, out, out_keys = {}, {}, {}
    for split in [s for s in ("train", "valid", "test") if s in splits]:
        part = splits[split]
        first = _first_copies(keys[split])
        counts[f"{split}_duplicate"] = int((~first).sum())
        out[split], out_keys[split] = (part, keys[split]) if keep else (part.take(first), keys[split][first])
    return out, out_keys, counts


def drop_overlap(
    splits: dict[str, Split], keys: dict[str, np.ndarray], keep: bool
) -> tuple[dict[str, Split], dict[str, int]]:
    """Drop valid rows whose pair is in train and test rows whose pair is in train or valid."""
    counts, out = {}, {"train": splits["train"]}
    earlier = ["train"]
    for split in ("valid", "test"):
        if split not in splits:
            continue
        clash = np.zeros(len(splits[split]), dtype=bool)
        for other in earlier:
            hit = _member(keys[split], keys[other]) & ~clash
            counts[f"{split}_in_{other}"] = int(hit.sum())
            clash |= hit
        out[split] = splits[split] if keep else splits[split].take(~clash)
        earlier.append(split)
    return out, counts


def carve_validation(
    users: np.ndarray, items: np.ndarray, valid_ratio: float, seed: int
) -> tuple[np.ndarray, int]:
    """Choose the train rows that move to a validation split.

    Returns ``(mask, n_restored)``: ``mask[r]`` is True for train row ``r`` moving to
    valid. A user with ``n >= 5`` rows gives ``max(1, floor(valid_ratio * n))``; fewer
    than 5 gives none. One uniform key per row from ``numpy.random.default_rng(seed)``
    (rows in the given order); each user's rows with the smallest keys move. Rows whose
    item would vanish from train are put back (``n_restored`` counts them).
    """
    users = np.asarray(users)
    items = np.asarray(items)
    n = len(users)
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask, 0
    rng = np.random.default_rng(seed)
    keys = rng.random(n)
    order = np.lexsort((keys, users))
    sorted_users = users[order]
    _, starts, counts = np.unique(sorted_users, return_index=True, return_counts=True)
    k = np.where(
        counts >= MIN_INTER_FOR_VALID,
        np.maximum(1, np.floor(valid_ratio * counts + 1e-9).astype(np.int64)),
        0,
    )
    rank = np.arange(n) - np.repeat(starts, counts)
    mask[order] = rank < np.repeat(k, counts)
    kept_items = np.unique(items[~mask])
    restore = mask & ~np.isin(items, kept_items)
    mask &= ~restore
    return mask, int(restore.sum())


def drop_unseen(splits: dict[str, Split], keep_unseen: bool) -> tuple[dict[str, Split], dict[str, int]]:
    """Drop valid/test rows whose item or user never appears in train."""
    dropped: dict[str, int] = {}
    if keep_unseen:
        return splits, dropped
    train = splits["train"]
    train_items = np.unique(train.items)
    train_users = np.unique(train.users)
    out = {"train": train}
    for key in ("valid", "test"):
        part = splits[key]
        item_ok = np.isin(part.items, train_items)
        user_ok = np.isin(part.users, train_users)
        dropped[f"{key}_unseen_item"] = int((~item_ok).sum())
        dropped[f"{key}_unseen_user"] = int((item_ok & ~user_ok).sum())
        out[key] = part.take(item_ok & user_ok)
    return out, dropped


def clean_pairs(
    splits: dict[str, Split], *, keep_duplicates: bool, keep_overlap: bool
) -> tuple[dict[str, Split], dict[str, int], dict[str, int], list[str]]:
    """Duplicates, then overlap: ``(splits, dropped, kept, notes)``."""
    splits, keys, duplicates = drop_duplicates(splits, _pair_keys(splits), keep_duplicates)
    splits, overlap = drop_overlap(splits, keys, keep_overlap)
    dropped, kept = {}, {}
    (kept if keep_duplicates else dropped).update(duplicates)
    (kept if keep_overlap else dropped).update(overlap)
    notes = [
        "a user-item pair repeated inside a split: "
        + ("every copy kept (--keep-duplicates)" if keep_duplicates else "the first kept, the others dropped"),
        "a valid pair also in train, a test pair also in train or valid: "
        + ("kept (--keep-overlap)" if keep_overlap else "dropped"),
    ]
    return splits, dropped, kept, notes


# --------------------------------------------------------------------------- lightgcn, lastfm


def interaction_conversion(
    fmt: str,
    src: Path,
    dest: Destination,
    splits: dict[str, Split],
    source_files: dict[str, str],
    *,
    valid_ratio: float,
    seed: int,
    keep_unseen: bool,
    keep_duplicates: bool,
    keep_overlap: bool,
    extra_field: str | None,
    started: float,
) -> ConversionResult:
    """Clean and write the ``{name}.{train,valid,test}.inter`` of an interaction format."""
    for key, part in splits.items():
        if len(part) == 0:
            raise ConvertError(f"{src / source_files[key]}: no interactions found; expected {fmt} data")
    info: dict = {"source_files": source_files, "seed": int(seed), "valid_ratio": float(valid_ratio)}
    source_total = int(sum(len(p) for p in splits.values()))
    splits, dropped, kept, notes = clean_pairs(splits, keep_duplicates=keep_duplicates, keep_overlap=keep_overlap)
    info["drops_duplicates"] = not keep_duplicates
    info["drops_overlap"] = not keep_overlap
    if "valid" not in splits:
        mask, restored = carve_validation(splits["train"].users, splits["train"].items, valid_ratio, seed)
        train = splits["train"]
        splits = {"train": train.take(~mask), "valid": train.take(mask), "test": splits["test"]}
        info["valid_carved_from_train"] = True
        info["valid_restored_to_train"] = restored
        notes.append(
            f"no validation file in the source: valid was carved from train (users with >= "
            f"{MIN_INTER_FOR_VALID} train interactions give max(1, floor({valid_ratio} * n)), "
            f"numpy.random.default_rng({seed})); {restored} carved rows were put back so every "
            "train item stays in train"
        )
    else:
        info["valid_carved_from_train"] = False
    splits, unseen = drop_unseen(splits, keep_unseen)
    dropped.update(unseen)
    info["drops_unseen"] = not keep_unseen
    if not keep_unseen:
        notes.append("valid/test rows whose item or user never appears in train were dropped (see 'dropped')")
    info["source_interactions"] = source_total
    users = np.unique(np.concatenate([p.users for p in splits.values()]))
    items = np.unique(np.concatenate([p.items for p in splits.values()]))
    info["interactions"] = int(sum(len(p) for p in splits.values()))
    info["notes"] = notes

    header = ["user_id:token", "item_id:token"] + ([f"{extra_field}:float"] if extra_field else [])
    counts = {}
    with staged_output(dest) as staging:
        for key in ("train", "valid", "test"):
            part = splits[key]
            cols = [part.users.tolist(), part.items.tolist()]
            if extra_field:
                cols.append(part.extra.tolist())
            counts[key] = write_inter(staging / f"{dest.name}.{key}.inter", header, cols)
        result = ConversionResult(dest.name, fmt, src, dest.path, len(users), len(items), counts, dropped, info,
                                  kept=kept)
        return finish(staging, result, started)
