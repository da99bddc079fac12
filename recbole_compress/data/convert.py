"""Converters from the raw research datasets in ``../shared/datasets/`` to RecBole atomic files.

Every converter reads a source folder ``src`` and writes a dataset folder ``dst``
whose files are named ``{name}.{suffix}`` (``name`` defaults to the basename of
``dst``), so RecBole finds them with ``data_path=dst.parent`` and ``dataset=name``.
All files are tab-separated with a ``field:type`` header. Raw ids are written as
they are (0- or 1-based tokens); RecBole remaps tokens itself.

Formats
-------
``lightgcn``  (yelp2018, tiktok) ``train.txt``, ``test.txt`` and optional ``valid.txt``:
    one line per user, ``user item item ...``, non-negative integer ids.
    Writes ``{name}.{train,valid,test}.inter`` (``user_id:token item_id:token``).
``lastfm``    ``data1.txt`` (train), ``test1.txt`` (test): ``user item weight`` per line.
    Writes ``{name}.{train,valid,test}.inter`` (``user_id:token item_id:token weight:float``).
``s3rec``     (beauty) the single ``*.txt`` file in ``src``: ``user item item ...`` in
    chronological order. Writes ``{name}.inter`` (``user_id:token item_id:token
    timestamp:float``) with timestamp = position of the item in the user's sequence
    (0, 1, 2, ...), so RecBole's leave-one-out split (``split: {LS: valid_and_test}``,
    ``order: TO``) makes the last item the test target and the second last the valid one.
``unisrec``   (scientific) ``P.{train,valid,test}.inter`` (``user_id:token
    item_id_list:token_seq item_id:token``) and ``P.text`` (``item_id:token
    text:token_seq``). The inter files are copied under the new name (headers and
    fields checked). ``P.text`` is keyed by the source's raw item ids (ASINs) while the
    inter files use the indices of ``P.item2index``; when that map exists the ids in
    ``{name}.text`` are rewritten to those indices, so the text file joins with the
    inter files on RecBole's ``item_id`` token. ``P.item2index`` and ``P.user2index``
    are copied as ``{name}.item2index`` / ``{name}.user2index`` for provenance.
``seqsplit``  (tiktok) the ``lightgcn`` files as a sequential benchmark (the UniSRec layout):
    ``{name}.{train,valid,test}.inter`` with ``user_id:token item_id_list:token_seq
    item_id:token``. The source has no timestamps (each line lists a user's items in
    ascending id order), so each user's train items are put in a random order
    (``numpy.random.default_rng(seed)``, one permutation per user in file order): train
    rows predict each item from the ones before it, valid rows predict each valid item
    from the whole train history, test rows each test item from train + valid history
    (histories keep the last 50 items). The split is the source's: the same train/valid/test
    items as ``lightgcn``. Feature matrices ``X_feat.npy`` / ``X.npy`` are copied as
    ``{name}.X.npy`` (row r = item token r), the content TransRec reads.
``ctcvr``     (ali-ccp-sample, aliexpress-sample) the CSV file(s) in ``src``. Writes
    ``{name}.inter`` with every column of every CSV (rows in train, valid, test order),
    and, when each CSV's name says which split it is (``train``/``val``/``test``), also
    ``{name}.{train,valid,test}.inter`` with the same rows. Types: the label columns
    (``click``, ``purchase``, ``conversion``) are ``float``; numeric features -- names
    starting with ``D`` and a digit (ali-ccp's ``D109_14`` ...) or with ``numerical``
    (aliexpress) -- are ``float``; every other column (ali-ccp's 23 categorical fields,
    aliexpress' ``search_id`` and 16 ``categorical_*`` fields) is ``token``, with runs of
    whitespace inside a value replaced by ``_``. Column names that start with a digit get
    an ``f`` prefix (ali-ccp's ``101`` -> ``f101``, ``109_14`` -> ``f109_14``) because RecBole
    evaluates config values and would read such a name as an int; the renaming is listed
    in ``{name}.convert.json``.
``funnel``    (derived from ml-100k; a multi-task CTR/CVR benchmark of real size) an atomic
    ``P.inter`` with ``user_id``, ``item_id`` and ``rating`` (RecBole's ``ml-100k`` folder),
    plus ``P.user`` / ``P.item`` when present (copied as ``{name}.user`` / ``{name}.item``).
    **Derived, not logged exposures**: exposures = every interaction plus ``negatives`` times
    as many sampled non-interactions per user (uniform over the items the user never rated,
    without replacement, capped by their number, ``numpy.random.default_rng(seed)``); ``click`` = the pair was
    interacted, ``conversion`` = the rating is >= 4 (0 for non-clicks). The rating itself is
    not written (it would leak the label). Exposures are split at random into
    ``{name}.{train,valid,test}.inter`` (``valid_ratio`` each for valid and test).

Validation split (lightgcn without ``valid.txt``, lastfm)
---------------------------------------------------------
A fixed validation set is carved out of train (:func:`carve_validation`): a user with
``n >= 5`` train interactions gives ``max(1, floor(valid_ratio * n))`` of them to valid;
users with fewer than 5 give none. Which ones is drawn with
``numpy.random.default_rng(seed)``: one uniform key per train row (in file order), the
``k`` smallest keys of each user move. A moved interaction whose item would no longer
appear anywhere in train is put back into train, so every train item stays in train.
The result depends only on the source files, ``valid_ratio`` and ``seed``.

Unseen users and items
----------------------
Rows of valid/test whose item, or whose user, never appears in (the final) train are
dropped unless ``keep_unseen=True`` (an ID model has no trained embedding for them);
the counts are reported (``dropped``) in the summary line and ``{name}.convert.json``.

Every conversion also writes ``{name}.convert.json`` (source, format, seed, valid_ratio,
counts per split, dropped rows, notes). Writing is atomic: the dataset is built in a
temporary sibling folder ``{dst}.tmp-XXXX`` and renamed to ``dst`` only when complete;
an existing ``dst`` is replaced only then, and only when it is empty or holds an
earlier conversion (a ``*.convert.json``). Bad input raises :class:`ConvertError` with a
one-line message naming the file and line.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recbole_compress.errors import UserError

__all__ = [
    "FORMATS",
    "ConversionResult",
    "ConvertError",
    "carve_validation",
    "convert_ctcvr",
    "convert_lastfm",
    "convert_lightgcn",
    "convert_s3rec",
    "convert_seqsplit",
    "convert_dataset",
    "convert_funnel",
    "convert_unisrec",
]

MIN_INTER_FOR_VALID = 5
LABEL_COLUMNS = ("click", "purchase", "conversion")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ID_LINE_RE = re.compile(r"^\s*\d+(?:[ \t]+\d+)*\s*$", re.ASCII)
_FLOAT_FEATURE_RE = re.compile(r"^(D\d|numerical)")
_WS_RE = re.compile(r"\s+")


class ConvertError(UserError):
    """Bad conversion input: a missing folder or file, a malformed line, a bad option."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))  # always one line


