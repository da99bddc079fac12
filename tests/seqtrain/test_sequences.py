"""Training sequences rebuilt from RecBole's training split: exactly the training
interactions, no validation/test item, every transition once; negatives."""

from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from recbole.data.interaction import Interaction

from recbole_compress import UserError
from recbole_compress.seqtrain.sequences import AllPositionsLoader, sample_negatives, training_sequences, windows
from tests.conftest import load_splits
from tests.seqtrain.helpers import ALL_POSITIONS

SEQ_FIELD, LEN_FIELD = "item_id_list", "item_length"
FIELDS = {"user": "user_id", "item_seq": SEQ_FIELD, "item_seq_len": LEN_FIELD, "pos_item": "item_id", "neg_item": "neg_item_id"}


@pytest.fixture(scope="module")
def splits():
    full, train, valid, test = load_splits("SASRec", ALL_POSITIONS, with_dataset=True)
    return full, train._dataset, valid._dataset, test._dataset


def _rows(dataset):
    feat = dataset.inter_feat
    return feat["user_id"].numpy(), feat["item_id"].numpy()


def test_sequences_are_each_users_history_without_valid_and_test(splits):
    full, train, valid, test = splits
    whole = training_sequences(full, SEQ_FIELD, LEN_FIELD)  # the same rebuild over the unsplit data
    ours = training_sequences(train, SEQ_FIELD, LEN_FIELD)
    whole_of = {u: whole.items[whole.offsets[i] : whole.offsets[i + 1]] for i, u in enumerate(whole.users)}
    valid_of = dict(zip(*_rows(valid)))
    test_of = dict(zip(*_rows(test)))
    assert len(ours.users) == len(valid_of) == len(test_of)
    for i, user in enumerate(ours.users):
        seq = ours.items[ours.offsets[i] : ours.offsets[i + 1]]
        history = whole_of[user]
        np.testing.assert_array_equal(seq, history[:-2])  # the user's history up to the validation item
        assert (history[-2], history[-1]) == (valid_of[user], test_of[user])
        # ml-100k rates each movie once per user: the held-out items appear nowhere in training
        assert valid_of[user] not in seq and test_of[user] not in seq
    assert ours.transitions() == len(train)


def test_windows_hold_every_training_transition_once(splits):
    _, train, _, _ = splits
    seqs = training_sequences(train, SEQ_FIELD, LEN_FIELD)
    cut = windows(seqs, 20)
    assert int(cut.length.max()) == 20 and int(cut.length.min()) >= 1
    assert cut.positions() == len(train)
    pairs = Counter()
    for start, length, user in zip(cut.start.tolist(), cut.length.tolist(), cut.user.tolist()):
        pairs.update((user, int(item)) for item in cut.items[start + 1 : start + 1 + length])
    assert pairs == Counter(zip(*(a.tolist() for a in _rows(train))))


@pytest.mark.parametrize("overlap", [5, 19])
def test_overlapping_windows_train_every_transition_once_with_context(splits, overlap):
    _, train, _, _ = splits
    seqs = training_sequences(train, SEQ_FIELD, LEN_FIELD)
    plain, cut = windows(seqs, 20), windows(seqs, 20, overlap)
    assert int(cut.length.max()) == 20 and cut.positions() == len(train) and len(cut) > len(plain)
    pairs, first_start = Counter(), dict(zip(seqs.users.tolist(), seqs.offsets[:-1].tolist()))
    for start, length, skip, user in zip(cut.start.tolist(), cut.length.tolist(), cut.skip.tolist(), cut.user.tolist()):
        assert skip == (overlap if start > first_start[user] else 0)  # only a user's first window trains from its start
        pairs.update((user, int(item)) for item in cut.items[start + 1 + skip : start + 1 + length])
    assert pairs == Counter(zip(*(a.tolist() for a in _rows(train))))


@pytest.mark.parametrize("overlap", [0, 7])
@pytest.mark.parametrize("bucketing", [True, False])
def test_an_epoch_of_batches_is_exactly_the_training_interactions(splits, bucketing, overlap):
    _, train, valid, test = splits
    cut = windows(training_sequences(train, SEQ_FIELD, LEN_FIELD), 20, overlap)
    n_items = train.item_num
    loader = AllPositionsLoader(cut, FIELDS, batch_size=64, n_items=n_items, neg_samples=3, length_bucketing=bucketing)
    held_out = {(u, i) for rows in (_rows(valid), _rows(test)) for u, i in zip(*(a.tolist() for a in rows))}
    seen, batches = Counter(), 0
    torch.manual_seed(0)
    for batch in loader:
        batches += 1
        seq, length, pos, neg = batch[SEQ_FIELD], batch[LEN_FIELD], batch["item_id"], batch["neg_item_id"]
        in_window = torch.arange(seq.shape[1])[None, :] < length[:, None]
        assert torch.equal(in_window, seq != 0)
        valid_pos = pos != 0  # trained: in the window and past its context-only overlap
        assert not (valid_pos & ~in_window).any()
        assert set((in_window.sum(1) - valid_pos.sum(1)).tolist()) <= {0, overlap}  # context-only positions
        both = valid_pos[:, :-1] & valid_pos[:, 1:]
        assert torch.equal(seq[:, 1:][both], pos[:, :-1][both])  # inputs are targets shifted
        assert not (neg[valid_pos] == pos[valid_pos].unsqueeze(-1)).any()
        assert (neg[~valid_pos] == 0).all()
        users = batch["user_id"][:, None].expand_as(pos)
        pairs = list(zip(users[valid_pos].tolist(), pos[valid_pos].tolist()))
        pairs += list(zip(users[valid_pos].tolist(), seq[valid_pos].tolist()))
        assert not held_out & set(pairs)
        seen.update(zip(users[valid_pos].tolist(), pos[valid_pos].tolist()))
    assert batches == len(loader)
    assert seen == Counter(zip(*(a.tolist() for a in _rows(train))))


