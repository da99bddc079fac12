"""train_mode in the Config: defaults, the loss moved to the trainer, one-line refusals."""

import pytest

from recbole_compress import Config, UserError
from recbole_compress.seqtrain.settings import AllPositionsSettings
from tests.seqtrain.helpers import ALL_POSITIONS, SEQ


def _config(model="SASRec", **settings):
    return Config(model=model, dataset="ml-100k", config_dict=settings)


def test_prefix_is_the_default_and_leaves_recbole_alone():
    config = _config(**SEQ)
    assert config["train_mode"] == "prefix" and config["loss_type"] == "CE"
    assert AllPositionsSettings.from_config(config) is None


@pytest.mark.parametrize("loss", ["CE", "BCE", "gBCE"])
def test_all_positions_builds_the_model_with_ce_and_keeps_the_loss(loss):
    config = _config(**{**ALL_POSITIONS, "loss_type": loss, "neg_samples": 2})
    assert config["loss_type"] == "CE" and config["all_positions_loss"] == loss
    assert config["train_neg_sample_args"]["distribution"] == "none"  # RecBole's sampler is off
    settings = AllPositionsSettings.from_config(config)
    assert (settings.loss, settings.neg_samples, settings.batch_size) == (loss, 2, 64)


def test_other_models_keep_their_own_bce():
    assert _config("CDAE", loss_type="BCE")["loss_type"] == "BCE"
    assert _config("TransRec", **SEQ)["loss_type"] == "BCE"


def test_compressed_and_composed_backbones_are_accepted():
    for model in ("SASRec_JPQ", "GRU4Rec_CERP", "SASRec_QR_LTH"):
        assert _config(model, **ALL_POSITIONS, memory_budget=0.2)["all_positions_loss"] == "BCE"


@pytest.mark.parametrize(
    "model,settings,message",
    [
        ("BERT4Rec", {"train_mode": "all_positions", "loss_type": "CE"}, "already trains on its masked positions"),
        ("BPR", {"train_mode": "all_positions"}, "supports SASRec, GRU4Rec"),
        ("NARM", {"train_mode": "all_positions", "loss_type": "CE"}, "not NARM"),
        ("SASRec", {"loss_type": "BCE"}, "add --train_mode=all_positions"),
        ("SASRec", {"train_mode": "every"}, "is not one of prefix, all_positions"),
        ("SASRec", {"train_mode": "all_positions", "loss_type": "BPR"}, "not an all_positions loss"),
        ("SASRec", {"train_mode": "all_positions", "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1}},
         "remove it and set --neg_samples"),
        ("SASRec", {"train_mode": "all_positions", "loss_type": "gBCE", "gbce_t": 2}, "gbce_t=2 is outside"),
        ("SASRec", {"train_mode": "all_positions", "neg_samples": 0}, "neg_samples=0 must be"),
        ("SASRec", {"train_mode": "all_positions", "window_overlap": 50}, r"window_overlap=50 must be .* \[0, MAX_ITEM_LIST_LENGTH="),
        ("SASRec", {"train_mode": "all_positions", "window_overlap": -1}, "window_overlap=-1 must be"),
    ],
)
def test_bad_settings_fail_in_one_line(model, settings, message):
    with pytest.raises(UserError, match=message) as err:
        _config(model, **{**SEQ, **settings})
    assert "\n" not in str(err.value)
