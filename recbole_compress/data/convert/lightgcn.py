"""``lightgcn``: the LightGCN/NGCF text format (yelp2018, tiktok) as interaction splits."""

from __future__ import annotations

import time

from recbole_compress.data.convert.common import (
    DEFAULT_SEED,
    DEFAULT_VALID_RATIO,
    ConversionResult,
    Format,
    check_ratio,
    check_seed,
    check_source,
    reports_os_errors,
    require_dir,
    require_file,
)
from recbole_compress.data.convert.output import prepare_destination


@reports_os_errors
def convert_lightgcn(
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
    """``train.txt``, ``test.txt`` and optional ``valid.txt`` -> ``{name}.{train,valid,test}.inter``."""
    from recbole_compress.data.convert.splits import interaction_conversion, read_user_item_lines

    started = time.perf_counter()
    src = require_dir(check_source(src))
    valid_ratio, seed = check_ratio(valid_ratio), check_seed(seed)
    dest = prepare_destination(dst, name, src)
    files = {"train": require_file(src, "train.txt", "lightgcn"), "test": require_file(src, "test.txt", "lightgcn")}
    if (src / "valid.txt").is_file():
        files["valid"] = src / "valid.txt"
    splits = {key: read_user_item_lines(path) for key, path in files.items()}
    return interaction_conversion(
        "lightgcn", src, dest, splits, {k: p.name for k, p in files.items()},
        valid_ratio=valid_ratio, seed=seed, keep_unseen=keep_unseen, keep_duplicates=keep_duplicates,
        keep_overlap=keep_overlap, extra_field=None, started=started,
    )


FORMAT = Format(
    name="lightgcn",
    summary="LightGCN/NGCF user lines (yelp2018, tiktok) as train/valid/test interactions",
    example="path/to/yelp2018",
    reads="`train.txt`, `test.txt`, optional `valid.txt`: one line per user, `user item item ...`, "
    "non-negative integer ids",
    writes="`NAME.{train,valid,test}.inter` (`user_id`, `item_id`)",
    details="Without `valid.txt`, valid is carved from train. Duplicates, overlap and unseen users/items "
    "follow the shared rules.",
    convert=convert_lightgcn,
    options=("valid_ratio", "seed", "keep_unseen", "keep_duplicates", "keep_overlap"),
)
