"""``funnel``: a DERIVED click -> conversion funnel from rated interactions (RecBole's ml-100k)."""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

from recbole_compress.data.convert.common import (
    DEFAULT_NEGATIVES,
    DEFAULT_SEED,
    DEFAULT_VALID_RATIO,
    ConversionResult,
    ConvertError,
    Format,
    check_negatives,
    check_ratio,
    check_seed,
    check_source,
    finish,
    malformed,
    read_lines,
    reports_os_errors,
    single_file,
    write_inter,
)
from recbole_compress.data.convert.output import prepare_destination, staged_output

CONVERSION_MIN_RATING = 4.0


def _read_rated_pairs(path: Path) -> tuple[list[str], list[str], list[float]]:
    """(user tokens, item tokens, ratings) of an atomic ``.inter`` with user_id, item_id, rating."""
    lines = read_lines(path)
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
    first_line: dict[tuple[str, str], int] = {}
    for lineno, line in lines:
        if not line.strip():
            continue
        fields = line.rstrip("\r\n").split("\t")
        try:
            user, item, rating = fields[u_col], fields[i_col], float(fields[r_col])
        except (IndexError, ValueError):
            rating = math.nan
        if not math.isfinite(rating):
            raise malformed(path, lineno, f"{len(names)} tab-separated fields with a numeric rating", line)
        if (user, item) in first_line:
            raise ConvertError(
                f"{path}:{lineno}: user {user} already rated item {item} on line {first_line[(user, item)]}; "
                "a funnel needs one rating per user-item pair, remove the repeats"
            )
        first_line[(user, item)] = lineno
        users.append(user)
        items.append(item)
        ratings.append(rating)
    if not users:
        raise ConvertError(f"{path}: no interactions found")
    return users, items, ratings


@reports_os_errors
def convert_funnel(
    src,
    dst,
    *,
    name: str | None = None,
    negatives: int = DEFAULT_NEGATIVES,
    valid_ratio: float = DEFAULT_VALID_RATIO,
    seed: int = DEFAULT_SEED,
) -> ConversionResult:
    """A rated ``*.inter`` -> ``{name}.{train,valid,test}.inter`` with click and conversion labels."""
    import numpy as np

    started = time.perf_counter()
    src = check_source(src)
    path = single_file(src, "*.inter", "funnel")
    negatives, ratio, seed = check_negatives(negatives), check_ratio(valid_ratio), check_seed(seed)
    dest = prepare_destination(dst, name, src)
    raw_users, raw_items, raw_ratings = _read_rated_pairs(path)
    users, items, ratings = np.array(raw_users), np.array(raw_items), np.array(raw_ratings)
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
    counts = {}
    with staged_output(dest) as staging:
        for split in ("train", "valid", "test"):
            rows = np.flatnonzero(split_of == split)
            counts[split] = write_inter(
                staging / f"{dest.name}.{split}.inter", header,
                [all_users[rows].tolist(), all_items[rows].tolist(), click[rows].tolist(), conversion[rows].tolist()],
            )
        copied = []
        if src.is_dir():
            for suffix in ("user", "item"):
                side = sorted(src.glob(f"*.{suffix}"))
                if len(side) == 1:
                    shutil.copyfile(side[0], staging / f"{dest.name}.{suffix}")
                    copied.append(side[0].name)
        info = {
            "source_files": {"inter": path.name, "features": copied},
            "derived": True,
            "negatives": negatives,
            "seed": seed,
            "valid_ratio": ratio,
            "interactions": int(len(users)),
            "exposures": int(all_users.size),
            "labels": {"click": int(click.sum()), "conversion": int(conversion.sum())},
            "label_fields": ["click", "conversion"],
            "notes": [
                "DERIVED funnel, not logged exposures: exposures = interactions + sampled non-interactions",
                f"click = interacted; conversion = rating >= {CONVERSION_MIN_RATING:g}; rating not written",
            ],
        }
        result = ConversionResult(
            dest.name, "funnel", src, dest.path, int(np.unique(users).size), int(catalogue.size), counts, {}, info
        )
        return finish(staging, result, started)


FORMAT = Format(
    name="funnel",
    summary="a DERIVED click -> conversion funnel from rated interactions (RecBole's ml-100k)",
    example="RecBole's `dataset_example/ml-100k` (inside the installed `recbole` package)",
    reads="the single `*.inter` with `user_id`, `item_id` and `rating` (one rating per pair); "
    "optional `*.user`, `*.item`",
    writes="`NAME.{train,valid,test}.inter` (`user_id`, `item_id`, `click`, `conversion`), `NAME.user`, `NAME.item`",
    details="Derived, not logged exposures: exposures = every interaction plus NEGATIVES times as many sampled "
    "non-interactions per user (uniform over the items the user never rated, without replacement, capped by "
    "their number, `numpy.random.default_rng(seed)`); `click` = the pair was interacted, `conversion` = the "
    f"rating is >= {CONVERSION_MIN_RATING:g} (0 for non-clicks). The rating itself is not written (it would "
    "leak the label). Exposures are split at random into train/valid/test, VALID_RATIO each for valid and test.",
    convert=convert_funnel,
    options=("negatives", "valid_ratio", "seed"),
)
