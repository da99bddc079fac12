"""``lastfm``: Last.fm from the LightGCN repository (``user item weight`` triples)."""

from __future__ import annotations

import math
import time
from pathlib import Path

from recbole_compress.data.convert.common import (
    DEFAULT_SEED,
    DEFAULT_VALID_RATIO,
    ConversionResult,
    Format,
    MAX_ID,
    check_ratio,
    check_seed,
    check_source,
    malformed,
    read_lines,
    reports_os_errors,
    require_dir,
    require_file,
)
from recbole_compress.data.convert.output import prepare_destination


def _read_triples(path: Path):
    """Read ``user item weight`` lines (integer ids, numeric weight) into a ``Split``."""
    import numpy as np

    from recbole_compress.data.convert.splits import Split

    users: list[int] = []
    items: list[int] = []
    weights: list[str] = []
    for lineno, line in read_lines(path):
        toks = line.split()
        if not toks:
            continue
        ok = len(toks) == 3 and all(t.isascii() and t.isdigit() and int(t) <= MAX_ID for t in toks[:2])
        if ok:
            try:
                ok = math.isfinite(float(toks[2]))
            except ValueError:
                ok = False
        if not ok:
            raise malformed(path, lineno, "'user item weight' (integer ids, numeric weight)", line)
        users.append(int(toks[0]))
        items.append(int(toks[1]))
        weights.append(toks[2])
    return Split(np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64), np.asarray(weights, dtype=object))


@reports_os_errors
def convert_lastfm(
    src,
    dst,
    *,
    name: str | None = None,
    valid_ratio: float = DEFAULT_VALID_RATIO,
    seed: int = DEFAULT_SEED,
    keep_unseen: bool = False,
    keep_duplicates: bool = False,
    keep_overlap: bool = False,
) -> ConversionResult:
    """``data1.txt`` (train), ``test1.txt`` (test) -> ``{name}.{train,valid,test}.inter`` with weights."""
    from recbole_compress.data.convert.splits import interaction_conversion

    started = time.perf_counter()
    src = require_dir(check_source(src))
    valid_ratio, seed = check_ratio(valid_ratio), check_seed(seed)
    dest = prepare_destination(dst, name, src)
    files = {"train": require_file(src, "data1.txt", "lastfm"), "test": require_file(src, "test1.txt", "lastfm")}
    splits = {key: _read_triples(path) for key, path in files.items()}
    return interaction_conversion(
        "lastfm", src, dest, splits, {k: p.name for k, p in files.items()},
        valid_ratio=valid_ratio, seed=seed, keep_unseen=keep_unseen, keep_duplicates=keep_duplicates,
        keep_overlap=keep_overlap, extra_field="weight", started=started,
    )


FORMAT = Format(
    name="lastfm",
    summary="Last.fm from the LightGCN repository: `user item weight` triples",
    example="path/to/lastfm",
    reads="`data1.txt` (train), `test1.txt` (test): `user item weight` per line, integer ids",
    writes="`NAME.{train,valid,test}.inter` (`user_id`, `item_id`, `weight`)",
    details="Valid is carved from train. A user-item pair repeated with another weight is still a duplicate; "
    "the first line (and its weight) is kept.",
    convert=convert_lastfm,
    options=("valid_ratio", "seed", "keep_unseen", "keep_duplicates", "keep_overlap"),
)