@dataclass
class ConversionResult:
    """What a conversion wrote; ``summary()`` is the CLI's one-line report."""

    name: str
    format: str
    src: Path
    dst: Path
    n_users: int | None
    n_items: int | None
    splits: dict[str, int]  # rows per written split (inter file)
    dropped: dict[str, int] = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def n_dropped(self) -> int:
        return int(sum(self.dropped.values()))

    def summary(self) -> str:
        parts = [f"{self.name} ({self.format}):"]
        if self.n_users is not None:
            parts.append(f"{self.n_users} users, {self.n_items} items;")
        parts.append(", ".join(f"{k} {v}" for k, v in self.splits.items()) + " rows;")
        if "interactions" in self.info:
            parts.append(f"{self.info['interactions']} interactions;")
        if "labels" in self.info:
            labels = ", ".join(f"{k} {v} positive" for k, v in self.info["labels"].items())
            parts.append(f"labels: {labels};")
        if self.info.get("valid_carved_from_train"):
            parts.append(f"valid carved from train (ratio {self.info['valid_ratio']}, seed {self.info['seed']});")
        if self.dropped or self.info.get("drops_unseen"):
            detail = ", ".join(f"{k} {v}" for k, v in self.dropped.items() if v)
            parts.append(f"dropped {self.n_dropped} rows" + (f" ({detail})" if detail else "") + ";")
        parts.append(f"-> {self.dst} [{self.seconds:.1f}s]")
        return " ".join(parts)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "format": self.format,
            "source": str(self.src),
            "n_users": self.n_users,
            "n_items": self.n_items,
            "splits": dict(self.splits),
            "dropped": dict(self.dropped),
            **self.info,
        }


# --------------------------------------------------------------------------- helpers


def _check_src_dir(src) -> Path:
    path = Path(src).expanduser()
    if not path.exists():
        raise ConvertError(f"source '{src}' does not exist; give the dataset folder, e.g. ../shared/datasets/lastfm")
    return path.resolve()


def _require_dir(src: Path) -> Path:
    if not src.is_dir():
        raise ConvertError(f"source '{src}' is not a folder; give the dataset folder")
    return src


def _require_file(folder: Path, filename: str, fmt: str) -> Path:
    path = folder / filename
    if not path.is_file():
        raise ConvertError(f"expected file '{filename}' not found in '{folder}' (format {fmt})")
    return path


def _prepare_dst(dst, name: str | None) -> tuple[Path, str]:
    dst = Path(dst).expanduser().resolve()
    name = dst.name if name is None else name
    if not name or not _NAME_RE.match(name):
        raise ConvertError(f"dataset name '{name}' is invalid; use letters, digits, '.', '_' or '-' (see --name)")
    if dst.exists():
        if not dst.is_dir():
            raise ConvertError(f"destination '{dst}' exists and is not a folder; remove it or choose another")
        entries = list(dst.iterdir())
        if entries and not any(p.name.endswith(".convert.json") for p in entries):
            raise ConvertError(
                f"destination '{dst}' is a non-empty folder that holds no earlier conversion "
                "(no *.convert.json); refusing to replace it, choose another DST"
            )
    return dst, name


def _read_lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            yield from enumerate(handle, 1)
    except UnicodeDecodeError as err:
        raise ConvertError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None


def _malformed(path: Path, lineno: int, expected: str, line: str) -> ConvertError:
    shown = line.strip()
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return ConvertError(f"{path}:{lineno}: malformed line, expected {expected}, got {shown!r}")


