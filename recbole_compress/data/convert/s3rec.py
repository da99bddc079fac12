"""``s3rec``: S3Rec's chronological sequences (beauty) for sequential models."""

from __future__ import annotations

import time

from recbole_compress.data.convert.common import (
    ConversionResult,
    ConvertError,
    Format,
    check_source,
    finish,
    read_user_lines,
    reports_os_errors,
    single_file,
    write_inter,
)
from recbole_compress.data.convert.output import prepare_destination, staged_output


@reports_os_errors
def convert_s3rec(src, dst, *, name: str | None = None) -> ConversionResult:
    """One ``*.txt`` of ``user item item ...`` lines in chronological order -> ``{name}.inter``."""
    started = time.perf_counter()
    src = check_source(src)
    path = single_file(src, "*.txt", "s3rec")
    dest = prepare_destination(dst, name, src)
    users: list[int] = []
    items: list[int] = []
    positions: list[int] = []
    repeated = 0
    for user, seq in read_user_lines(path):
        repeated += len(seq) - len(set(seq))
        users.extend([user] * len(seq))
        items.extend(seq)
        positions.extend(range(len(seq)))
    if not items:
        raise ConvertError(f"{path}: no sequences found; expected 'user item item ...' lines")
    info = {
        "source_files": {"sequences": path.name},
        "interactions": len(items),
        "notes": [
            "timestamp = position of the item in the user's chronological sequence (0, 1, 2, ...)",
            "an item a user consumes again later is a new event: kept, counted as 'repeated_item'",
        ],
    }
    with staged_output(dest) as staging:
        rows = write_inter(
            staging / f"{dest.name}.inter", ["user_id:token", "item_id:token", "timestamp:float"],
            [users, items, positions],
        )
        result = ConversionResult(
            dest.name, "s3rec", src, dest.path, len(set(users)), len(set(items)), {"inter": rows}, {}, info,
            kept={"repeated_item": repeated},
        )
        return finish(staging, result, started)


FORMAT = Format(
    name="s3rec",
    summary="S3Rec chronological sequences (beauty) for sequential models",
    example="path/to/beauty",
    reads="the single `*.txt` in SRC (or SRC itself): `user item item ...` in chronological order, "
    "one line per user",
    writes="`NAME.inter` (`user_id`, `item_id`, `timestamp` = position 0, 1, 2, ... in the user's sequence)",
    details="With RecBole's leave-one-out split (`eval_args: {split: {LS: valid_and_test}, order: TO}`) the "
    "last item of a sequence is the test target and the second last the valid one. An item a user consumes "
    "again later is a new event: kept, counted as `repeated_item`.",
    convert=convert_s3rec,
)
