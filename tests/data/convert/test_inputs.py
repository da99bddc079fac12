"""Bad input to every converter is one ``ConvertError`` line naming the file (and line) and the
fix, never a traceback, and nothing is written."""

from __future__ import annotations

import builtins
import os

import numpy as np
import pytest

from recbole_compress.data import ConvertError
from recbole_compress.data import convert_dataset as convert
from tests.data.convert_helpers import ml100k, read_atomic, write_files

SEQ = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
FUNNEL = "user_id:token\titem_id:token\trating:float\n"

# a minimal valid source per format
SOURCES = {
    "lightgcn": {"train.txt": "0 1 2 3 4 5\n1 2 3\n", "test.txt": "0 3\n1 4\n"},
    "lastfm": {"data1.txt": "1 1 1\n1 2 1\n2 2 1\n", "test1.txt": "2 1 1\n"},
    "s3rec": {"seq.txt": "1 1 2 3\n2 2 3 4\n"},
    "unisrec": {"P.train.inter": SEQ + "u\t1\t2\n", "P.valid.inter": SEQ + "u\t1 2\t3\n",
                "P.test.inter": SEQ + "u\t1 2 3\t4\n", "P.text": "item_id:token\ttext:token_seq\n1\ta b\n"},
    "seqsplit": {"train.txt": "0 1 2 3\n1 2 3\n", "valid.txt": "0 2\n", "test.txt": "1 1\n"},
    "ctcvr": {"s_train.csv": "click,purchase,u\n1,0,a\n", "s_test.csv": "click,purchase,u\n0,0,b\n"},
    "funnel": {"r.inter": FUNNEL + "1\t1\t5\n1\t2\t3\n2\t1\t4\n"},
}
# (format, file, bad content, words of the message)
BAD_FILES = [
    ("lightgcn", "train.txt", "", "no interactions"),
    ("lightgcn", "test.txt", "0 3\n1 -4\n", "test.txt:2"),
    ("lightgcn", "train.txt", "0 1 2\n1 99999999999999999999\n", "train.txt:2"),  # past int64
    ("lightgcn", "train.txt", "0 1\n0 2\n", "already has a line"),
    ("lightgcn", "valid.txt", "\n", "no interactions"),
    ("lastfm", "data1.txt", "", "no interactions"),
    ("lastfm", "test1.txt", "2 1 1\n2 2 nan\n", "test1.txt:2"),
    ("lastfm", "data1.txt", "1 99999999999999999999 1\n", "data1.txt:1"),
    ("s3rec", "seq.txt", "", "no sequences"),
    ("s3rec", "seq.txt", "1 2 3\n2 a\n", "seq.txt:2"),
    ("unisrec", "P.valid.inter", "", "empty file"),
    ("unisrec", "P.test.inter", SEQ, "no rows"),
    ("unisrec", "P.train.inter", SEQ + "u\t1\n", "P.train.inter:2"),
    ("unisrec", "P.text", "item_id\ttext\n", "P.text:1"),
    ("seqsplit", "valid.txt", "", "no interactions"),
    ("seqsplit", "image_feat.npy", "not numpy", "image_feat.npy"),
    ("ctcvr", "s_test.csv", "", "empty CSV"),
    ("ctcvr", "s_test.csv", "click,purchase,u\n0,x,b\n", "s_test.csv:2"),
    ("ctcvr", "s_test.csv", "click,purchase,u\n0,0\n", "s_test.csv:2"),
    ("funnel", "r.inter", "", "empty file"),
    ("funnel", "r.inter", FUNNEL + "1\t1\tnan\n", "r.inter:2"),
    ("funnel", "r.inter", FUNNEL + "1\t1\t5\n2\t1\t4\n1\t1\t2\n", "r.inter:4"),
    ("funnel", "r.inter", "user_id:token\titem_id:token\n1\t2\n", "rating"),
]


def source(tmp_path, fmt, **overrides):
    return write_files(tmp_path / "src", {**SOURCES[fmt], **overrides})


def assert_one_line_and_nothing_written(caught, dst, *words):
    message = str(caught.value)
    assert "\n" not in message and message.strip() == message
    for word in words:
        assert word in message, message
    assert not dst.exists() and not [p for p in dst.parent.iterdir() if p.name.startswith(dst.name)]