@contextmanager
def _atomic_dir(dst: Path) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it becomes ``dst`` (replacing an old one)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{dst.name}.tmp-", dir=dst.parent))
    old = None
    try:
        yield tmp
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        if dst.exists():
            old = Path(tempfile.mkdtemp(prefix=f"{dst.name}.old-", dir=dst.parent))
            os.replace(dst, old / "previous")
            try:
                os.replace(tmp, dst)
            except BaseException:
                os.replace(old / "previous", dst)
                raise
        else:
            os.replace(tmp, dst)
    finally:
        for leftover in (tmp, old):
            if leftover is not None and leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)


def _write_inter(path: Path, header: list[str], columns: list) -> int:
    """Write a tab-separated atomic file from equally long columns; return the row count."""
    rows = len(columns[0]) if columns else 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write("\t".join(header) + "\n")
        chunk = 200_000
        for start in range(0, rows, chunk):
            cols = [c[start : start + chunk] for c in columns]
            out.write("".join("\t".join(map(str, row)) + "\n" for row in zip(*cols)))
    return rows


def _write_json(path: Path, payload: dict) -> None:
    with open(path, "w", encoding="utf-8") as out:
        json.dump(payload, out, indent=2, sort_keys=False)
        out.write("\n")


def _check_ratio(valid_ratio: float) -> float:
    try:
        ratio = float(valid_ratio)
    except (TypeError, ValueError):
        raise ConvertError(f"--valid-ratio must be a number in (0, 1), got {valid_ratio!r}") from None
    if not 0.0 < ratio < 1.0 or math.isnan(ratio):
        raise ConvertError(f"--valid-ratio must be in (0, 1), got {valid_ratio!r}")
    return ratio


# --------------------------------------------------------------------------- splits


@dataclass
class _Split:
    users: np.ndarray  # int64
    items: np.ndarray  # int64
    extra: np.ndarray | None = None  # object array of raw strings (lastfm weight)

    def __len__(self) -> int:
        return len(self.users)

    def take(self, mask: np.ndarray) -> "_Split":
        return _Split(self.users[mask], self.items[mask], None if self.extra is None else self.extra[mask])

    def concat(self, other: "_Split") -> "_Split":
        extra = None if self.extra is None else np.concatenate([self.extra, other.extra])
        return _Split(np.concatenate([self.users, other.users]), np.concatenate([self.items, other.items]), extra)


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


def _finish_interaction_splits(
    splits: dict[str, _Split], keep_unseen: bool
) -> tuple[dict[str, _Split], dict[str, int]]:
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


def _interaction_conversion(
    fmt: str,
    src: Path,
    dst: Path,
    name: str,
    splits: dict[str, _Split],
    source_files: dict[str, str],
    *,
    valid_ratio: float,
    seed: int,
    keep_unseen: bool,
    extra_field: str | None,
    started: float,
) -> ConversionResult:
    for key, part in splits.items():
        if len(part) == 0:
            raise ConvertError(f"{src / source_files[key]}: no interactions found; expected {fmt} data")
    info: dict = {"source_files": source_files, "seed": int(seed), "valid_ratio": float(valid_ratio)}
    notes = []
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
    source_total = int(sum(len(p) for p in splits.values()))
    splits, dropped = _finish_interaction_splits(splits, keep_unseen)
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
    with _atomic_dir(dst) as tmp:
        for key in ("train", "valid", "test"):
            part = splits[key]
            cols = [part.users.tolist(), part.items.tolist()]
            if extra_field:
                cols.append(part.extra.tolist())
            counts[key] = _write_inter(tmp / f"{name}.{key}.inter", header, cols)
        result = ConversionResult(name, fmt, src, dst, len(users), len(items), counts, dropped, info)
        result.seconds = time.perf_counter() - started
        _write_json(tmp / f"{name}.convert.json", result.to_dict())
    return result


# --------------------------------------------------------------------------- lightgcn


def _read_user_item_lines(path: Path) -> _Split:
    """Read ``user item item ...`` lines (one per user, non-negative integer ids)."""
    users: list[int] = []
    items: list[int] = []
    seen: dict[int, int] = {}
    for lineno, line in _read_lines(path):
        if not line.strip():
            continue
        if not _ID_LINE_RE.match(line):
            raise _malformed(path, lineno, "'user item item ...' with non-negative integer ids", line)
        ids = [int(tok) for tok in line.split()]
        user = ids[0]
        if user in seen:
            raise ConvertError(
                f"{path}:{lineno}: malformed file, user {user} already has a line ({seen[user]}); "
                "expected one line per user"
            )
        seen[user] = lineno
        users.extend([user] * (len(ids) - 1))
        items.extend(ids[1:])
    return _Split(np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64))


def convert_lightgcn(
    src,
    dst,
    *,
    name: str | None = None,
    valid_ratio: float = 0.1,
    seed: int = 2020,
    keep_unseen: bool = False,
) -> ConversionResult:
    """LightGCN/NGCF text format (yelp2018, tiktok): ``train.txt``, ``test.txt``, optional ``valid.txt``."""
    started = time.perf_counter()
    src = _require_dir(_check_src_dir(src))
    valid_ratio = _check_ratio(valid_ratio)
    dst, name = _prepare_dst(dst, name)
    files = {"train": _require_file(src, "train.txt", "lightgcn"), "test": _require_file(src, "test.txt", "lightgcn")}
    if (src / "valid.txt").is_file():
        files["valid"] = src / "valid.txt"
    splits = {key: _read_user_item_lines(path) for key, path in files.items()}
    return _interaction_conversion(
        "lightgcn", src, dst, name, splits, {k: p.name for k, p in files.items()},
        valid_ratio=valid_ratio, seed=seed, keep_unseen=keep_unseen, extra_field=None, started=started,
    )


