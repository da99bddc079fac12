"""``ctcvr``: click/conversion CSV logs (ali-ccp-sample, aliexpress-sample)."""

from __future__ import annotations

import csv
import math
import re
import time
from pathlib import Path

from recbole_compress.data.convert.common import (
    ConversionResult,
    ConvertError,
    Format,
    check_source,
    finish,
    reports_os_errors,
    write_inter,
)
from recbole_compress.data.convert.output import prepare_destination, staged_output

LABEL_COLUMNS = ("click", "purchase", "conversion")
_FLOAT_FEATURE_RE = re.compile(r"^(D\d|numerical)")
_WS_RE = re.compile(r"\s+")


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


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(raw header, (line number, fields) rows); a UTF-8 byte-order mark (Excel) is skipped."""
    rows: list[tuple[int, list[str]]] = []
    header = None
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            for row in reader:
                if header is None:
                    header = row
                    continue
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) != len(header):
                    raise ConvertError(
                        f"{path}:{reader.line_num}: malformed line, expected {len(header)} "
                        f"comma-separated fields, got {len(row)}"
                    )
                rows.append((reader.line_num, row))
    except UnicodeDecodeError as err:
        raise ConvertError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except csv.Error as err:
        raise ConvertError(f"{path}: malformed CSV ({err})") from None
    if header is None:
        raise ConvertError(f"{path}: empty CSV file, expected a header line")
    return header, rows


def _kinds(header: list[str], path: Path) -> dict[str, str]:
    labels = [col for col in header if col.lower() in LABEL_COLUMNS]
    if not labels:
        raise ConvertError(f"{path}:1: no label column ({', '.join(LABEL_COLUMNS)}) in the header; not a ctcvr CSV")
    return {col: "label" if col in labels else "float" if _FLOAT_FEATURE_RE.match(col) else "token" for col in header}


def _clean_row(path: Path, lineno: int, row: list[str], header: list[str], kinds: dict[str, str]) -> list[str]:
    out = []
    for col, value in zip(header, row):
        kind = kinds[col]
        value = value.strip()
        if kind == "token":
            out.append(_WS_RE.sub("_", value))
            continue
        if not (value == "" and kind == "float"):
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                raise ConvertError(f"{path}:{lineno}: malformed line, column {col!r} needs a number, got {value!r}")
        out.append(value)
    return out


@reports_os_errors
def convert_ctcvr(src, dst, *, name: str | None = None) -> ConversionResult:
    """Click/conversion CSV file(s) -> ``{name}.inter`` (and per-split copies)."""
    started = time.perf_counter()
    src = check_source(src)
    if src.is_file():
        csv_files = [src]
    else:
        csv_files = [p for p in src.glob("*.csv") if p.is_file()]
        if not csv_files:
            raise ConvertError(f"expected '*.csv' file(s) in '{src}' (format ctcvr), found none")
    csv_files.sort(key=lambda p: (_csv_split(p)[0], p.name))
    dest = prepare_destination(dst, name, src)

    header: list[str] | None = None
    parts: list[tuple[Path, list[tuple[int, list[str]]]]] = []
    for path in csv_files:
        this_raw, rows = _read_csv(path)
        this_header = [_clean_field_name(col) for col in this_raw]
        if header is None:
            header, raw_header = this_header, this_raw
            if len(set(header)) != len(header) or any(not col for col in header):
                raise ConvertError(f"{path}:1: header has empty or repeated column names")
            kinds = _kinds(header, path)
        elif this_header != header:
            raise ConvertError(f"{path}:1: header differs from the header of {csv_files[0].name}")
        parts.append((path, rows))
    assert header is not None
    labels = [col for col in header if kinds[col] == "label"]
    cleaned_parts = [(path, [_clean_row(path, n, row, header, kinds) for n, row in rows]) for path, rows in parts]
    positives = {col: sum(float(row[header.index(col)]) > 0 for _, rows in cleaned_parts for row in rows)
                 for col in labels}

    field_header = [f"{col}:{'float' if kinds[col] in ('label', 'float') else 'token'}" for col in header]
    split_names = [_csv_split(path)[1] for path, _ in cleaned_parts]
    write_splits = len(cleaned_parts) > 1 and None not in split_names and len(set(split_names)) == len(split_names)
    all_rows = [row for _, rows in cleaned_parts for row in rows]
    if not all_rows:
        raise ConvertError(f"{csv_files[0]}: no data rows in the CSV file(s)")
    # exposure logs: identical rows are separate impressions, so they are counted, never dropped
    flagged: dict[str, int] = {}
    earlier: list[tuple[str, set]] = []
    for split, (path, rows) in zip(split_names, cleaned_parts):
        label = split or path.name
        tuples = [tuple(row) for row in rows]
        flagged[f"{label}_duplicate_row"] = len(tuples) - len(set(tuples))
        for other, other_rows in earlier:
            flagged[f"{label}_in_{other}"] = sum(row in other_rows for row in tuples)
        earlier.append((label, set(tuples)))
    info = {
        "source_files": [path.name for path, _ in cleaned_parts],
        "renamed_columns": {raw: col for raw, col in zip(raw_header, header) if raw != col},
        "label_fields": labels,
        "float_fields": [col for col in header if kinds[col] == "float"],
        "token_fields": [col for col in header if kinds[col] == "token"],
        "labels": positives,
        "notes": [
            "rows of all CSVs in train, valid, test order in {name}.inter"
            + ("; per-split copies in {name}.{split}.inter" if write_splits else ""),
            "exposure logs: identical rows are separate impressions, kept and counted under 'kept'",
        ],
    }
    counts: dict[str, int] = {}
    with staged_output(dest) as staging:
        counts["inter"] = write_inter(
            staging / f"{dest.name}.inter", field_header, list(zip(*all_rows)) or [[]] * len(header)
        )
        if write_splits:
            for split, (_, rows) in zip(split_names, cleaned_parts):
                counts[split] = write_inter(
                    staging / f"{dest.name}.{split}.inter", field_header, list(zip(*rows)) or [[]] * len(header)
                )
        else:
            info["rows_per_file"] = {path.name: len(rows) for path, rows in cleaned_parts}
        result = ConversionResult(dest.name, "ctcvr", src, dest.path, None, None, counts, {}, info, kept=flagged)
        return finish(staging, result, started)


FORMAT = Format(
    name="ctcvr",
    summary="click/conversion CSV logs (ali-ccp-sample, aliexpress-sample)",
    example="path/to/ali-ccp-sample",
    reads="the `*.csv` file(s) in SRC (or SRC itself) with a `click` and a `purchase` or `conversion` column",
    writes="`NAME.inter` with every column (train, valid, test rows) and, when the file names say "
    "`train`/`val`/`test`, `NAME.{train,valid,test}.inter`",
    details="Label columns (`click`, `purchase`, `conversion`) and numeric features (names starting with `D` "
    "and a digit, or with `numerical`) are `float`; every other column is a `token`, with runs of whitespace "
    "inside a value replaced by `_`. A column name starting with a digit gets an `f` prefix (`101` -> `f101`) "
    "because RecBole evaluates config values; the renaming is listed in `NAME.convert.json`. The rows are "
    "exposure logs: identical rows are separate impressions, kept and counted (`duplicate_row`, and across "
    "files `valid_in_train`, `test_in_train`, ...).",
    convert=convert_ctcvr,
)
