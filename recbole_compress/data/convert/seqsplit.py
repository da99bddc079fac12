"""``seqsplit``: LightGCN-format splits with item features (tiktok) as sequences, for TransRec."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from recbole_compress.data.convert.common import (
    DEFAULT_SEED,
    ConversionResult,
    ConvertError,
    Format,
    check_seed,
    check_source,
    finish,
    reports_os_errors,
    require_dir,
    require_file,
    write_inter,
)
from recbole_compress.data.convert.output import prepare_destination, staged_output
from recbole_compress.data.convert.unisrec import SEQ_HEADER

SEQ_MAX_HISTORY = 50


def _check_feature_file(path: Path) -> None:
    """A plain 2-D numeric ``.npy`` matrix (memory-mapped to read its header; never unpickled)."""
    import numpy as np

    try:
        matrix = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, EOFError):
        raise ConvertError(f"{path}: not a numeric .npy matrix; save it with numpy.save (row r = item r)") from None
    if matrix.ndim != 2 or matrix.dtype.kind not in "fiu":
        raise ConvertError(
            f"{path}: expected a 2-D numeric matrix (row r = item r), got shape {matrix.shape}, dtype {matrix.dtype}"
        )


@reports_os_errors
def convert_seqsplit(
    src,
    dst,
    *,
    name: str | None = None,
    seed: int = DEFAULT_SEED,
    keep_unseen: bool = False,
    keep_duplicates: bool = False,
    keep_overlap: bool = False,
) -> ConversionResult:
    """``train.txt``/``valid.txt``/``test.txt`` + ``*.npy`` -> sequential ``{name}.*.inter`` and ``{name}.X.npy``."""
    import numpy as np

    from recbole_compress.data.convert.splits import clean_pairs, drop_unseen, read_user_item_lines

    started = time.perf_counter()
    src = require_dir(check_source(src))
    seed = check_seed(seed)
    dest = prepare_destination(dst, name, src)
    files = {key: require_file(src, f"{key}.txt", "seqsplit") for key in ("train", "test", "valid")}
    splits = {key: read_user_item_lines(path) for key, path in files.items()}
    for key, part in splits.items():
        if len(part) == 0:
            raise ConvertError(f"{files[key]}: no interactions found; expected 'user item item ...' lines")
    features = sorted(p for p in src.glob("*.npy") if p.is_file())
    for path in features:
        _check_feature_file(path)
    splits = {key: splits[key] for key in ("train", "valid", "test")}
    splits, dropped, kept, notes = clean_pairs(splits, keep_duplicates=keep_duplicates, keep_overlap=keep_overlap)
    splits, unseen = drop_unseen(splits, keep_unseen)
    dropped.update(unseen)
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
        "drops_duplicates": not keep_duplicates,
        "drops_overlap": not keep_overlap,
        "notes": [
            "no timestamps in the source: each user's train items in a random order (numpy.random.default_rng(seed)); "
            "valid rows: train history -> each valid item; test rows: train + valid history -> each test item",
            "feature files copied as {name}.<feature>.npy, row r = item token r",
            "a user with one train item and no valid/test item has nothing to predict: no row "
            "(train_single_item_users)",
            *notes,
        ],
    }
    counts = {}
    with staged_output(dest) as staging:
        for key, rows in all_rows.items():
            counts[key] = write_inter(staging / f"{dest.name}.{key}.inter", SEQ_HEADER, list(zip(*rows)) or [[], [], []])
        for path in features:
            feature = path.stem.removesuffix("_feat")
            shutil.copyfile(path, staging / f"{dest.name}.{feature}.npy")
        result = ConversionResult(
            dest.name, "seqsplit", src, dest.path, len(users), len(items), counts, dropped, info, kept=kept
        )
        return finish(staging, result, started)


FORMAT = Format(
    name="seqsplit",
    summary="LightGCN-format splits with item features (tiktok) as sequences, for TransRec",
    example="path/to/tiktok",
    reads="`train.txt`, `valid.txt`, `test.txt` (lightgcn lines) and `*.npy` item features "
    "(`X_feat.npy` or `X.npy`: row r = item r)",
    writes="`NAME.{train,valid,test}.inter` (`user_id`, `item_id_list`, `item_id`), `NAME.X.npy`",
    details="The source has no timestamps (each line lists a user's items in ascending id order), so each "
    "user's train items are put in a random order (`numpy.random.default_rng(seed)`, one permutation per user "
    "in file order): train rows predict each item from the ones before it, valid rows each valid item from "
    "the whole train history, test rows each test item from train + valid history; histories keep the last "
    f"{SEQ_MAX_HISTORY} items. The items of each split are the source's, cleaned like `lightgcn`. A user with "
    "one train item and no valid/test item has nothing to predict and leaves no row.",
    convert=convert_seqsplit,
    options=("seed", "keep_unseen", "keep_duplicates", "keep_overlap"),
)