# --------------------------------------------------------------------------- lastfm


def _read_triples(path: Path) -> _Split:
    """Read ``user item weight`` lines (integer ids, numeric weight)."""
    users: list[int] = []
    items: list[int] = []
    weights: list[str] = []
    for lineno, line in _read_lines(path):
        toks = line.split()
        if not toks:
            continue
        ok = len(toks) == 3 and toks[0].isascii() and toks[0].isdigit() and toks[1].isascii() and toks[1].isdigit()
        if ok:
            try:
                value = float(toks[2])
                ok = math.isfinite(value)
            except ValueError:
                ok = False
        if not ok:
            raise _malformed(path, lineno, "'user item weight' (integer ids, numeric weight)", line)
        users.append(int(toks[0]))
        items.append(int(toks[1]))
        weights.append(toks[2])
    return _Split(
        np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64), np.asarray(weights, dtype=object)
    )


def convert_lastfm(
    src,
    dst,
    *,
    name: str | None = None,
    valid_ratio: float = 0.1,
    seed: int = 2020,
    keep_unseen: bool = False,
) -> ConversionResult:
    """Last.fm from the LightGCN repository: ``data1.txt`` (train), ``test1.txt`` (test)."""
    started = time.perf_counter()
    src = _require_dir(_check_src_dir(src))
    valid_ratio = _check_ratio(valid_ratio)
    dst, name = _prepare_dst(dst, name)
    files = {"train": _require_file(src, "data1.txt", "lastfm"), "test": _require_file(src, "test1.txt", "lastfm")}
    splits = {key: _read_triples(path) for key, path in files.items()}
    return _interaction_conversion(
        "lastfm", src, dst, name, splits, {k: p.name for k, p in files.items()},
        valid_ratio=valid_ratio, seed=seed, keep_unseen=keep_unseen, extra_field="weight", started=started,
    )


# --------------------------------------------------------------------------- s3rec


def _single_file(src: Path, pattern: str, fmt: str) -> Path:
    if src.is_file():
        return src
    found = sorted(p for p in src.glob(pattern) if p.is_file())
    if not found:
        raise ConvertError(f"expected one '{pattern}' file in '{src}' (format {fmt}), found none")
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise ConvertError(f"expected one '{pattern}' file in '{src}' (format {fmt}), found {len(found)}: {names}")
    return found[0]


def convert_s3rec(src, dst, *, name: str | None = None) -> ConversionResult:
    """S3Rec sequences (beauty): ``user item item ...`` per line in chronological order."""
    started = time.perf_counter()
    src = _check_src_dir(src)
    path = _single_file(src, "*.txt", "s3rec")
    dst, name = _prepare_dst(dst, name)
    users: list[int] = []
    items: list[int] = []
    positions: list[int] = []
    seen: dict[int, int] = {}
    for lineno, line in _read_lines(path):
        if not line.strip():
            continue
        if not _ID_LINE_RE.match(line):
            raise _malformed(path, lineno, "'user item item ...' with non-negative integer ids", line)
        ids = [int(tok) for tok in line.split()]
        user = ids[0]
        if user in seen:
            raise ConvertError(
                f"{path}:{lineno}: malformed file, user {user} already has a sequence on line {seen[user]}"
            )
        seen[user] = lineno
        seq = ids[1:]
        users.extend([user] * len(seq))
        items.extend(seq)
        positions.extend(range(len(seq)))
    if not items:
        raise ConvertError(f"{path}: no sequences found; expected 'user item item ...' lines")
    n_users = len(set(users))
    n_items = len(set(items))
    info = {
        "source_files": {"sequences": path.name},
        "interactions": len(items),
        "notes": ["timestamp = position of the item in the user's chronological sequence (0, 1, 2, ...)"],
    }
    with _atomic_dir(dst) as tmp:
        rows = _write_inter(
            tmp / f"{name}.inter", ["user_id:token", "item_id:token", "timestamp:float"], [users, items, positions]
        )
        result = ConversionResult(name, "s3rec", src, dst, n_users, n_items, {"inter": rows}, {}, info)
        result.seconds = time.perf_counter() - started
        _write_json(tmp / f"{name}.convert.json", result.to_dict())
    return result


# --------------------------------------------------------------------------- unisrec

_UNISREC_HEADER = ["user_id:token", "item_id_list:token_seq", "item_id:token"]
_TEXT_HEADER = ["item_id:token", "text:token_seq"]


def _read_tsv(path: Path, header: list[str]) -> list[tuple[int, list[str]]]:
    """Read a tab-separated atomic file with exactly ``header``; return ``(line number, fields)`` rows."""
    rows: list[tuple[int, list[str]]] = []
    width = len(header)
    header_seen = False
    for lineno, line in _read_lines(path):
        line = line.rstrip("\r\n")
        if not header_seen:
            got = line.split("\t")
            if got != header:
                raise ConvertError(
                    f"{path}:{lineno}: unexpected header {'|'.join(got)!r}, expected {'|'.join(header)!r} "
                    "(tab-separated)"
                )
            header_seen = True
            continue
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != width or not fields[0].strip():
            raise _malformed(path, lineno, f"{width} tab-separated fields ({', '.join(header)})", line)
        rows.append((lineno, fields))
    if not header_seen:
        raise ConvertError(f"{path}: empty file, expected the header {'|'.join(header)!r}")
    return rows


