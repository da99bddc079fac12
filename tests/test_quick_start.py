import json

import pytest

from recbole_compress import UserError, run_recbole_compress
from tests.conftest import TINY

SMALL_SASREC = {"train_neg_sample_args": None, "n_layers": 1, "n_heads": 1, "hidden_size": 16, "inner_size": 32, "MAX_ITEM_LIST_LENGTH": 20}


@pytest.mark.parametrize(
    "model, extra",
    [("BPR", {}), ("LightGCN", {"n_layers": 2}), ("SASRec", SMALL_SASREC)],
)
def test_same_result_as_recbole_run_recbole(model, extra):
    from recbole.quick_start import run_recbole

    config = {**TINY, **extra}
    ours = run_recbole_compress(model, "ml-100k", config_dict=dict(config))
    theirs = run_recbole(model=model, dataset="ml-100k", config_dict=dict(config))
    assert dict(ours["test_result"]) == dict(theirs["test_result"])
    assert dict(ours["best_valid_result"]) == dict(theirs["best_valid_result"])


def test_summary_json_has_the_promised_fields(tmp_path):
    result = run_recbole_compress("BPR", "ml-100k", config_dict=dict(TINY))
    summary = json.loads((tmp_path / result["output_dir"] / "summary.json").read_text())
    for key in [
        "model", "dataset", "seed", "valid", "test", "trainable_parameters", "nonzero_parameters",
        "model_bytes", "dense_model_bytes", "wall_time_s",
    ]:
        assert key in summary, key
    assert "ndcg@10" in summary["test"]
    assert summary["schema_version"] == 2 and summary["valid_metric"] == summary["valid_metric"].lower()
    assert all(k == k.lower() for k in [*summary["valid"], *summary["test"]])
    assert set(summary["versions"]) == {"recbole_compress", "recbole", "torch", "python"}
    assert summary["device"] == "cpu" and "git_commit" in summary
    assert summary["artifact"] == "model.pt"  # relative to the output folder
    assert summary["compression_ratio"] == 1.0
    # a dense model: exported bytes = its float32 tables
    n = summary["trainable_parameters"]
    assert summary["model_bytes"] == summary["dense_model_bytes"] == 4 * n


def test_same_command_same_output_dir():
    a = run_recbole_compress("BPR", "ml-100k", config_dict=dict(TINY))
    b = run_recbole_compress("BPR", "ml-100k", config_dict=dict(TINY))
    c = run_recbole_compress("BPR", "ml-100k", config_dict={**TINY, "learning_rate": 0.01})
    assert a["output_dir"] == b["output_dir"] != c["output_dir"]


def test_missing_dataset_names_path_and_convert_command(tmp_path):
    with pytest.raises(UserError) as err:
        run_recbole_compress("BPR", "yelp2018", config_dict={**TINY, "data_path": str(tmp_path / "nowhere")})
    message = str(err.value)
    assert "nowhere" in message and "recbole-compress convert" in message and "\n" not in message
    assert "shared" not in message  # a path only this repository's layout has


def test_malformed_dataset_is_a_clear_error(tmp_path):
    folder = tmp_path / "data" / "broken"
    folder.mkdir(parents=True)
    (folder / "broken.inter").write_text("user_id:token\titem_id:token\n1\t2\n3\n\x00\t\t\t\n")
    with pytest.raises(UserError) as err:
        run_recbole_compress(
            "BPR", "broken", config_dict={**TINY, "data_path": str(tmp_path / "data"), "load_col": {"inter": ["user_id", "item_id", "rating"]}}
        )
    assert "broken" in str(err.value)


def test_lottery_ticket_summary_paths_are_relative(tmp_path):
    result = run_recbole_compress("BPR_LTH", "ml-100k", config_dict={**TINY, "prune_rounds": 1})
    summary = result["summary"]
    assert summary["lth"]["table"] == "tickets.csv" and summary["lth"]["plot"] == "tickets.png"
    out = tmp_path / result["output_dir"]
    assert (out / summary["lth"]["table"]).is_file() and (out / summary["lth"]["plot"]).is_file()
    assert summary["compression_ratio"] == round(summary["dense_model_bytes"] / summary["model_bytes"], 4)


def test_a_failed_run_leaves_no_folder_behind(tmp_path):
    with pytest.raises(UserError):
        run_recbole_compress("BPR", "nosuchdata", config_dict={**TINY, "output_dir": str(tmp_path / "run")})
    assert not (tmp_path / "run").exists()
