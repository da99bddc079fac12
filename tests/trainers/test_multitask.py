"""Multi-task training end to end on the real Ali-CCP sample and the ml-100k funnel slice:
per-task results in summary.json, evaluation on the right subsets, LT4Rec's rounds and
masks, bad settings, the command line."""

import json
import sys

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from recbole_compress import run_recbole_compress
from recbole_compress.errors import UserError
from tests.multitask_helpers import TINY_MT, convert_samples, funnel_settings


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return convert_samples(tmp_path_factory.mktemp("mt-train"))


def run(model, dataset, root, out, **extra):
    settings = {"data_path": str(root), **TINY_MT, "output_dir": str(out), **extra}
    if dataset == "funnel-slice":
        settings = funnel_settings(settings)
    return run_recbole_compress(model, dataset, config_dict=settings)


@pytest.mark.parametrize("model", ["SharedBottom", "ESMM", "MMoE"])
def test_models_report_every_task(root, tmp_path, model, one_thread):
    result = run(model, "ali-ccp-sample", root, tmp_path / model)
    summary = json.loads((tmp_path / model / "summary.json").read_text())
    assert set(summary["test"]) == {"ctr_auc", "ctr_logloss", "cvr_auc", "ctcvr_auc"}
    assert summary["valid"] == result["best_valid_result"] and summary["valid_metric"] == "cvr_auc"
    assert summary["multitask"]["task_label_fields"] == ["click", "purchase"]
    tasks = summary["multitask"]["tasks"]
    assert tasks["click"]["test"] == {k: summary["test"][k] for k in ("ctr_auc", "ctr_logloss")}
    assert tasks["purchase"]["valid"] == {k: summary["valid"][k] for k in ("cvr_auc", "ctcvr_auc")}
    assert summary["multitask"]["mlp_used_fraction"] == 1.0 and summary["epochs"] == 2
    best = torch.load(tmp_path / model / "best.pth", weights_only=True)  # checkpoints are weights-only
    assert all(torch.is_tensor(v) for v in best.values())
    torch.load(tmp_path / model / "model.pt", weights_only=True)


def test_lt4rec_rounds_masks_and_joint_training(root, tmp_path, one_thread):
    out = tmp_path / "lt4rec"
    result = run("LT4Rec", "funnel-slice", root, out, prune_rounds=2, target_sparsity=0.75, min_mask_sparsity=0.4,
                 train_batch_size=512, eval_batch_size=2048, learning_rate=0.01)
    summary = result["summary"]
    rounds = summary["lt4rec"]["rounds"]
    assert [(r["task"], r["round"]) for r in rounds] == [(t, r) for t in ("click", "conversion") for r in range(3)]
    assert [r["remaining"] for r in rounds[:3]] == pytest.approx([1.0, 0.5, 0.25])
    for task in ("click", "conversion"):  # one chosen mask per task, among the sparse-enough rounds
        chosen = [r for r in rounds if r["task"] == task and r.get("chosen")]
        assert len(chosen) == 1 and chosen[0]["round"] >= 1
    mt = summary["multitask"]
    per_task = mt["mlp_weights_per_task"]
    assert per_task == [sum(layer["per_task"][t] for layer in mt["layers"]) for t in (0, 1)]
    assert max(per_task) <= mt["mlp_weights_used"] <= sum(per_task)
    assert mt["mlp_weights_used"] + mt["mlp_weights_shared"] == sum(per_task)
    assert (out / "lt4rec_rounds.csv").is_file() and (out / "lt4rec_rounds.png").stat().st_size > 1000
    assert summary["epochs"] > 6  # 2 tasks x 3 rounds + joint
    assert 0.5 < summary["test"]["ctr_auc"] <= 1.0


def test_evaluation_subsets_match_sklearn(root, tmp_path, one_thread):
    from recbole_compress.quick_start import build_config, load_data
    from recbole_compress.registry import get_model, get_trainer

    config = build_config("SharedBottom", "funnel-slice", config_dict=funnel_settings(
        {"data_path": str(root), **TINY_MT, "epochs": 1, "output_dir": str(tmp_path)}))
    _, train, valid, _ = load_data(config)
    model = get_model("SharedBottom")(config, train.dataset)
    trainer = get_trainer(config["MODEL_TYPE"], "SharedBottom")(config, model)
    got = trainer.evaluate(valid, load_best_model=False)
    model.eval()
    with torch.no_grad():
        p_ctr, p_cvr = (t.numpy() for t in model.predict_funnel(valid.rows))
    click, conv = valid.labels("click").numpy(), valid.labels("conversion").numpy()
    clicked = click == 1
    assert got["ctr_auc"] == pytest.approx(roc_auc_score(click, p_ctr), abs=1e-5)
    assert got["cvr_auc"] == pytest.approx(roc_auc_score(conv[clicked], p_cvr[clicked]), abs=1e-5)
    assert got["ctcvr_auc"] == pytest.approx(roc_auc_score(click * conv, p_ctr * p_cvr), abs=1e-5)
    assert 0 < clicked.sum() < len(click) and np.any(conv[clicked] == 0)


@pytest.mark.parametrize(
    "extra, words",
    [
        ({"prune_rounds": 0}, ["prune_rounds"]),
        ({"prune_rate": 1.5}, ["prune_rate", "(0, 1)"]),
        ({"prune_rounds": 1, "target_sparsity": 0.3}, ["min_mask_sparsity", "no pruning round"]),
        ({"mask_selection": "worst"}, ["mask_selection"]),
        ({"task_weights": [1.0]}, ["task_weights"]),
        ({"valid_metric": "recall@10"}, ["valid_metric", "cvr_auc"]),
        ({"ctr_loss": "hinge"}, ["ctr_loss", "focal"]),
        ({"focal_alpha": 1.5}, ["focal_alpha", "[0, 1]"]),
        ({"focal_gamma": -1}, ["focal_gamma"]),
        ({"feature_interaction": "cross"}, ["feature_interaction", "dot"]),
    ],
)
def test_bad_settings_fail_before_loading(root, extra, words):
    from recbole_compress.quick_start import build_config

    with pytest.raises(UserError) as err:
        build_config("LT4Rec", "ali-ccp-sample", config_dict={"data_path": str(root), **extra})
    assert all(w in str(err.value) for w in words)


def cli(args, monkeypatch):
    """``recbole-compress run`` in this process."""
    from recbole_compress.cli import main

    monkeypatch.setattr(sys, "argv", ["recbole-compress", "run", *args])
    return main(["run", *args])


def test_cli_trains_lt4rec_and_rejects_one_task(root, tmp_path, monkeypatch, capsys, one_thread):
    common = [f"--data_path={root}", "--show_progress=False", "--epochs=1", "--mlp_hidden_sizes=[8]", "--embedding_size=4",
              "--state=WARNING"]
    assert cli(["--model=LT4Rec", "--dataset=ali-ccp-sample", *common, "--prune_rounds=1",
                f"--output_dir={tmp_path}/run"], monkeypatch) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["model"] == "LT4Rec" and "cvr_auc" in summary["test"] and summary["lt4rec"]["rounds"]
    capsys.readouterr()
    assert cli(["--model=ESMM", "--dataset=ali-ccp-sample", *common, "--task_label_fields=[click]"], monkeypatch) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "one task" in err