def _read_index_map(path: Path) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for lineno, line in _read_lines(path):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise _malformed(path, lineno, "'raw_id index'", line)
        mapping[fields[0]] = fields[1]
    return mapping


def convert_unisrec(src, dst, *, name: str | None = None) -> ConversionResult:
    """UniSRec atomic files (scientific): ``P.{train,valid,test}.inter`` and ``P.text``."""
    started = time.perf_counter()
    src = _require_dir(_check_src_dir(src))
    train_files = sorted(src.glob("*.train.inter"))
    if not train_files:
        raise ConvertError(f"expected file '*.train.inter' not found in '{src}' (format unisrec)")
    if len(train_files) > 1:
        raise ConvertError(
            f"found {len(train_files)} '*.train.inter' files in '{src}' ({', '.join(p.name for p in train_files)}); "
            "expected one dataset"
        )
    prefix = train_files[0].name[: -len(".train.inter")]
    files = {key: _require_file(src, f"{prefix}.{key}.inter", "unisrec") for key in ("train", "valid", "test")}
    text_path = _require_file(src, f"{prefix}.text", "unisrec")
    dst, name = _prepare_dst(dst, name)

    splits = {key: _read_tsv(path, _UNISREC_HEADER) for key, path in files.items()}
    for key, rows in splits.items():
        if not rows:
            raise ConvertError(f"{files[key]}: no rows after the header")
    users: set[str] = set()
    items: set[str] = set()
    longest: dict[str, int] = {}
    for key, rows in splits.items():
        for lineno, (user, history, target) in rows:
            seq = history.split()
            if len(target.split()) != 1:
                raise _malformed(files[key], lineno, "exactly one item token in the item_id field", target)
            users.add(user)
            items.update(seq)
            items.add(target)
            longest[user] = max(longest.get(user, 0), len(seq) + 1)
    interactions = int(sum(longest.values()))

    text_rows = _read_tsv(text_path, _TEXT_HEADER)
    item_map_path = src / f"{prefix}.item2index"
    user_map_path = src / f"{prefix}.user2index"
    info: dict = {
        "source_files": {**{k: p.name for k, p in files.items()}, "text": text_path.name},
        "interactions": interactions,
        "notes": [
            "inter files copied unchanged apart from the name; 'interactions' = sum over users of the "
            "longest history + 1 (the test row's sequence)",
        ],
    }
    dropped_text = 0
    if item_map_path.is_file():
        item_map = _read_index_map(item_map_path)
        mapped = []
        for _, (raw, text) in text_rows:
            if raw in item_map:
                mapped.append([item_map[raw], text])
            else:
                dropped_text += 1
        text_rows = [(0, row) for row in mapped]
        info["text_item_ids"] = f"remapped from raw ids to the indices of {item_map_path.name}"
        info["notes"].append(
            f"{name}.text item ids were rewritten with {item_map_path.name} so they match the inter files"
        )
    else:
        info["text_item_ids"] = "raw source ids (no item2index map found)"
    text_rows = [row for _, row in text_rows]
    text_items = {row[0] for row in text_rows}
    info["text_rows"] = len(text_rows)
    info["text_rows_without_index"] = dropped_text
    info["items_without_text"] = len(items - text_items)

    counts = {}
    with _atomic_dir(dst) as tmp:
        for key, rows in splits.items():
            cols = list(zip(*(fields for _, fields in rows))) or [[], [], []]
            counts[key] = _write_inter(tmp / f"{name}.{key}.inter", _UNISREC_HEADER, cols)
        _write_inter(tmp / f"{name}.text", _TEXT_HEADER, list(zip(*text_rows)) or [[], []])
        for path, suffix in ((item_map_path, "item2index"), (user_map_path, "user2index")):
            if path.is_file():
                shutil.copyfile(path, tmp / f"{name}.{suffix}")
        result = ConversionResult(name, "unisrec", src, dst, len(users), len(items), counts, {}, info)
        result.seconds = time.perf_counter() - started
        _write_json(tmp / f"{name}.convert.json", result.to_dict())
    return result


# --------------------------------------------------------------------------- seqsplit

SEQ_MAX_HISTORY = 50