@pytest.mark.parametrize("fmt", list(SOURCES))
def test_every_minimal_source_converts(tmp_path, fmt):
    if fmt == "seqsplit":
        src = source(tmp_path, fmt)
        np.save(src / "image_feat.npy", np.zeros((4, 2), dtype=np.float16))
    result = convert(fmt, src if fmt == "seqsplit" else source(tmp_path, fmt), tmp_path / "out" / "ds")
    assert sum(result.splits.values()) > 0


@pytest.mark.parametrize("fmt, filename, content, words", BAD_FILES)
def test_bad_file_is_one_line(tmp_path, fmt, filename, content, words):
    src = source(tmp_path, fmt, **{filename: content})
    dst = tmp_path / "out" / "ds"
    (tmp_path / "out").mkdir()
    with pytest.raises(ConvertError) as caught:
        convert(fmt, src, dst)
    assert_one_line_and_nothing_written(caught, dst, words)


@pytest.mark.parametrize("fmt", list(SOURCES))
def test_missing_source_and_missing_files(tmp_path, fmt):
    (tmp_path / "out").mkdir()
    dst = tmp_path / "out" / "ds"
    with pytest.raises(ConvertError) as caught:
        convert(fmt, tmp_path / "nowhere", dst)
    assert_one_line_and_nothing_written(caught, dst, "does not exist")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConvertError) as caught:
        convert(fmt, empty, dst)
    assert_one_line_and_nothing_written(caught, dst, str(empty))


def test_non_utf8_file(tmp_path):
    src = source(tmp_path, "lightgcn")
    (src / "train.txt").write_bytes(b"0 1 2\n\xff\xfe\n")
    with pytest.raises(ConvertError, match="not UTF-8"):
        convert("lightgcn", src, tmp_path / "ds")


def test_unreadable_file(tmp_path, monkeypatch):
    src = source(tmp_path, "lightgcn")
    real_open = builtins.open

    def guarded(path, *args, **kwargs):
        if str(path).endswith("test.txt"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    with pytest.raises(ConvertError) as caught:
        convert("lightgcn", src, tmp_path / "out" / "ds")
    monkeypatch.undo()
    assert "test.txt" in str(caught.value) and "Permission denied" in str(caught.value)
    assert not (tmp_path / "out" / "ds").exists()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_for_real(tmp_path):
    src = source(tmp_path, "s3rec")
    (src / "seq.txt").chmod(0)
    with pytest.raises(ConvertError, match="seq.txt"):
        convert("s3rec", src, tmp_path / "ds")


@pytest.mark.parametrize(
    "fmt, options, words",
    [
        ("lightgcn", {"seed": -1}, "--seed"),
        ("lightgcn", {"seed": 1.5}, "--seed"),
        ("lastfm", {"valid_ratio": float("nan")}, "--valid-ratio"),
        ("funnel", {"seed": -3}, "--seed"),
        ("s3rec", {"seed": 3}, "does not use --seed"),
        ("ctcvr", {"keep_duplicates": True}, "does not use --keep-duplicates"),
        ("unisrec", {"keep_unseen": True}, "does not use --keep-unseen"),
        ("lightgcn", {"negatives": 2}, "does not use --negatives"),
        ("lightgcn", {"no_such_option": 1}, "unknown option"),
    ],
)
def test_bad_options(tmp_path, fmt, options, words):
    dst = tmp_path / "out" / "ds"
    (tmp_path / "out").mkdir()
    with pytest.raises(ConvertError) as caught:
        convert(fmt, source(tmp_path, fmt), dst, **options)
    assert_one_line_and_nothing_written(caught, dst, words)


def test_csv_with_a_byte_order_mark(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "x.csv").write_bytes("click,purchase,user\n1,0,a\n".encode("utf-8-sig"))
    convert("ctcvr", src, tmp_path / "out" / "x")
    header, rows = read_atomic(tmp_path / "out" / "x" / "x.inter")
    assert header == ["click:float", "purchase:float", "user:token"] and rows == [["1", "0", "a"]]


def test_funnel_repeated_pair_names_both_lines(tmp_path):
    src = source(tmp_path, "funnel", **{"r.inter": FUNNEL + "1\t1\t5\n2\t1\t4\n1\t1\t5\n"})
    with pytest.raises(ConvertError, match=r"r.inter:4: user 1 already rated item 1 on line 2"):
        convert("funnel", src, tmp_path / "ds")


@pytest.mark.parametrize("negatives", [0, -1, 1.5])
def test_funnel_rejects_bad_negatives(tmp_path, negatives):
    with pytest.raises(ConvertError, match="negatives"):
        convert("funnel", ml100k(), tmp_path / "f", negatives=negatives)
    assert not (tmp_path / "f").exists()
