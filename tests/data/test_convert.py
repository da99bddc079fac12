"""The converters on the real shared data (recbole_compress.data.convert): counts, splits and
layouts of every format. Tests that need the shared datasets are skipped when they are absent
(``RECBOLE_COMPRESS_SHARED_DATA`` points to another copy); yelp2018 (1.5M rows) runs only with
``-m slow``. Bad input, the output folder and the command line have their own test files.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from recbole_compress.data import carve_validation
from recbole_compress.data import convert_dataset as convert
from tests.conftest import REPO
from tests.data.convert_helpers import leftovers, ml100k, pairs, read_atomic, shared

NO_PAIR_PROBLEMS = {"train_duplicate": 0, "valid_duplicate": 0, "test_duplicate": 0,
                    "valid_in_train": 0, "test_in_train": 0, "test_in_valid": 0}


# --------------------------------------------------------------------------- lastfm / lightgcn


def test_lastfm_round_trip(tmp_path):
    src = shared("lastfm")
    dst = tmp_path / "dataset" / "lastfm"
    result = convert("lastfm", src, dst)

    def triples(name):
        return [line.split() for line in (src / name).read_text().splitlines() if line.strip()]

    train_src, test_src = triples("data1.txt"), triples("test1.txt")
    train_users = {r[0] for r in train_src}
    train_items = {r[1] for r in train_src}
    unseen = sum(1 for r in test_src if r[1] not in train_items or r[0] not in train_users)
    assert unseen == 44 and result.n_dropped == unseen

    written = {split: pairs(dst / f"lastfm.{split}.inter") for split in ("train", "valid", "test")}
    assert {k: len(v) for k, v in written.items()} == result.splits
    assert sum(result.splits.values()) == len(train_src) + len(test_src) - result.n_dropped
    # valid is a partition of the source train, disjoint from what stays in train
    assert sorted(written["train"] + written["valid"]) == sorted((r[0], r[1]) for r in train_src)
    assert not set(written["train"]) & set(written["valid"])
    all_rows = [p for rows in written.values() for p in rows]
    assert result.n_users == len({u for u, _ in all_rows}) == 1878
    assert result.n_items == len({i for _, i in all_rows}) == 4476
    kept_train_items = {i for _, i in written["train"]}
    assert {i for _, i in written["valid"] + written["test"]} <= kept_train_items
    header, rows = read_atomic(dst / "lastfm.train.inter")
    assert header == ["user_id:token", "item_id:token", "weight:float"]
    meta = json.loads((dst / "lastfm.convert.json").read_text())
    assert meta["valid_carved_from_train"] is True and meta["seed"] == 2020
    assert meta["splits"] == result.splits and meta["dropped"] == result.dropped
    # the real data has no repeated pair and no test pair inside train (checked, counted)
    assert {k: v for k, v in meta["dropped"].items() if "unseen" not in k} == {
        "train_duplicate": 0, "test_duplicate": 0, "test_in_train": 0}
    assert meta["files"] == sorted(p.name for p in dst.iterdir())
    assert leftovers(dst.parent, "lastfm") == []


def test_valid_carve_is_deterministic_and_follows_the_rule(tmp_path):
    src = shared("lastfm")
    first = convert("lastfm", src, tmp_path / "a" / "lastfm", seed=2020)
    again = convert("lastfm", src, tmp_path / "b" / "lastfm", seed=2020)
    convert("lastfm", src, tmp_path / "c" / "lastfm", seed=7)
    valid = [(tmp_path / d / "lastfm" / "lastfm.valid.inter").read_bytes() for d in "abc"]
    assert valid[0] == valid[1] and valid[0] != valid[2]
    assert first.splits == again.splits

    # the rule: users with n >= 5 give max(1, floor(ratio * n)) (minus rows put back)
    import numpy as np

    users = np.repeat(np.arange(6), [1, 4, 5, 10, 30, 3])
    items = np.arange(len(users))  # every item unique -> a moved row would lose its item
    mask, restored = carve_validation(users, items, 0.1, 1)
    assert mask.sum() == 0 and restored == 1 + 1 + 3
    items = np.zeros(len(users), dtype=int)  # one shared item -> nothing is put back
    mask, restored = carve_validation(users, items, 0.1, 1)
    per_user = Counter(users[mask].tolist())
    assert restored == 0 and per_user == {2: 1, 3: 1, 4: 3}
    again, _ = carve_validation(users, items, 0.1, 1)
    assert (mask == again).all()


def test_tiktok_round_trip(tmp_path):
    src = shared("tiktok")
    dst = tmp_path / "tiktok"
    result = convert("lightgcn", src, dst)

    def rows(name):
        out = []
        for line in (src / name).read_text().splitlines():
            user, *its = line.split()
            out += [(user, i) for i in its]
        return out

    source = {split: rows(f"{split}.txt") for split in ("train", "valid", "test")}
    assert {k: len(v) for k, v in source.items()} == {"train": 59541, "valid": 3051, "test": 6130}
    written = {split: pairs(dst / f"tiktok.{split}.inter") for split in ("train", "valid", "test")}
    assert written["train"] == source["train"]  # valid.txt exists: nothing carved
    train_users = {u for u, _ in source["train"]}
    train_items = {i for _, i in source["train"]}
    for split in ("valid", "test"):
        kept = [r for r in source[split] if r[0] in train_users and r[1] in train_items]
        assert written[split] == kept
    assert result.n_dropped == 680
    assert {k: v for k, v in result.dropped.items() if "unseen" not in k} == NO_PAIR_PROBLEMS
    assert sum(result.splits.values()) == sum(map(len, source.values())) - result.n_dropped
    all_rows = [p for part in written.values() for p in part]
    assert (result.n_users, result.n_items) == (len({u for u, _ in all_rows}), len({i for _, i in all_rows}))
    assert (result.n_users, result.n_items) == (9298, 6245)

    kept_all = convert("lightgcn", src, tmp_path / "tiktok_all", keep_unseen=True)
    assert kept_all.n_dropped == 0
    assert (kept_all.n_users, kept_all.n_items) == (9308, 6710)
    assert kept_all.splits == {"train": 59541, "valid": 3051, "test": 6130}


def test_tiktok_as_sequences(tmp_path):
    """seqsplit: the lightgcn split's items, each user's train items in one seeded order, the features copied."""
    import numpy as np

    src = shared("tiktok")
    result = convert("seqsplit", src, tmp_path / "tts", seed=7)
    dst = tmp_path / "tts"
    header, train = read_atomic(dst / "tts.train.inter")
    assert header == ["user_id:token", "item_id_list:token_seq", "item_id:token"]
    flat = convert("lightgcn", src, tmp_path / "flat")
    pairs_of = {split: pairs(tmp_path / "flat" / f"flat.{split}.inter") for split in ("train", "valid", "test")}
    # every train item is a target once, except each user's first; every history is that user's earlier items
    sequences: dict[str, list[str]] = {}
    for user, seq, target in train:
        sequences.setdefault(user, seq.split()[:1])
        assert seq.split() == sequences[user][-50:]
        sequences[user].append(target)
    train_users = {u for u, _ in pairs_of["train"]}
    train_of: dict[str, list[str]] = {}
    for user, item in pairs_of["train"]:
        train_of.setdefault(user, []).append(item)
    for user in train_users - set(sequences):  # one train item: no train row, only a history
        sequences[user] = train_of[user]
    assert sorted((u, i) for u, s in sequences.items() for i in s) == sorted(pairs_of["train"])
    assert any(s != sorted(s, key=int) for s in sequences.values())  # not the source's ascending order
    _, valid = read_atomic(dst / "tts.valid.inter")
    assert sorted((u, t) for u, _, t in valid) == sorted(pairs_of["valid"])
    assert all(seq.split() == sequences[u][-50:] for u, seq, _ in valid)
    _, test = read_atomic(dst / "tts.test.inter")
    assert sorted((u, t) for u, _, t in test) == sorted(pairs_of["test"])
    silent = result.dropped.pop("train_single_item_users")  # their only item is in no row
    assert sum(result.dropped.values()) == flat.n_dropped == 680 and result.splits["train"] == 59541 - len(train_users)
    assert result.n_users == len(train_users) - silent and result.n_items == 6224
    np.testing.assert_array_equal(np.load(dst / "tts.image.npy"), np.load(src / "image_feat.npy"))
    again = convert("seqsplit", src, tmp_path / "tts2", seed=7)
    assert (tmp_path / "tts2" / "tts2.train.inter").read_text() == (dst / "tts.train.inter").read_text()
    assert again.splits == result.splits


@pytest.mark.slow
def test_yelp2018_counts(tmp_path, request):
    if "slow" not in (request.config.getoption("-m") or ""):
        pytest.skip("slow (1.5M rows): run with -m slow")
    result = convert("lightgcn", shared("yelp2018"), tmp_path / "yelp2018")
    assert (result.n_users, result.n_items) == (31668, 38048)
    assert result.splits["test"] == 324147 and result.n_dropped == 0
    assert result.splits["train"] + result.splits["valid"] == 1237259
    assert {k: v for k, v in result.dropped.items() if v} == {}  # no duplicate, overlap or unseen row


# --------------------------------------------------------------------------- s3rec, unisrec, ctcvr


def test_beauty_sequences(tmp_path):
    src = shared("beauty")
    dst = tmp_path / "beauty"
    result = convert("s3rec", src, dst)
    assert (result.n_users, result.n_items, result.splits["inter"]) == (22363, 12101, 198502)
    assert result.kept == {"repeated_item": 0}
    header, rows = read_atomic(dst / "beauty.inter")
    assert header == ["user_id:token", "item_id:token", "timestamp:float"]
    assert len(rows) == 198502
    assert len({r[0] for r in rows}) == 22363 and len({r[1] for r in rows}) == 12101
    sequences: dict[str, list[str]] = {}
    last: dict[str, int] = {}
    for user, item, stamp in rows:
        stamp = int(float(stamp))
        assert stamp == last.get(user, -1) + 1  # 0, 1, 2, ... within a user
        last[user] = stamp
        sequences.setdefault(user, []).append(item)
    for line in (src / "Beauty.txt").read_text().splitlines()[:200]:
        user, *items = line.split()
        assert sequences[user] == items


def test_scientific_copy(tmp_path):
    src = shared("scientific")
    dst = tmp_path / "scientific"
    result = convert("unisrec", src, dst)
    users, items = set(), set()
    for split, expected in (("train", 34101), ("valid", 8442), ("test", 8442)):
        header, rows = read_atomic(dst / f"scientific.{split}.inter")
        assert header == ["user_id:token", "item_id_list:token_seq", "item_id:token"]
        assert len(rows) == expected == result.splits[split]
        assert all(len(r) == 3 and 1 <= len(r[1].split()) <= 50 for r in rows)
        assert read_atomic(src / f"Scientific.{split}.inter")[1] == rows
        for user, history, target in rows:
            users.add(user)
            items.update(history.split())
            items.add(target)
    assert (result.n_users, result.n_items) == (len(users), len(items)) == (8442, 4385)
    assert result.info["interactions"] == 59384
    assert result.n_dropped == 0  # no identical rows inside or across splits
    # repeat consumption (a target the user had before) is real data: kept and counted
    assert result.kept == {"train_repeat_target": 187, "valid_repeat_target": 54, "test_repeat_target": 50}
    header, text = read_atomic(dst / "scientific.text")
    assert header == ["item_id:token", "text:token_seq"]
    assert len(text) == 4385 and {r[0] for r in text} == items  # keyed like the inter files


@pytest.mark.parametrize(
    "folder, labels, n_token, n_float, n_rows",
    [("ali-ccp-sample", ["click", "purchase"], 23, 8, 200), ("aliexpress-sample", ["click", "conversion"], 17, 63, 120)],
)
def test_ctcvr_samples(tmp_path, folder, labels, n_token, n_float, n_rows):
    dst = tmp_path / folder
    result = convert("ctcvr", shared(folder), dst)
    header, rows = read_atomic(dst / f"{folder}.inter")
    fields = dict(col.split(":") for col in header)
    assert len(rows) == n_rows == result.splits["inter"]
    assert all(len(r) == len(header) for r in rows)
    assert [f for f, t in fields.items() if f in labels and t == "float"] == labels
    assert sum(t == "token" for t in fields.values()) == n_token
    assert sum(t == "float" for t in fields.values()) == n_float + len(labels)
    if folder == "ali-ccp-sample":
        assert all(t == "float" for f, t in fields.items() if f.startswith("D"))
        assert fields["f101"] == "token" and fields["f205"] == "token"  # renamed: RecBole evals "101"
    for label in labels:
        column = header.index(f"{label}:float")
        assert {float(r[column]) for r in rows} <= {0.0, 1.0}
    split_rows = sum(v for k, v in result.splits.items() if k != "inter")
    assert split_rows == n_rows
    # exposure logs: identical rows are separate impressions, kept and counted
    expected = {"ali-ccp-sample": 9, "aliexpress-sample": 0}[folder]
    assert result.n_kept == expected and result.n_dropped == 0
    if folder == "ali-ccp-sample":
        assert result.kept["train_duplicate_row"] == 2 and result.kept["valid_in_train"] == 3


def test_ctcvr_sanitises_tokens(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "sample_train.csv").write_text('click,purchase,user id,D1\n1,0,"a b\tc",0.5\n0,0,x,\n')
    convert("ctcvr", src, tmp_path / "out" / "tiny")
    header, rows = read_atomic(tmp_path / "out" / "tiny" / "tiny.inter")
    assert header == ["click:float", "purchase:float", "user_id:token", "D1:float"]
    assert rows == [["1", "0", "a_b_c", "0.5"], ["0", "0", "x", ""]]


# --------------------------------------------------------------------------- RecBole


def test_recbole_loads_converted_lastfm(tmp_path, monkeypatch):
    dst = tmp_path / "dataset" / "lastfm"
    result = convert("lastfm", shared("lastfm"), dst)
    monkeypatch.chdir(tmp_path)  # RecBole writes log/ and saved/ to the working directory

    from recbole_compress import compat

    compat.apply()
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation

    config = Config(
        model="BPR",
        dataset="lastfm",
        config_file_list=[str(REPO / "properties" / "dataset" / "lastfm.yaml")],
        config_dict={"data_path": str(dst.parent), "show_progress": False, "save_dataset": False},
    )
    dataset = create_dataset(config)
    assert (dataset.user_num - 1, dataset.item_num - 1) == (result.n_users, result.n_items)  # +[PAD]
    assert dataset.inter_num == sum(result.splits.values())
    train, valid, test = data_preparation(config, dataset)
    got = {"train": train.dataset.inter_num, "valid": valid.dataset.inter_num, "test": test.dataset.inter_num}
    assert got == result.splits


# --------------------------------------------------------------------------- funnel (derived from ml-100k)


def test_funnel_from_ml100k(tmp_path):
    dst = tmp_path / "ml-100k-funnel"
    result = convert("funnel", ml100k(), dst, negatives=2, seed=7)
    _, raw = read_atomic(ml100k() / "ml-100k.inter")
    rated = {(r[0], r[1]): float(r[2]) for r in raw}
    rows = []
    for split in ("train", "valid", "test"):
        header, part = read_atomic(dst / f"ml-100k-funnel.{split}.inter")
        assert header == ["user_id:token", "item_id:token", "click:float", "conversion:float"]  # no rating: it is the label
        assert len(part) == result.splits[split]
        rows += part
    assert len({(r[0], r[1]) for r in rows}) == len(rows)  # a non-interaction is never an interaction
    for user, item, click, conversion in rows:
        if (user, item) in rated:  # an interaction: clicked, converted iff rated >= 4
            assert click == "1" and conversion == str(int(rated[(user, item)] >= 4))
        else:  # a sampled non-interaction
            assert click == "0" and conversion == "0"
    per_user = Counter(r[0] for r in rows if r[2] == "0")
    n_items = len({i for _, i in rated})
    # twice the user's interactions, capped by the items the user never rated (heavy raters)
    assert per_user == Counter({u: min(2 * n, n_items - n) for u, n in Counter(u for u, _ in rated).items()})
    assert len(rows) == len(rated) + sum(per_user.values())
    assert result.info["labels"] == {"click": 100000, "conversion": 55375} and result.info["derived"]
    assert 0.09 < result.splits["valid"] / len(rows) < 0.11 and 0.09 < result.splits["test"] / len(rows) < 0.11
    assert (dst / "ml-100k-funnel.user").is_file() and (dst / "ml-100k-funnel.item").is_file()
    again = convert("funnel", ml100k(), tmp_path / "again" / "ml-100k-funnel", negatives=2, seed=7)
    assert (tmp_path / "again" / "ml-100k-funnel" / "ml-100k-funnel.test.inter").read_text() == (
        dst / "ml-100k-funnel.test.inter").read_text()
    assert again.splits == result.splits