def convert_seqsplit(
    src, dst, *, name: str | None = None, seed: int = 2020, keep_unseen: bool = False
) -> ConversionResult:
    """LightGCN-format splits (tiktok) as sequential benchmark files, plus the item feature matrices."""
    started = time.perf_counter()
    src = _require_dir(_check_src_dir(src))
    dst, name = _prepare_dst(dst, name)
    files = {"train": _require_file(src, "train.txt", "seqsplit"), "test": _require_file(src, "test.txt", "seqsplit"),
             "valid": _require_file(src, "valid.txt", "seqsplit")}
    splits = {key: _read_user_item_lines(path) for key, path in files.items()}
    for key, part in splits.items():
        if len(part) == 0:
            raise ConvertError(f"{files[key]}: no interactions found; expected 'user item item ...' lines")
    splits, dropped = _finish_interaction_splits(splits, keep_unseen)
    rng = np.random.default_rng(seed)
    history: dict[int, list[int]] = {}
    train_rows: list[tuple[int, str, int]] = []
    for user in dict.fromkeys(splits["train"].users.tolist()):  # users in file order
        items = splits["train"].items[splits["train"].users == user]
        seq = items[rng.permutation(len(items))].tolist()
        history[user] = seq
        for k in range(1, len(seq)):
            train_rows.append((user, " ".join(map(str, seq[max(0, k - SEQ_MAX_HISTORY):k])), seq[k]))
    valid_rows, test_rows = [], []
    valid_seen: dict[int, list[int]] = {}
    no_history = 0
    for user, item in zip(splits["valid"].users.tolist(), splits["valid"].items.tolist()):
        if user not in history:
            no_history += 1
            continue
        valid_rows.append((user, " ".join(map(str, history[user][-SEQ_MAX_HISTORY:])), item))
        valid_seen.setdefault(user, []).append(item)
    for user, item in zip(splits["test"].users.tolist(), splits["test"].items.tolist()):
        if user not in history:
            no_history += 1
            continue
        seq = (history[user] + valid_seen.get(user, []))[-SEQ_MAX_HISTORY:]
        test_rows.append((user, " ".join(map(str, seq)), item))
    dropped["no_train_history"] = no_history
    features = sorted(p for p in src.glob("*.npy") if p.is_file())
    all_rows = {"train": train_rows, "valid": valid_rows, "test": test_rows}
    # what the written rows hold (a user whose only train item has no valid/test row leaves no row)
    users = {row[0] for rows in all_rows.values() for row in rows}
    dropped["train_single_item_users"] = len(set(history) - users)
    items = {int(i) for rows in all_rows.values() for row in rows for i in (*row[1].split(), row[2])}
    info = {
        "source_files": {**{k: p.name for k, p in files.items()}, "features": [p.name for p in features]},
        "seed": int(seed),
        "interactions": int(sum(len(p) for p in splits.values())) - no_history - len(set(history) - users),
        "max_history": SEQ_MAX_HISTORY,
        "drops_unseen": not keep_unseen,
        "notes": [
            "no timestamps in the source: each user's train items in a random order (numpy.random.default_rng(seed)); "
            "valid rows: train history -> each valid item; test rows: train + valid history -> each test item",
            "feature files copied as {name}.<feature>.npy, row r = item token r",
            "a user with one train item and no valid/test item has nothing to predict: no row "
            "(train_single_item_users)",
        ],
    }
    counts = {}
    with _atomic_dir(dst) as tmp:
        for key, rows in all_rows.items():
            counts[key] = _write_inter(tmp / f"{name}.{key}.inter", _UNISREC_HEADER, list(zip(*rows)) or [[], [], []])
        for path in features:
            feature = path.stem.removesuffix("_feat")
            shutil.copyfile(path, tmp / f"{name}.{feature}.npy")
        result = ConversionResult(name, "seqsplit", src, dst, len(users), len(items), counts, dropped, info)
        result.seconds = time.perf_counter() - started
        _write_json(tmp / f"{name}.convert.json", result.to_dict())
    return result


# --------------------------------------------------------------------------- ctcvr


def _csv_split(path: Path) -> tuple[int, str | None]:
    stem = path.stem.lower()
    if "train" in stem:
        return 0, "train"
    if "val" in stem:
        return 1, "valid"
    if "test" in stem:
        return 2, "test"
    return 3, None


def _clean_field_name(raw: str) -> str:
    """A RecBole-safe field name: no whitespace or ':'; a leading digit gets an ``f`` prefix
    (RecBole evaluates config values, so a field named ``101`` or ``109_14`` would turn into
    an int in ``load_col``/``USER_ID_FIELD``)."""
    name = _WS_RE.sub("_", raw.strip()).replace(":", "_")
    return f"f{name}" if name[:1].isdigit() else name


