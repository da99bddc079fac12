"""Duplicate interactions and train/valid/test overlap (recbole_compress.data.convert.splits and
the formats that use it): dropped and counted by default, kept and counted on request."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recbole_compress.data import convert_dataset as convert
from tests.data.convert_helpers import pairs, read_atomic, write_files

# user 0 has item 1 twice in train; valid (1,3) is a train pair; test (0,2) is a train pair,
# (1,8) and (2,1) are valid pairs, and (2,1) is repeated inside test
TRAIN = "0 1 1 2 3 4 5\n1 3 4 5 6 7\n2 8 9 10 11 12\n"
VALID = "1 3 8\n2 1\n"
TEST = "0 2 6\n1 8\n2 1 1\n"
FLAGGED = {"train_duplicate": 1, "valid_duplicate": 0, "test_duplicate": 1,
           "valid_in_train": 1, "test_in_train": 1, "test_in_valid": 2}
KEPT = {**FLAGGED, "test_in_valid": 3}  # with --keep-duplicates both copies of test (2,1) are in valid


def source(tmp_path):
    return write_files(tmp_path / "src", {"train.txt": TRAIN, "valid.txt": VALID, "test.txt": TEST})


def test_lightgcn_drops_and_counts_duplicates_and_overlap(tmp_path, capsys):
    dst = tmp_path / "out" / "ds"
    result = convert("lightgcn", source(tmp_path), dst)
    written = {split: pairs(dst / f"ds.{split}.inter") for split in ("train", "valid", "test")}
    assert len(written["train"]) == 15 and len(set(written["train"])) == 15
    assert written["valid"] == [("1", "8"), ("2", "1")]
    assert written["test"] == [("0", "6")]
    assert {k: v for k, v in result.dropped.items() if k in FLAGGED} == FLAGGED
    assert result.n_kept == 0
    meta = json.loads((dst / "ds.convert.json").read_text())
    assert meta["dropped"] == result.dropped and meta["drops_duplicates"] and meta["drops_overlap"]
    summary = result.summary()
    assert "dropped 6 rows (train_duplicate 1, test_duplicate 1, valid_in_train 1, test_in_train 1, " \
           "test_in_valid 2)" in summary and "\n" not in summary


def test_lightgcn_keeps_them_on_request(tmp_path):
    dst = tmp_path / "out" / "ds"
    result = convert("lightgcn", source(tmp_path), dst, keep_duplicates=True, keep_overlap=True)
    written = {split: pairs(dst / f"ds.{split}.inter") for split in ("train", "valid", "test")}
    assert [len(written[s]) for s in ("train", "valid", "test")] == [16, 3, 5]
    assert result.kept == KEPT and not any(result.dropped.get(k) for k in FLAGGED)
    assert "kept flagged 7 rows" in result.summary()
    only_dups = convert("lightgcn", source(tmp_path / "b"), tmp_path / "out" / "d2", keep_duplicates=True)
    assert only_dups.splits == {"train": 16, "valid": 2, "test": 1}
    assert only_dups.kept == {k: v for k, v in FLAGGED.items() if k.endswith("duplicate")}


def test_lastfm_test_pairs_inside_train_are_dropped(tmp_path):
    """The reported case: a test file that repeats training pairs."""
    rng = np.random.default_rng(0)
    train = sorted({(int(u), int(i)) for u, i in zip(rng.integers(1, 40, 600), rng.integers(1, 60, 600))})
    test = [train[k] for k in range(0, len(train), 7)] + [(5, 61), (6, 62)]
    src = write_files(tmp_path / "src", {
        "data1.txt": "".join(f"{u}\t{i}\t1\n" for u, i in train),
        "test1.txt": "".join(f"{u}\t{i}\t2\n" for u, i in test),
    })
    dst = tmp_path / "out" / "fm"
    result = convert("lastfm", src, dst, keep_unseen=True)
    overlap = len(test) - 2
    assert result.dropped["test_in_train"] == overlap and result.splits["test"] == 2
    written = {split: set(pairs(dst / f"fm.{split}.inter")) for split in ("train", "valid", "test")}
    assert not written["test"] & (written["train"] | written["valid"])
    assert written["train"] | written["valid"] == {(str(u), str(i)) for u, i in train}
    kept = convert("lastfm", src, tmp_path / "out" / "fm2", keep_unseen=True, keep_overlap=True)
    assert kept.splits["test"] == len(test) and kept.kept["test_in_train"] == overlap


def test_lastfm_repeated_pair_keeps_the_first_weight(tmp_path):
    src = write_files(tmp_path / "src", {
        "data1.txt": "1 1 5\n1 2 1\n1 1 9\n2 1 1\n2 2 1\n",
        "test1.txt": "1 3 1\n",
    })
    result = convert("lastfm", src, tmp_path / "out" / "fm", keep_unseen=True)
    assert result.dropped["train_duplicate"] == 1
    _, rows = read_atomic(tmp_path / "out" / "fm" / "fm.train.inter")
    assert ["1", "1", "5"] in rows and ["1", "1", "9"] not in rows


def test_seqsplit_cleans_like_lightgcn(tmp_path):
    src = source(tmp_path)
    np.save(src / "image_feat.npy", np.zeros((13, 4), dtype=np.float16))
    dst = tmp_path / "out" / "sq"
    result = convert("seqsplit", src, dst, seed=1)
    assert {k: v for k, v in result.dropped.items() if k in FLAGGED} == FLAGGED
    _, train = read_atomic(dst / "sq.train.inter")
    for user in "012":
        targets = [t for u, _, t in train if u == user]
        assert len(targets) == len(set(targets))  # no repeated item in a sequence
    _, test = read_atomic(dst / "sq.test.inter")
    assert [(u, t) for u, _, t in test] == [("0", "6")]
    kept = convert("seqsplit", src, tmp_path / "out" / "sq2", seed=1, keep_duplicates=True, keep_overlap=True)
    assert kept.kept == KEPT and kept.splits["test"] == 5


UNISREC_HEADER = "user_id:token\titem_id_list:token_seq\titem_id:token\n"


@pytest.mark.parametrize("keep", [False, True])
def test_unisrec_identical_rows(tmp_path, keep):
    src = write_files(tmp_path / "src", {
        "P.train.inter": UNISREC_HEADER + "u1\t1\t2\nu1\t1\t2\nu1\t1 2\t3\nu2\t4\t5\n",
        "P.valid.inter": UNISREC_HEADER + "u1\t1 2\t3\nu2\t4 5\t4\n",
        "P.test.inter": UNISREC_HEADER + "u1\t1 2 3\t6\nu2\t4 5 4\t5\n",
        "P.text": "item_id:token\ttext:token_seq\n1\ta\n",
    })
    result = convert("unisrec", src, tmp_path / "out" / "p", keep_duplicates=keep, keep_overlap=keep)
    flagged = {"train_duplicate": 1, "valid_in_train": 1}
    counts = result.kept if keep else result.dropped
    assert {k: v for k, v in counts.items() if v and "repeat" not in k} == flagged
    assert result.splits == ({"train": 4, "valid": 2, "test": 2} if keep else {"train": 3, "valid": 1, "test": 2})
    # (u2, 4) and (u2, 5): targets the user had before: repeat consumption, kept and counted
    # (and the kept copy of the train row (u1, 3) repeats its target too)
    assert result.kept["valid_repeat_target"] == 1 + keep and result.kept["test_repeat_target"] == 1
