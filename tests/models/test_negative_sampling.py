"""k negatives per positive for the general models (BPR, LightGCN and their compressed
versions): RecBole's pair-wise sampling with ``train_neg_sample_args: {sample_num: k}``
repeats each positive k times with one negative each, and BPR's loss is the mean over
those rows -- the authors' CERP-LightGCN loss (5 rows per positive, mean over rows)."""

import pytest
import torch

from tests.conftest import TINY, load_splits

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("model_name", ["BPR", "LightGCN_CERP"])
def test_sample_num_k_gives_k_rows_per_positive_and_the_mean_loss(model_name):
    settings = {**TINY, "embedding_size": 8, "train_batch_size": 600, "memory_budget": 0.5,
                "train_neg_sample_args": {"distribution": "uniform", "sample_num": 3}}
    train, _, _ = load_splits(model_name, settings)
    batch = next(iter(train))
    users, items, negatives = (batch[k] for k in ("user_id", "item_id", "neg_item_id"))
    assert len(users) == 600  # 200 positives x 3 rows
    pairs = {}
    for u, i, n in zip(users.tolist(), items.tolist(), negatives.tolist()):
        pairs.setdefault((u, i), []).append(n)
    assert all(len(v) % 3 == 0 for v in pairs.values()) and sum(map(len, pairs.values())) == 600

    from recbole.model.general_recommender import BPR

    from recbole_compress import Config

    import sys

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["pytest"])
        config = Config(model="BPR", dataset="ml-100k", config_dict={**settings})
    model = BPR(config, train._dataset)
    u, p, n = model.user_embedding(users), model.item_embedding(items), model.item_embedding(negatives)
    rows = -torch.nn.functional.logsigmoid((u * p).sum(-1) - (u * n).sum(-1))
    assert float(model.calculate_loss(batch)) == pytest.approx(float(rows.mean()), rel=1e-4)