def convert_ctcvr(src, dst, *, name: str | None = None) -> ConversionResult:
    """Click/conversion CSV samples (ali-ccp-sample, aliexpress-sample) to one ``.inter``."""
    started = time.perf_counter()
    src = _check_src_dir(src)
    if src.is_file():
        csv_files = [src]
    else:
        csv_files = [p for p in src.glob("*.csv") if p.is_file()]
        if not csv_files:
            raise ConvertError(f"expected '*.csv' file(s) in '{src}' (format ctcvr), found none")
    csv_files.sort(key=lambda p: (_csv_split(p)[0], p.name))
    dst, name = _prepare_dst(dst, name)

    header: list[str] | None = None
    parts: list[tuple[Path, list[tuple[int, list[str]]]]] = []
    for path in csv_files:
        try:
            with open(path, encoding="utf-8", newline="") as handle:
                reader = csv.reader(handle)
                rows: list[tuple[int, list[str]]] = []
                this_header = None
                for row in reader:
                    if this_header is None:
                        this_raw_header = row
                        this_header = [_clean_field_name(col) for col in row]
                        continue
                    if not row or (len(row) == 1 and not row[0].strip()):
                        continue
                    if len(row) != len(this_header):
                        raise ConvertError(
                            f"{path}:{reader.line_num}: malformed line, expected {len(this_header)} "
                            f"comma-separated fields, got {len(row)}"
                        )
                    rows.append((reader.line_num, row))
        except UnicodeDecodeError as err:
            raise ConvertError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
        except csv.Error as err:
            raise ConvertError(f"{path}: malformed CSV ({err})") from None
        if this_header is None:
            raise ConvertError(f"{path}: empty CSV file, expected a header line")
        if header is None:
            header, raw_header = this_header, this_raw_header
            if len(set(header)) != len(header) or any(not col for col in header):
                raise ConvertError(f"{path}:1: header has empty or repeated column names")
        elif this_header != header:
            raise ConvertError(f"{path}:1: header differs from the header of {csv_files[0].name}")
        parts.append((path, rows))

    assert header is not None
    labels = [col for col in header if col.lower() in LABEL_COLUMNS]
    if not labels:
        raise ConvertError(
            f"{csv_files[0]}:1: no label column ({', '.join(LABEL_COLUMNS)}) in the header; not a ctcvr CSV"
        )
    kinds = {}
    for col in header:
        if col in labels:
            kinds[col] = "label"
        elif _FLOAT_FEATURE_RE.match(col):
            kinds[col] = "float"
        else:
            kinds[col] = "token"

    positives = {col: 0 for col in labels}
    cleaned_parts: list[tuple[Path, list[list[str]]]] = []
    for path, rows in parts:
        cleaned = []
        for lineno, row in rows:
            out = []
            for col, value in zip(header, row):
                kind = kinds[col]
                value = value.strip()
                if kind == "token":
                    out.append(_WS_RE.sub("_", value))
                    continue
                if value == "" and kind == "float":
                    out.append(value)
                    continue
                try:
                    number = float(value)
                except ValueError:
                    number = math.nan
                if not math.isfinite(number):
                    raise ConvertError(
                        f"{path}:{lineno}: malformed line, column {col!r} needs a number, got {value!r}"
                    )
                if kind == "label" and number > 0:
                    positives[col] += 1
                out.append(value)
            cleaned.append(out)
        cleaned_parts.append((path, cleaned))

    field_header = [f"{col}:{'float' if kinds[col] in ('label', 'float') else 'token'}" for col in header]
    split_names = [_csv_split(path)[1] for path, _ in cleaned_parts]
    write_splits = len(cleaned_parts) > 1 and None not in split_names and len(set(split_names)) == len(split_names)
    all_rows = [row for _, rows in cleaned_parts for row in rows]
    if not all_rows:
        raise ConvertError(f"{csv_files[0]}: no data rows in the CSV file(s)")
    info = {
        "source_files": [path.name for path, _ in cleaned_parts],
        "renamed_columns": {raw: col for raw, col in zip(raw_header, header) if raw != col},
        "label_fields": labels,
        "float_fields": [col for col in header if kinds[col] == "float"],
        "token_fields": [col for col in header if kinds[col] == "token"],
        "labels": positives,
        "notes": [
            "rows of all CSVs in train, valid, test order in {name}.inter"
            + ("; per-split copies in {name}.{split}.inter" if write_splits else "")
        ],
    }
    counts: dict[str, int] = {}
    with _atomic_dir(dst) as tmp:
        counts["inter"] = _write_inter(tmp / f"{name}.inter", field_header, list(zip(*all_rows)) or [[]] * len(header))
        if write_splits:
            for split, (_, rows) in zip(split_names, cleaned_parts):
                counts[split] = _write_inter(
                    tmp / f"{name}.{split}.inter", field_header, list(zip(*rows)) or [[]] * len(header)
                )
        else:
            for path, rows in cleaned_parts:
                info.setdefault("rows_per_file", {})[path.name] = len(rows)
        result = ConversionResult(name, "ctcvr", src, dst, None, None, counts, {}, info)
        result.seconds = time.perf_counter() - started
        _write_json(tmp / f"{name}.convert.json", result.to_dict())
    return result


# --------------------------------------------------------------------------- funnel

CONVERSION_MIN_RATING = 4.0


