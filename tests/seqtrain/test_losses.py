"""The per-position output equals RecBole's prefix forward, and each all-position loss
equals a slow reference that runs one prefix sample at a time."""

import math

import pytest
import torch

from recbole_compress import Config
from recbole_compress.registry import get_model
from recbole_compress.seqtrain.losses import gbce_beta, make_loss, position_outputs
from recbole_compress.seqtrain.settings import AllPositionsSettings
from recbole_compress.seqtrain.sequences import AllPositionsLoader, training_sequences, windows
from tests.conftest import load_splits
from tests.seqtrain.helpers import ALL_POSITIONS

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def train_set():
    train, _, _ = load_splits("SASRec", ALL_POSITIONS)
    return train._dataset


def _model(name, train_set, **overrides):
    config = Config(model=name, dataset="ml-100k", config_dict={**ALL_POSITIONS, **overrides})
    torch.manual_seed(0)
    return get_model(name)(config, train_set).eval(), config


def _batch(model, train_set, neg_samples, size=6):
    cut = windows(training_sequences(train_set, model.ITEM_SEQ, model.ITEM_SEQ_LEN), model.max_seq_length)
    fields = {"user": model.USER_ID, "item_seq": model.ITEM_SEQ, "item_seq_len": model.ITEM_SEQ_LEN,
              "pos_item": model.POS_ITEM_ID, "neg_item": model.NEG_ITEM_ID}
    loader = AllPositionsLoader(cut, fields, size, int(model.n_items), neg_samples, length_bucketing=False)
    torch.manual_seed(1)
    index = torch.randperm(len(cut))[:size]
    return loader.batch(index)


@pytest.mark.parametrize("name", ["SASRec", "GRU4Rec", "SASRec_JPQ"])
def test_every_position_is_the_prefix_forward(train_set, name):
    model, _ = _model(name, train_set)
    batch = _batch(model, train_set, 0)
    seq, length = batch[model.ITEM_SEQ], batch[model.ITEM_SEQ_LEN]
    with torch.no_grad():
        every = position_outputs(model, seq, length)
        assert "gather_indexes" not in vars(model)  # the override is gone after the call
        width = model.max_seq_length
        for b in range(seq.shape[0]):
            for t in range(int(length[b])):
                prefix = torch.zeros(1, width, dtype=torch.long)  # RecBole's prefix sample, padded to W
                prefix[0, : t + 1] = seq[b, : t + 1]
                expected = model.forward(prefix, torch.tensor([t + 1]))
                torch.testing.assert_close(every[b, t], expected[0], rtol=1e-5, atol=1e-5)


def _reference(model, batch, loss, beta):
    """One prefix forward per position, then the loss written out per element (gBCE as
    the gSASRec code computes it: BCE on the transformed positive logit, in float64)."""
    seq, length = batch[model.ITEM_SEQ], batch[model.ITEM_SEQ_LEN]
    pos, neg = batch[model.POS_ITEM_ID], batch.interaction.get(model.NEG_ITEM_ID)
    table = model.item_embedding.weight
    terms = []
    for b in range(seq.shape[0]):
        for t in range(int(length[b])):
            h = model.forward(seq[b : b + 1, : t + 1], torch.tensor([t + 1]))[0]
            if loss == "CE":
                logits = table @ h
                terms.append(torch.logsumexp(logits, 0) - logits[pos[b, t]])
                continue
            s_pos = (h @ table[pos[b, t]]).double()
            term = 0.0
            if loss == "gBCE":
                p = torch.sigmoid(s_pos).clamp(1e-10, 1 - 1e-10)
                s_pos = torch.log(1.0 / (p.pow(-beta) - 1.0))
            term = -math.log(torch.sigmoid(s_pos))
            for j in neg[b, t]:
                term += -math.log(1.0 - torch.sigmoid((h @ table[j]).double()))
            terms.append(torch.tensor(term))
    return torch.stack([x.double() for x in terms]).mean()


@pytest.mark.parametrize("loss,neg", [("CE", 0), ("BCE", 1), ("BCE", 3), ("gBCE", 4)])
def test_loss_equals_the_slow_reference(train_set, loss, neg):
    model, config = _model("SASRec", train_set, loss_type=loss, neg_samples=max(neg, 1), gbce_t=0.75)
    settings = AllPositionsSettings.from_config(config)
    batch = _batch(model, train_set, neg)
    beta = gbce_beta(max(neg, 1), int(model.n_items) - 1, 0.75)
    with torch.no_grad():
        fast = make_loss(model, settings)(batch)
        slow = _reference(model, batch, loss, beta)
    torch.testing.assert_close(fast.double(), slow, rtol=1e-4, atol=1e-5)


def test_gbce_beta_spans_bce_to_the_sampling_rate():
    assert gbce_beta(4, 101, 0.0) == pytest.approx(1.0)
    assert gbce_beta(4, 101, 1.0) == pytest.approx(4 / 100)
    assert gbce_beta(256, 3417, 0.75) == pytest.approx(1 - 0.75 * (1 - 256 / 3416))
