"""The registry (recbole_compress.data.convert.formats): one record per format module, options
that the converters really take, and docs/datasets.md generated from it.

After changing a format's record, regenerate the page: ``python -m tests.data.convert.test_formats``.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys

import pytest

from recbole_compress.data.convert import (
    FORMATS,
    OPTIONS,
    ConvertError,
    convert_dataset,
    formats_details_markdown,
    formats_help,
    formats_markdown,
)
from tests.conftest import REPO

DOC = REPO / "docs" / "datasets.md"
BLOCKS = {"formats": formats_markdown, "details": formats_details_markdown}


def block(text: str, marker: str) -> str:
    match = re.search(rf"<!-- {marker}:start -->\n(.*?)<!-- {marker}:end -->", text, re.S)
    assert match, f"docs/datasets.md lacks the <!-- {marker}:start/end --> markers"
    return match.group(1)


def test_one_module_and_record_per_format():
    assert list(FORMATS) == ["lightgcn", "lastfm", "s3rec", "unisrec", "seqsplit", "ctcvr", "funnel"]
    for name, record in FORMATS.items():
        module = importlib.import_module(f"recbole_compress.data.convert.{name}")
        assert module.FORMAT is record and record.name == name
        assert record.convert.__module__ == module.__name__
        for text in (record.summary, record.example, record.reads, record.writes, record.details):
            assert text.strip() and "\n" not in text and "../shared" not in text


@pytest.mark.parametrize("name", list(FORMATS))
def test_options_are_what_the_converter_takes(name):
    record = FORMATS[name]
    parameters = inspect.signature(record.convert).parameters
    keywords = {p for p, spec in parameters.items() if spec.kind is inspect.Parameter.KEYWORD_ONLY}
    assert keywords == {"name", *record.options}
    assert set(record.options) <= set(OPTIONS)


def test_every_option_is_used_by_some_format():
    assert set(OPTIONS) == {option for record in FORMATS.values() for option in record.options}


def test_help_lists_every_format_with_its_options():
    text = formats_help(details=True)
    for record in FORMATS.values():
        assert f"\n{record.name}: " in "\n" + text
    assert "`" not in text and "../shared" not in text
    assert all(len(line) <= 88 for line in text.splitlines())


def test_unknown_format():
    with pytest.raises(ConvertError, match="unknown format 'movielens'; choose one of: lightgcn"):
        convert_dataset("movielens", "src", "dst")


@pytest.mark.parametrize("marker", list(BLOCKS))
def test_docs_match_the_registry(marker):
    text = DOC.read_text(encoding="utf-8")
    assert block(text, marker) == BLOCKS[marker](), (
        "docs/datasets.md is out of date; regenerate it: python -m tests.data.convert.test_formats"
    )
    assert "../shared" not in text


def regenerate() -> None:
    text = DOC.read_text(encoding="utf-8")
    for marker, render in BLOCKS.items():
        text = text.replace(block(text, marker), render(), 1) if block(text, marker) else text.replace(
            f"<!-- {marker}:start -->\n", f"<!-- {marker}:start -->\n{render()}", 1)
    DOC.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    regenerate()
    sys.stdout.write(f"updated {DOC}\n")