def _read_rated_pairs(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user tokens, item tokens, ratings) of an atomic ``.inter`` with user_id, item_id, rating."""
    lines = _read_lines(path)
    try:
        _, header_line = next(lines)
    except StopIteration:
        raise ConvertError(f"{path}: empty file, expected a 'field:type' header line") from None
    names = [col.split(":")[0] for col in header_line.rstrip("\r\n").split("\t")]
    missing = [col for col in ("user_id", "item_id", "rating") if col not in names]
    if missing:
        raise ConvertError(f"{path}:1: header lacks {', '.join(missing)}; the funnel needs user_id, item_id and rating")
    u_col, i_col, r_col = (names.index(col) for col in ("user_id", "item_id", "rating"))
    users, items, ratings = [], [], []
    for lineno, line in lines:
        if not line.strip():
            continue
        fields = line.rstrip("\r\n").split("\t")
        try:
            users.append(fields[u_col])
            items.append(fields[i_col])
            ratings.append(float(fields[r_col]))
        except (IndexError, ValueError):
            raise _malformed(path, lineno, f"{len(names)} tab-separated fields with a numeric rating", line) from None
    if not users:
        raise ConvertError(f"{path}: no interactions found")
    return np.array(users), np.array(items), np.array(ratings)


def convert_funnel(
    src, dst, *, name: str | None = None, negatives: int = 2, valid_ratio: float = 0.1, seed: int = 2020
) -> ConversionResult:
    """A click -> conversion funnel derived from rated interactions (see the module docstring)."""
    started = time.perf_counter()
    src = _check_src_dir(src)
    path = _single_file(src, "*.inter", "funnel")
    if isinstance(negatives, bool) or not isinstance(negatives, int) or negatives < 1:
        raise ConvertError(f"negatives={negatives} must be a whole number >= 1 (sampled non-interactions per interaction)")
    ratio = _check_ratio(valid_ratio)
    dst, name = _prepare_dst(dst, name)
    users, items, ratings = _read_rated_pairs(path)
    pairs = set(zip(users.tolist(), items.tolist()))
    if len(pairs) != len(users):
        raise ConvertError(f"{path}: repeated user-item pairs; a funnel needs one rating per pair")
    catalogue = np.unique(items)
    rng = np.random.default_rng(seed)
    neg_users, neg_items = [], []
    order = np.argsort(users, kind="stable")
    bounds = np.flatnonzero(np.r_[True, users[order][1:] != users[order][:-1], True])
    for start, end in zip(bounds[:-1], bounds[1:]):
        user = users[order[start]]
        unseen = np.setdiff1d(catalogue, items[order[start:end]], assume_unique=True)
        count = min(negatives * (end - start), unseen.size)
        neg_users.extend([user] * count)
        neg_items.extend(rng.choice(unseen, size=count, replace=False).tolist())
    all_users = np.concatenate([users, np.array(neg_users, dtype=users.dtype)])
    all_items = np.concatenate([items, np.array(neg_items, dtype=items.dtype)])
    click = np.r_[np.ones(len(users), dtype=np.int64), np.zeros(len(neg_users), dtype=np.int64)]
    conversion = np.r_[(ratings >= CONVERSION_MIN_RATING).astype(np.int64), np.zeros(len(neg_users), dtype=np.int64)]
    # random split of the exposures: one uniform key per row, fixed by the seed
    keys = rng.random(all_users.size)
    split_of = np.where(keys < ratio, "valid", np.where(keys < 2 * ratio, "test", "train"))
    header = ["user_id:token", "item_id:token", "click:float", "conversion:float"]
    counts, labels = {}, {}
    with _atomic_dir(dst) as tmp:
        for split in ("train", "valid", "test"):
            rows = np.flatnonzero(split_of == split)
            counts[split] = _write_inter(
                tmp / f"{name}.{split}.inter", header,
                [all_users[rows].tolist(), all_items[rows].tolist(), click[rows].tolist(), conversion[rows].tolist()],
            )
        copied = []
        for suffix in ("user", "item"):
            side = sorted(src.glob(f"*.{suffix}"))
            if len(side) == 1:
                shutil.copyfile(side[0], tmp / f"{name}.{suffix}")
                copied.append(side[0].name)
        labels = {"click": int(click.sum()), "conversion": int(conversion.sum())}
        info = {
            "source_files": {"inter": path.name, "features": copied},
            "derived": True,
            "negatives": negatives,
            "seed": seed,
            "valid_ratio": ratio,
            "interactions": int(len(users)),
            "exposures": int(all_users.size),
            "labels": labels,
            "label_fields": ["click", "conversion"],
            "notes": [
                "DERIVED funnel, not logged exposures: exposures = interactions + sampled non-interactions",
                f"click = interacted; conversion = rating >= {CONVERSION_MIN_RATING:g}; rating not written",
            ],
        }
        result = ConversionResult(
            name, "funnel", src, dst, int(np.unique(users).size), int(catalogue.size), counts, {}, info
        )
        result.seconds = time.perf_counter() - started
        _write_json(tmp / f"{name}.convert.json", result.to_dict())
    return result


# --------------------------------------------------------------------------- dispatch

FORMATS: dict[str, tuple[Callable[..., ConversionResult], str]] = {
    "lightgcn": (convert_lightgcn, "train.txt/test.txt[/valid.txt], 'user item item ...' per line (yelp2018, tiktok)"),
    "lastfm": (convert_lastfm, "data1.txt (train) + test1.txt (test), 'user item weight' per line (lastfm)"),
    "s3rec": (convert_s3rec, "one *.txt of chronological 'user item item ...' sequences (beauty)"),
    "unisrec": (convert_unisrec, "P.{train,valid,test}.inter + P.text atomic files (scientific)"),
    "seqsplit": (convert_seqsplit, "train.txt/valid.txt/test.txt as sequences + *.npy item features (tiktok, for TransRec)"),
    "ctcvr": (convert_ctcvr, "click/conversion CSV file(s) (ali-ccp-sample, aliexpress-sample)"),
    "funnel": (convert_funnel, "a rated .inter (RecBole's ml-100k): DERIVED click/conversion funnel"),
}
_SPLIT_FORMATS = ("lightgcn", "lastfm")


def convert_dataset(
    fmt: str,
    src,
    dst,
    *,
    name: str | None = None,
    valid_ratio: float = 0.1,
    seed: int = 2020,
    keep_unseen: bool = False,
    negatives: int = 2,
) -> ConversionResult:
    """Convert ``src`` in format ``fmt`` (a key of :data:`FORMATS`) into the dataset folder ``dst``."""
    if fmt not in FORMATS:
        raise ConvertError(f"unknown format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    func = FORMATS[fmt][0]
    if fmt == "funnel":
        return func(src, dst, name=name, negatives=negatives, valid_ratio=valid_ratio, seed=seed)
    if fmt in _SPLIT_FORMATS:
        return func(src, dst, name=name, valid_ratio=valid_ratio, seed=seed, keep_unseen=keep_unseen)
    if fmt == "seqsplit":
        return func(src, dst, name=name, seed=seed, keep_unseen=keep_unseen)
    return func(src, dst, name=name)
