"""The CERP/PEP trainer's regime options: the authors' weight-decay threshold schedule and
the regulariser's reduction (ml-100k, tiny BPR_CERP models)."""

import sys

import pytest
import torch

from tests.conftest import TINY, load_splits

# no regulariser: its gradient on the thresholds would mix with the schedule's rise
SETTINGS = {**TINY, "embedding_size": 16, "train_batch_size": 2048, "meta_sparsity": 0.5, "meta_buckets": 0.05,
            "threshold_init": -10.0, "threshold_epochs": 1, "cerp_reg_weight": 0.0}

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data():
    return load_splits("BPR_CERP", SETTINGS)


def _trainer(data, tmp_path, extra):
    from recbole.utils import init_seed

    from recbole_compress import Config, get_model, get_trainer

    settings = {**SETTINGS, **extra, "output_dir": str(tmp_path)}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["pytest"])
        config = Config(model="BPR_CERP", dataset="ml-100k", config_dict=settings)
    config["checkpoint_dir"] = str(tmp_path)
    init_seed(config["seed"], config["reproducibility"])
    model = get_model("BPR_CERP")(config, data[0]._dataset)
    return get_trainer(config["MODEL_TYPE"], "BPR_CERP")(config, model)


def _stage1_thresholds(trainer, data) -> float:
    """Mean threshold logit after one stage-1 epoch (about 40 optimiser steps)."""
    trainer._stage = 1
    trainer.optimizer = trainer._build_optimizer()
    trainer._train_epoch(data[0], 0)
    return float(torch.cat([t.detach().flatten() for _, m in trainer._pruned() for t in m.thresholds()]).mean())


def test_decay_schedule_raises_thresholds_through_weight_decay_alone(data, tmp_path):
    steps = len(data[0])
    # no pace, no weight decay: the loss barely moves a threshold at sigmoid(-10)
    still = _stage1_thresholds(_trainer(data, tmp_path / "a", {"threshold_schedule": "pace", "threshold_pace": 0.0}), data)
    # the authors' mechanism: Adam weight decay on the thresholds rises ~lr per step
    decay = _trainer(data, tmp_path / "b", {"threshold_schedule": "decay", "threshold_learning_rate": 0.05})
    group = decay.optimizer.param_groups[-1]
    assert group["weight_decay"] == 1e-5 and group["lr"] == 0.05
    risen = _stage1_thresholds(decay, data)
    assert abs(still + 10.0) < 0.01
    assert 0.8 * 0.05 * steps < risen + 10.0 < 1.05 * 0.05 * steps


def test_pace_schedule_has_no_weight_decay_on_thresholds(data, tmp_path):
    trainer = _trainer(data, tmp_path, {"threshold_schedule": "pace", "threshold_pace": 0.1})
    assert trainer.optimizer.param_groups[-1]["weight_decay"] == 0.0
    risen = _stage1_thresholds(trainer, data)
    assert risen + 10.0 == pytest.approx(0.1 * len(data[0]), rel=0.05)


def test_regulariser_mean_is_the_sum_over_the_batch_entities(data, tmp_path):
    from recbole_compress.trainers.cerp import batch_ids, complementarity

    trainer = _trainer(data, tmp_path, {})
    batch = next(iter(data[0]))
    entities = sum(batch_ids(trainer.model, m, batch).numel() for _, m in trainer._pruned())
    total = complementarity(trainer.model, batch, 100.0, "sum")
    per_table = [complementarity_of(trainer, m, batch) for _, m in trainer._pruned()]
    mean = complementarity(trainer.model, batch, 100.0, "mean")
    assert float(total) == pytest.approx(sum(per_table), rel=1e-5)
    assert float(mean) == pytest.approx(sum(per_table) / entities, rel=1e-5)  # over users and items together
    assert float(total) < float(mean) < 0 and entities > 100


def complementarity_of(trainer, module, batch):
    from recbole_compress.trainers.cerp import batch_ids

    ids = batch_ids(trainer.model, module, batch)
    return float(-torch.tanh(100.0 * module(ids)).pow(2).sum())
