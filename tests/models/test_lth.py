"""LTH models: one init scale for the user and item tables (joint_init), as LTH-MRS."""

import math
import sys

import pytest
import torch

from recbole_compress import UserError
from recbole_compress.embeddings.masked import original_of
from tests.conftest import TINY

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def dataset():
    from recbole.data import create_dataset

    from recbole_compress import Config

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["pytest"])
        return create_dataset(Config(model="LightGCN_LTH", dataset="ml-100k", config_dict=dict(TINY)))


def _tables(dataset, model_name, **settings):
    from recbole.utils import init_seed

    from recbole_compress import Config, get_model

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["pytest"])
        config = Config(model=model_name, dataset="ml-100k", config_dict={**TINY, **settings})
    init_seed(config["seed"], config["reproducibility"])
    model = get_model(model_name)(config, dataset)
    return [original_of(getattr(model, n), "table").detach() for n in ("user_embedding", "item_embedding")]


@pytest.mark.parametrize("model_name", ["LightGCN_LTH", "BPR_LTH"])
def test_joint_init_draws_both_tables_on_one_scale(dataset, model_name):
    d = 64
    users, items = _tables(dataset, model_name, joint_init=True)
    bound = math.sqrt(6.0 / (943 + 1682 + d))  # xavier-uniform over the joined (users + items) x d table
    for table in (users, items):
        assert torch.all(table[0] == 0)  # [PAD] row
        assert table[1:].abs().max() <= bound and table[1:].abs().max() > 0.99 * bound
    assert users[1:].std() / items[1:].std() == pytest.approx(1.0, abs=0.03)
    # RecBole's own init: a scale per table (the smaller user table starts larger)
    users, items = _tables(dataset, model_name, joint_init=False)
    assert users[1:].std() / items[1:].std() > 1.15


def test_joint_init_needs_masked_tables_of_one_width(dataset):
    from recbole_compress.models.lth import joint_init

    with pytest.raises(UserError, match="joint_init needs ID tables masked by LTH"):
        joint_init(torch.nn.Linear(2, 2))
