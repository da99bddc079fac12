"""Multi-task loading on RecBole's Dataset: the real Ali-CCP / AliExpress samples and a
slice of the ml-100k funnel; label checks."""

import pytest
import torch

from recbole_compress.errors import UserError
from tests.multitask_helpers import convert_samples, funnel_settings, load


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return convert_samples(tmp_path_factory.mktemp("mt-data"))


def test_ali_ccp_sample_loads_with_its_splits(root, one_thread):
    config, train, valid, test = load("SharedBottom", "ali-ccp-sample", root)
    assert [len(x.rows) for x in (train, valid, test)] == [100, 50, 50]
    assert config["task_label_fields"] == ["click", "purchase"]
    clicks = sum(int(x.labels("click").sum()) for x in (train, valid, test))
    assert clicks == 12 and int(test.labels("purchase").sum()) == 1
    batch = next(iter(train))
    assert len(batch) == 32 and batch["D109_14"].dtype == torch.float and batch["f101"].dtype == torch.long
    assert sum(len(b) for b in valid) == 50


def test_aliexpress_sample_splits_at_random(root, one_thread):
    config, train, valid, test = load("MMoE", "aliexpress-sample", root)
    assert [len(x.rows) for x in (train, valid, test)] == [96, 12, 12]
    assert config["task_label_fields"] == ["click", "conversion"]
    assert set(train.labels("conversion").unique().tolist()) <= {0.0, 1.0}


def test_funnel_slice_joins_user_and_item_features(root, one_thread):
    _, train, valid, test = load("ESMM", "funnel-slice", root, funnel_settings())
    assert sum(len(x.rows) for x in (train, valid, test)) == 9000
    batch = next(iter(train))
    for field in ("age", "gender", "occupation", "release_year"):
        assert field in batch.interaction
    assert batch["class"].dim() == 2  # token_seq genres
    # conversions only among clicks
    assert bool((batch["conversion"] <= batch["click"]).all())


@pytest.mark.parametrize(
    "labels, words",
    [
        (["click", "nosuchlabel"], ["nosuchlabel", "not in dataset"]),
        (["click", "D109_14"], ["D109_14", "not binary"]),
        (["click", "f101"], ["f101", "token"]),
    ],
)
def test_bad_label_fields(root, labels, words, one_thread):
    with pytest.raises(UserError) as err:
        load("SharedBottom", "ali-ccp-sample", root, {"task_label_fields": labels})
    assert all(w in str(err.value) for w in words) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "labels, words", [(["click"], ["one task"]), (["click", "purchase", "x"], ["exactly 2"]), (None, ["not set"])]
)
def test_task_count_is_checked_before_loading(root, labels, words):
    from recbole_compress.quick_start import build_config

    with pytest.raises(UserError) as err:
        build_config("LT4Rec", "ali-ccp-sample", config_dict={"data_path": str(root), "task_label_fields": labels})
    assert all(w in str(err.value) for w in words)


def test_missing_funnel_names_its_convert_command(tmp_path):
    from recbole_compress.config import check_dataset
    from recbole_compress.quick_start import build_config

    config = build_config("LT4Rec", "ml-100k-funnel", config_dict={"data_path": str(tmp_path)})
    with pytest.raises(UserError, match=r"convert funnel .*dataset_example/ml-100k"):
        check_dataset(config)
