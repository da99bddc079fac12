"""What every converter shares: the error, the result, the format record, option checks,
source checks, line readers and file writers.

Nothing here imports numpy: the command line lists the formats without loading it.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from recbole_compress.errors import UserError

DEFAULT_VALID_RATIO = 0.1
DEFAULT_SEED = 2020
DEFAULT_NEGATIVES = 2


class ConvertError(UserError):
    """Bad conversion input: a missing folder or file, a malformed line, a bad option."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))  # always one line


@dataclass(frozen=True)
class Format:
    """One source format, documented once: the command-line help and docs/datasets.md come from it."""

    name: str
    summary: str  # one line
    example: str  # an example source, e.g. ``path/to/yelp2018``
    reads: str  # the files it reads (markdown)
    writes: str  # the files it writes (markdown)
    details: str  # the rest of the description (markdown)
    convert: Callable[..., "ConversionResult"]
    options: tuple[str, ...] = ()  # option names it takes besides ``name`` (see formats.OPTIONS)


@dataclass
class ConversionResult:
    """What a conversion wrote; ``summary()`` is the command line's one-line report."""

    name: str
    format: str
    src: Path
    dst: Path
    n_users: int | None
    n_items: int | None
    splits: dict[str, int]  # rows per written split (inter file)
    dropped: dict[str, int] = field(default_factory=dict)  # rows removed, by reason
    info: dict = field(default_factory=dict)
    seconds: float = 0.0
    kept: dict[str, int] = field(default_factory=dict)  # flagged rows kept (duplicates, overlap), by reason

    @property
    def n_dropped(self) -> int:
        return int(sum(self.dropped.values()))

    @property
    def n_kept(self) -> int:
        return int(sum(self.kept.values()))

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
            parts.append(_counted("dropped", self.n_dropped, self.dropped))
        if self.n_kept:
            parts.append(_counted("kept flagged", self.n_kept, self.kept))
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
            "kept": dict(self.kept),
            **self.info,
        }


def _counted(verb: str, total: int, by_reason: dict[str, int]) -> str:
    detail = ", ".join(f"{k} {v}" for k, v in by_reason.items() if v)
    return f"{verb} {total} rows" + (f" ({detail})" if detail else "") + ";"


def reports_os_errors(func):
    """Turn an ``OSError`` (unreadable file, full disk) into a one-line :class:`ConvertError`."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except OSError as err:
            where = f"'{err.filename}': " if err.filename else ""
            reason = err.strerror or " ".join(str(err).split())
            raise ConvertError(f"{where}{reason}; check the path, its permissions and the free disk space") from None

    return wrapper


# --------------------------------------------------------------------------- options


def check_ratio(valid_ratio) -> float:
    try:
        ratio = float(valid_ratio)
    except (TypeError, ValueError):
        raise ConvertError(f"--valid-ratio must be a number in (0, 1), got {valid_ratio!r}") from None
    if math.isnan(ratio) or not 0.0 < ratio < 1.0:
        raise ConvertError(f"--valid-ratio must be in (0, 1), got {valid_ratio!r}")
    return ratio


def check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConvertError(f"--seed must be a whole number >= 0, got {seed!r}")
    return seed


def check_negatives(negatives) -> int:
    if isinstance(negatives, bool) or not isinstance(negatives, int) or negatives < 1:
        raise ConvertError(
            f"negatives={negatives!r} must be a whole number >= 1 (sampled non-interactions per interaction)"
        )
    return negatives


# --------------------------------------------------------------------------- sources


def check_source(src) -> Path:
    """The resolved source path; it must exist and be readable."""
    path = Path(src).expanduser()
    if not path.exists():
        raise ConvertError(f"source '{src}' does not exist; give the dataset folder, e.g. path/to/lastfm")
    path = path.resolve()
    if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
        raise ConvertError(f"source '{path}' is not readable; check its permissions")
    return path


def require_dir(src: Path) -> Path:
    if not src.is_dir():
        raise ConvertError(f"source '{src}' is not a folder; give the dataset folder")
    return src


def require_file(folder: Path, filename: str, fmt: str) -> Path:
    path = folder / filename
    if not path.is_file():
        raise ConvertError(f"expected file '{filename}' not found in '{folder}' (format {fmt})")
    return path


def single_file(src: Path, pattern: str, fmt: str) -> Path:
    """``src`` itself when it is a file, else the one file in it matching ``pattern``."""
    if src.is_file():
        return src
    found = sorted(p for p in src.glob(pattern) if p.is_file())
    if not found:
        raise ConvertError(f"expected one '{pattern}' file in '{src}' (format {fmt}), found none")
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise ConvertError(f"expected one '{pattern}' file in '{src}' (format {fmt}), found {len(found)}: {names}")
    return found[0]


# --------------------------------------------------------------------------- reading


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a UTF-8 text file; decoding and I/O errors are one-line errors."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            yield from enumerate(handle, 1)
    except UnicodeDecodeError as err:
        raise ConvertError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise ConvertError(f"{path}: cannot read ({err.strerror or err}); check its permissions") from None


def malformed(path: Path, lineno: int, expected: str, line: str) -> ConvertError:
    shown = line.strip()
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return ConvertError(f"{path}:{lineno}: malformed line, expected {expected}, got {shown!r}")


_ID_LINE_RE = re.compile(r"^\s*\d+(?:[ \t]+\d+)*\s*$", re.ASCII)


def read_user_lines(path: Path) -> Iterator[tuple[int, list[int]]]:
    """``(user, items)`` of ``user item item ...`` lines: non-negative integer
    ids, one line per user, blank lines skipped; anything else is a one-line error."""
    seen: dict[int, int] = {}
    for lineno, line in read_lines(path):
        if not line.strip():
            continue
        if not _ID_LINE_RE.match(line):
            raise malformed(path, lineno, "'user item item ...' with non-negative integer ids", line)
        user, *items = (int(tok) for tok in line.split())
        if user in seen:
            raise ConvertError(
                f"{path}:{lineno}: malformed file, user {user} already has a line ({seen[user]}); "
                "expected one line per user"
            )
        seen[user] = lineno
        yield user, items


MAX_ID = 2**63 - 1  # ids become numpy int64


def check_ids(ids: list[int], path: Path, lineno: int, line: str) -> None:
    """Refuse ids numpy's int64 cannot hold (one max per line: cheap on 1.5M ids)."""
    if ids and max(ids) > MAX_ID:
        raise malformed(path, lineno, f"ids up to {MAX_ID}", line)


# --------------------------------------------------------------------------- writing


def write_inter(path: Path, header: list[str], columns: list) -> int:
    """Write a tab-separated atomic file from equally long columns; return the row count."""
    rows = len(columns[0]) if columns else 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write("\t".join(header) + "\n")
        chunk = 200_000
        for start in range(0, rows, chunk):
            cols = [c[start : start + chunk] for c in columns]
            out.write("".join("\t".join(map(str, row)) + "\n" for row in zip(*cols)))
    return rows


def write_json(path: Path, payload: dict) -> None:
    with open(path, "w", encoding="utf-8") as out:
        json.dump(payload, out, indent=2, sort_keys=False)
        out.write("\n")


def finish(staging: Path, result: ConversionResult, started: float) -> ConversionResult:
    """Write ``{name}.convert.json`` last, listing every file of the conversion (so a later
    conversion into the same folder knows which files are its own and which are the user's)."""
    report = f"{result.name}.convert.json"
    result.info["files"] = sorted({p.name for p in staging.iterdir()} | {report})
    result.seconds = time.perf_counter() - started
    write_json(staging / report, result.to_dict())
    return result