def test_length_bucketing_pads_less(splits):
    _, train, _, _ = splits
    cut = windows(training_sequences(train, SEQ_FIELD, LEN_FIELD), 20)
    padded = {}
    for bucketing in (True, False):
        loader = AllPositionsLoader(cut, FIELDS, 64, train.item_num, 0, bucketing)
        torch.manual_seed(0)
        padded[bucketing] = sum(b[SEQ_FIELD].numel() for b in loader)
    assert padded[True] < padded[False]


def test_negatives_are_uniform_over_the_other_items():
    torch.manual_seed(0)
    n_items = 6  # [PAD] + 5 items
    positives = torch.randint(1, n_items, (4000,))
    negatives = sample_negatives(positives, 2, n_items)
    assert negatives.shape == (4000, 2)
    assert not (negatives == positives[:, None]).any()
    assert negatives.min() >= 1 and negatives.max() <= n_items - 1
    # given positive 3: each of the 4 other items about a quarter of the time
    counts = torch.bincount(negatives[positives == 3].flatten(), minlength=n_items)[1:].float()
    assert counts[2] == 0
    share = counts[[0, 1, 3, 4]] / counts.sum()
    assert torch.allclose(share, torch.full((4,), 0.25), atol=0.05)
    torch.manual_seed(0)
    again = sample_negatives(torch.randint(1, n_items, (4000,)), 2, n_items)
    assert torch.equal(again, negatives)


def _fake_dataset(users, targets, histories):
    width = max(len(h) for h in histories)
    hist = torch.zeros(len(histories), width, dtype=torch.long)
    for row, h in enumerate(histories):
        hist[row, : len(h)] = torch.tensor(h)
    feat = Interaction({
        "user_id": torch.tensor(users),
        "item_id": torch.tensor(targets),
        SEQ_FIELD: hist,
        LEN_FIELD: torch.tensor([len(h) for h in histories]),
    })
    return SimpleNamespace(inter_feat=feat, uid_field="user_id", iid_field="item_id")


def test_rebuild_from_capped_histories_and_windows_from_the_end():
    # user 1: items 1..6 with histories capped at 2 items; user 2: a single training row
    data = _fake_dataset(
        [1, 1, 2, 1, 1, 1],
        [2, 3, 8, 4, 5, 6],
        [[1], [1, 2], [7], [2, 3], [3, 4], [4, 5]],
    )
    seqs = training_sequences(data, SEQ_FIELD, LEN_FIELD)
    assert seqs.users.tolist() == [1, 2]
    assert seqs.items.tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
    cut = windows(seqs, 2)
    spans = [cut.items[s : s + n + 1].tolist() for s, n in zip(cut.start.tolist(), cut.length.tolist())]
    assert spans == [[4, 5, 6], [2, 3, 4], [1, 2], [7, 8]]  # user 1: the last two transitions first


def test_overlapping_windows_from_the_end():
    data = _fake_dataset([1, 1, 1, 1, 1], [2, 3, 4, 5, 6], [[1], [1, 2], [2, 3], [3, 4], [4, 5]])
    cut = windows(training_sequences(data, SEQ_FIELD, LEN_FIELD), 3, overlap=1)
    spans = [cut.items[s : s + n + 1].tolist() for s, n in zip(cut.start.tolist(), cut.length.tolist())]
    assert spans == [[3, 4, 5, 6], [1, 2, 3, 4]] and cut.skip.tolist() == [1, 0]  # 3->4 is context in the last window
    with pytest.raises(UserError, match=r"window_overlap=3 must be in \[0, MAX_ITEM_LIST_LENGTH=3\)"):
        windows(training_sequences(data, SEQ_FIELD, LEN_FIELD), 3, overlap=3)


def test_rows_that_are_not_prefixes_are_refused():
    data = _fake_dataset([1, 1, 1], [2, 3, 4], [[1], [1, 2], [9, 3]])
    with pytest.raises(UserError, match="not the prefixes"):
        training_sequences(data, SEQ_FIELD, LEN_FIELD)
