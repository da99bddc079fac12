"""The registry of formats and options, ``convert_dataset``, and the help text and markdown
generated from them (the command line and docs/datasets.md both come from here)."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from recbole_compress.data.convert import ctcvr, funnel, lastfm, lightgcn, s3rec, seqsplit, unisrec
from recbole_compress.data.convert.common import (
    DEFAULT_NEGATIVES,
    DEFAULT_SEED,
    DEFAULT_VALID_RATIO,
    ConversionResult,
    ConvertError,
    Format,
)

FORMATS: dict[str, Format] = {
    module.FORMAT.name: module.FORMAT for module in (lightgcn, lastfm, s3rec, unisrec, seqsplit, ctcvr, funnel)
}


@dataclass(frozen=True)
class Option:
    name: str  # keyword of convert_dataset
    flag: str  # command-line flag
    help: str
    type: type | None = None  # None: an on/off flag
    metavar: str | None = None


OPTIONS: dict[str, Option] = {
    option.name: option
    for option in (
        Option("valid_ratio", "--valid-ratio", "share of each user's train interactions carved into valid when the "
               f"source has none; funnel: share of exposures for valid and for test (default {DEFAULT_VALID_RATIO})",
               float, "RATIO"),
        Option("seed", "--seed", f"seed of the random steps (default {DEFAULT_SEED})", int, "SEED"),
        Option("negatives", "--negatives", "funnel: sampled non-interactions per interaction "
               f"(default {DEFAULT_NEGATIVES})", int, "N"),
        Option("keep_unseen", "--keep-unseen", "keep valid/test rows whose item or user never appears in train"),
        Option("keep_duplicates", "--keep-duplicates", "keep every copy of an interaction repeated inside a split"),
        Option("keep_overlap", "--keep-overlap", "keep valid rows also in train and test rows also in train or valid"),
    )
}

# the rules every converter follows, in the order they apply (shown in --help and docs/datasets.md)
RULES: tuple[tuple[str, str], ...] = (
    ("Names", "The files are named `NAME.<suffix>`, NAME defaulting to the last part of DST, so RecBole loads "
     "them with `data_path` = the parent of DST and `dataset` = NAME. Every file is tab-separated with a "
     "`field:type` header; raw ids are written as they are (RecBole remaps tokens)."),
    ("Duplicates", "In the formats that take `--keep-duplicates`, an interaction repeated inside one split "
     "(a user-item pair; for `unisrec` an identical row) is kept once, its first line; the other copies are "
     "dropped and counted (`train_duplicate`, ...). `--keep-duplicates` keeps them (counted under `kept`)."),
    ("Overlap", "In the formats that take `--keep-overlap`, a valid interaction that is also in train, and a "
     "test one also in train or valid, are dropped and counted (`valid_in_train`, `test_in_train`, "
     "`test_in_valid`): RecBole never ranks a user's train items, so such a test pair can never be hit, and "
     "a copy of a training interaction is no held-out data. `--keep-overlap` keeps them (counted under "
     "`kept`)."),
    ("Validation carve", "Without a validation file, valid is carved out of train: a user with n >= 5 train "
     "interactions gives max(1, floor(VALID_RATIO * n)) of them, drawn with `numpy.random.default_rng(SEED)` "
     "(one uniform key per train row in file order, each user's smallest keys move); a moved interaction whose "
     "item would vanish from train is put back. The result depends only on the source, VALID_RATIO and SEED."),
    ("Unseen", "Valid/test rows whose item or user never appears in the final train are dropped and counted "
     "(an ID model has no trained embedding for them) unless `--keep-unseen`."),
    ("Report", "Each conversion writes `NAME.convert.json` (source, format, options, rows per split, `dropped` "
     "and `kept` counts, the files it wrote) and prints one summary line; bad input prints one `error:` line "
     "naming the file and line, and writes nothing."),
    ("Output folder", "DST is built in a temporary sibling folder and renamed into place when complete: a "
     "failed, interrupted or terminated conversion leaves DST as it was, and the next conversion removes what "
     "a killed one left. An existing DST is replaced only when it holds an earlier conversion; files in it "
     "that the earlier conversion did not write (a yaml, notes) are kept. DST may not be a symbolic link, lie "
     "inside SRC or contain it."),
)


def convert_dataset(fmt: str, src, dst, *, name: str | None = None, **options) -> ConversionResult:
    """Convert ``src`` in format ``fmt`` (a key of :data:`FORMATS`) into the dataset folder ``dst``.

    ``options`` are keywords of :data:`OPTIONS` that the format takes (``None`` = its default),
    e.g. ``valid_ratio=0.1, seed=2020, keep_unseen=True``; one it does not take is an error.
    """
    if fmt not in FORMATS:
        raise ConvertError(f"unknown format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    record = FORMATS[fmt]
    # None (and False for an on/off flag) means "not given": the format's default
    given = {key: value for key, value in options.items() if value is not None and value is not False}
    for key in given:
        if key not in OPTIONS:
            raise ConvertError(f"unknown option '{key}'; the options are: {', '.join(OPTIONS)}")
        if key not in record.options:
            takes = ", ".join(OPTIONS[k].flag for k in record.options) or "no options besides --name"
            raise ConvertError(f"format {fmt} does not use {OPTIONS[key].flag}; it takes {takes}")
    return record.convert(src, dst, name=name, **given)


# --------------------------------------------------------------------------- help and docs


def _plain(text: str) -> str:
    return text.replace("`", "")


def formats_help(details: bool = False, width: int = 88) -> str:
    """The formats and rules as plain text (the argparse epilog; ``--list`` adds the details)."""

    def wrap(text: str, first: str, rest: str) -> list[str]:
        return textwrap.wrap(_plain(text), width, initial_indent=first, subsequent_indent=rest,
                             break_on_hyphens=False)

    def block(label: str, text: str) -> list[str]:
        return wrap(text, f"  {label:8s} ", " " * 11)

    lines = ["formats (FORMAT SRC DST):"]
    for record in FORMATS.values():
        lines += wrap(f"{record.summary}; e.g. {record.example}", f"{record.name}: ", "    ")
        lines += block("reads", record.reads) + block("writes", record.writes)
        flags = ", ".join(OPTIONS[k].flag for k in record.options) or "none besides --name"
        lines += block("options", flags)
        if details:
            lines += block("details", record.details)
    lines.append("")
    lines.append("rules:")
    for title, text in RULES:
        lines += wrap(text, f"  {title}: ", "    ")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def formats_markdown() -> str:
    """The formats as a markdown table (the block between the formats markers of docs/datasets.md)."""
    rows = ["| format | example source | what it reads | what it writes |", "|---|---|---|---|"]
    for record in FORMATS.values():
        rows.append(
            f"| `{record.name}` | {_cell(record.example)} | {_cell(record.reads)} | {_cell(record.writes)} |"
        )
    return "\n".join(rows) + "\n"


def formats_details_markdown() -> str:
    """Each format's summary, options and details, then the rules (the details block of docs/datasets.md)."""
    out = []
    for record in FORMATS.values():
        flags = ", ".join(f"`{OPTIONS[k].flag}`" for k in record.options) or "none besides `--name`"
        out.append(f"### `{record.name}`: {record.summary}\n\n{record.details}\n\nOptions: {flags}.\n")
    out.append("### Rules every conversion follows\n")
    out += [f"- **{title}.** {text}" for title, text in RULES]
    out.append("\n### Options\n")
    out += [f"- `{option.flag}`: {option.help}" for option in OPTIONS.values()]
    return "\n".join(out) + "\n"
