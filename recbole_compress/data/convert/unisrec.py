"""``unisrec``: UniSRec's atomic files with item text (scientific)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from recbole_compress.data.convert.common import (
    ConversionResult,
    ConvertError,
    Format,
    check_source,
    finish,
    malformed,
    read_lines,
    reports_os_errors,
    require_dir,
    require_file,
    write_inter,
)
from recbole_compress.data.convert.output import prepare_destination, staged_output

SEQ_HEADER = ["user_id:token", "item_id_list:token_seq", "item_id:token"]
TEXT_HEADER = ["item_id:token", "text:token_seq"]
Rows = list[tuple[int, list[str]]]  # (line number, fields)


def read_tsv(path: Path, header: list[str]) -> Rows:
    """Read a tab-separated atomic file with exactly ``header``."""
    rows: Rows = []
    width = len(header)
    header_seen = False
    for lineno, line in read_lines(path):
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
            raise malformed(path, lineno, f"{width} tab-separated fields ({', '.join(header)})", line)
        rows.append((lineno, fields))
    if not header_seen:
        raise ConvertError(f"{path}: empty file, expected the header {'|'.join(header)!r}")
    return rows


def _read_index_map(path: Path) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for lineno, line in read_lines(path):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise malformed(path, lineno, "'raw_id index'", line)
        mapping[fields[0]] = fields[1]
    return mapping


def _clean_rows(
    splits: dict[str, Rows], keep_duplicates: bool, keep_overlap: bool
) -> tuple[dict[str, Rows], dict[str, int], dict[str, int]]:
    """Identical rows inside a split are duplicates; identical rows of valid/test in an earlier split
    are overlap. A target the user had already consumed (same user and target, another history) is
    repeat consumption: kept and counted."""
    dropped, kept = {}, {}
    seen_rows: dict[str, set[tuple[str, ...]]] = {}
    seen_targets: set[tuple[str, str]] = set()
    out: dict[str, Rows] = {}
    for split, rows in splits.items():
        own: set[tuple[str, ...]] = set()
        clean: Rows = []
        counts = {"duplicate": 0, **{f"in_{other}": 0 for other in seen_rows}}
        repeats = 0
        for lineno, fields in rows:
            row = tuple(fields)
            earlier = next((other for other, rows_of in seen_rows.items() if row in rows_of), None)
            if earlier is not None:
                counts[f"in_{earlier}"] += 1
                if not keep_overlap:
                    continue
            elif row in own:
                counts["duplicate"] += 1
                if not keep_duplicates:
                    continue
            own.add(row)
            repeats += (fields[0], fields[2]) in seen_targets or fields[2] in fields[1].split()
            clean.append((lineno, fields))
        for reason, count in counts.items():
            flag = keep_duplicates if reason == "duplicate" else keep_overlap
            (kept if flag else dropped)[f"{split}_{reason}"] = count
        kept[f"{split}_repeat_target"] = int(repeats)
        seen_rows[split] = own
        seen_targets.update((fields[0], fields[2]) for _, fields in clean)
        out[split] = clean
    return out, dropped, kept


@reports_os_errors
def convert_unisrec(
    src, dst, *, name: str | None = None, keep_duplicates: bool = False, keep_overlap: bool = False
) -> ConversionResult:
    """``P.{train,valid,test}.inter`` and ``P.text`` -> the same files named ``{name}.*``."""
    started = time.perf_counter()
    src = require_dir(check_source(src))
    train_files = sorted(src.glob("*.train.inter"))
    if not train_files:
        raise ConvertError(f"expected file '*.train.inter' not found in '{src}' (format unisrec)")
    if len(train_files) > 1:
        raise ConvertError(
            f"found {len(train_files)} '*.train.inter' files in '{src}' ({', '.join(p.name for p in train_files)}); "
            "expected one dataset"
        )
    prefix = train_files[0].name[: -len(".train.inter")]
    files = {key: require_file(src, f"{prefix}.{key}.inter", "unisrec") for key in ("train", "valid", "test")}
    text_path = require_file(src, f"{prefix}.text", "unisrec")
    dest = prepare_destination(dst, name, src)

    splits = {key: read_tsv(path, SEQ_HEADER) for key, path in files.items()}
    for key, rows in splits.items():
        if not rows:
            raise ConvertError(f"{files[key]}: no rows after the header")
        for lineno, (_, _, target) in rows:
            if len(target.split()) != 1:
                raise malformed(files[key], lineno, "exactly one item token in the item_id field", target)
    splits, dropped, kept = _clean_rows(splits, keep_duplicates, keep_overlap)
    users: set[str] = set()
    items: set[str] = set()
    longest: dict[str, int] = {}
    for rows in splits.values():
        for _, (user, history, target) in rows:
            seq = history.split()
            users.add(user)
            items.update(seq)
            items.add(target)
            longest[user] = max(longest.get(user, 0), len(seq) + 1)

    text_rows = read_tsv(text_path, TEXT_HEADER)
    item_map_path = src / f"{prefix}.item2index"
    user_map_path = src / f"{prefix}.user2index"
    info: dict = {
        "source_files": {**{k: p.name for k, p in files.items()}, "text": text_path.name},
        "interactions": int(sum(longest.values())),
        "drops_duplicates": not keep_duplicates,
        "drops_overlap": not keep_overlap,
        "notes": [
            "inter files copied unchanged apart from the name; 'interactions' = sum over users of the "
            "longest history + 1 (the test row's sequence)",
            "identical rows inside a split: " + ("kept" if keep_duplicates else "the first kept, the others dropped"),
            "identical rows of valid/test also in an earlier split: " + ("kept" if keep_overlap else "dropped"),
            "a target the user consumed before (repeat consumption) is kept, counted as '<split>_repeat_target'",
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
            f"{dest.name}.text item ids were rewritten with {item_map_path.name} so they match the inter files"
        )
    else:
        info["text_item_ids"] = "raw source ids (no item2index map found)"
    text = [row for _, row in text_rows]
    info["text_rows"] = len(text)
    info["text_rows_without_index"] = dropped_text
    info["items_without_text"] = len(items - {row[0] for row in text})

    counts = {}
    with staged_output(dest) as staging:
        for key, rows in splits.items():
            cols = list(zip(*(fields for _, fields in rows))) or [[], [], []]
            counts[key] = write_inter(staging / f"{dest.name}.{key}.inter", SEQ_HEADER, cols)
        write_inter(staging / f"{dest.name}.text", TEXT_HEADER, list(zip(*text)) or [[], []])
        for path, suffix in ((item_map_path, "item2index"), (user_map_path, "user2index")):
            if path.is_file():
                shutil.copyfile(path, staging / f"{dest.name}.{suffix}")
        result = ConversionResult(
            dest.name, "unisrec", src, dest.path, len(users), len(items), counts, dropped, info, kept=kept
        )
        return finish(staging, result, started)


FORMAT = Format(
    name="unisrec",
    summary="UniSRec atomic files with item text (scientific)",
    example="path/to/scientific",
    reads="`P.{train,valid,test}.inter` (`user_id`, `item_id_list`, `item_id`), `P.text` (`item_id`, `text`), "
    "optional `P.item2index`, `P.user2index`",
    writes="`NAME.{train,valid,test}.inter` (rows as they are), `NAME.text`, `NAME.item2index`, `NAME.user2index`",
    details="`P.text` is keyed by the source's raw item ids (ASINs) and the inter files by the indices of "
    "`P.item2index`; when that map exists the ids of `NAME.text` are rewritten to those indices, so the text "
    "joins the inter files on `item_id`. Identical rows inside a split are duplicates and identical rows of "
    "valid/test in an earlier split are overlap (see the rules); a target the user consumed before (repeat "
    "consumption, another history) is kept and counted as `repeat_target`.",
    convert=convert_unisrec,
    options=("keep_duplicates", "keep_overlap"),
)
