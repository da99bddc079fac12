"""Config: values read as data, unknown keys, packaged property files, value checks."""

import warnings
from pathlib import Path

import pytest

from recbole_compress.config_keys import UnknownConfigKey, unknown_key_message
from recbole_compress.errors import UserError
from recbole_compress.run import build_config


def test_misspelled_key_warns_with_the_closest_known_key():
    with pytest.warns(UnknownConfigKey, match=r"'prune_rat' \(did you mean 'prune_rate'\?\)"):
        build_config("BPR_LTH", "ml-100k", config_dict={"prune_rat": 0.3})


def test_known_keys_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownConfigKey)
        # a RecBole key, one of ours, and one only RecBole's code reads
        build_config("BPR_LTH", "ml-100k", config_dict={"learning_rate": 0.01, "prune_rate": 0.3, "valid_neg_sample_args": None})


def test_strict_makes_an_unknown_key_an_error():
    with pytest.raises(UserError, match="unknown config key 'prune_rat'.*drop --strict"):
        build_config("BPR_LTH", "ml-100k", config_dict={"prune_rat": 0.3}, strict=True)


def test_a_key_nothing_is_close_to_says_so():
    assert "no property file" in unknown_key_message("zzzqqq")


def test_packaged_property_files_are_found_from_any_directory(tmp_path):
    assert not (tmp_path / "properties").exists()  # the tests run in a temporary directory
    config = build_config("LightGCN_LTH", "ml-100k", ["properties/paper/lth_media.yaml"])
    assert config["embedding_size"] == 32 and config["prune_rate"] == 0.1  # the paper's values


def test_a_local_file_wins_over_the_packaged_one(tmp_path):
    local = tmp_path / "properties" / "paper"
    local.mkdir(parents=True)
    (local / "lth_media.yaml").write_text("embedding_size: 16\n")
    assert build_config("LightGCN_LTH", "ml-100k", ["properties/paper/lth_media.yaml"])["embedding_size"] == 16


def test_missing_config_file_is_one_line():
    with pytest.raises(UserError, match="'properties/paper/nope.yaml' not found"):
        build_config("BPR", "ml-100k", ["properties/paper/nope.yaml"])


def test_malformed_yaml_names_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 3\nlearning_rate: [0.1\nseed: 1\n")
    with pytest.raises(UserError) as err:
        build_config("BPR", "ml-100k", [str(bad)])
    assert "bad.yaml" in str(err.value) and "line 3" in str(err.value) and "\n" not in str(err.value)


def test_yaml_python_tags_are_refused_not_run(tmp_path):
    marker = tmp_path / "PWNED"
    bad = tmp_path / "evil.yaml"
    bad.write_text(f"epochs: !!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path ['{marker}']]\n")
    with pytest.raises(UserError, match="evil.yaml"):
        build_config("BPR", "ml-100k", [str(bad)])
    assert not marker.exists()


def test_config_dict_values_are_data_not_code(tmp_path):
    marker = tmp_path / "PWNED"
    payload = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    config = build_config("BPR", "ml-100k", config_dict={"wandb_project": payload})
    assert config["wandb_project"] == payload and not marker.exists()


def test_the_callers_settings_are_not_changed():
    settings = {"train_neg_sample_args": {"distribution": "uniform", "sample_num": 5}}
    overrides = {"train_neg_sample_args": {"distribution": "uniform", "sample_num": 3}}
    config = build_config("BPR", "ml-100k", config_dict=settings)
    assert config["train_neg_sample_args"]["candidate_num"] == 0  # RecBole filled its copy
    assert settings == {"train_neg_sample_args": {"distribution": "uniform", "sample_num": 5}}
    config = build_config("BPR", "ml-100k", overrides=overrides)
    assert config["train_neg_sample_args"]["sample_num"] == 3 and "alpha" not in overrides["train_neg_sample_args"]


def test_yaml_floats_as_recbole_reads_them(tmp_path):
    file = tmp_path / "f.yaml"
    file.write_text("learning_rate: 1e-3\n")
    assert build_config("BPR", "ml-100k", [str(file)])["learning_rate"] == pytest.approx(0.001)


@pytest.mark.parametrize(
    "settings, words",
    [
        ({"epochs": "abc"}, ["epochs='abc'", "integer"]),
        ({"epochs": 0}, ["epochs=0", "greater than 0"]),
        ({"learning_rate": -1.0}, ["learning_rate=-1.0", "greater than 0"]),
        ({"prune_rate": "abc"}, ["prune_rate"]),
        ({"prune_rounds": "abc"}, ["prune_rounds"]),
        ({"embedding_size": 12.5}, ["embedding_size=12.5", "integer"]),
        ({"reproducibility": "maybe"}, ["reproducibility", "true or false"]),
    ],
)
def test_values_of_the_wrong_kind_or_range_are_one_line(settings, words):
    with pytest.raises(UserError) as err:
        build_config("BPR_LTH", "ml-100k", config_dict=settings)
    assert all(w in str(err.value) for w in words) and "\n" not in str(err.value)


def test_ordering_by_time_needs_the_time_column(tmp_path):
    folder = tmp_path / "d" / "notime"
    folder.mkdir(parents=True)
    (folder / "notime.inter").write_text("user_id:token\titem_id:token\n1\t2\n")
    from recbole_compress.config import check_dataset

    config = build_config("BPR", "notime", config_dict={"data_path": str(tmp_path / "d"), "load_col": None,
                                                         "eval_args": {"order": "TO", "split": {"LS": "valid_and_test"}}})
    with pytest.raises(UserError, match="no such column.*order: RO"):
        check_dataset(config)


def test_load_col_naming_a_missing_column_warns(tmp_path):
    from recbole_compress.config import check_dataset
    from recbole_compress.errors import Notice

    config = build_config("BPR", "ml-100k", config_dict={"load_col": {"inter": ["user_id", "item_id", "ratng"]}})
    with pytest.warns(Notice, match="load_col names 'ratng'"):
        check_dataset(config)


def test_repository_paths_are_not_in_messages():
    source = Path(__file__).resolve().parents[1] / "recbole_compress"
    for file in source.rglob("*.py"):
        assert "../shared" not in file.read_text(), f"{file} names a path only this repository's layout has"
