"""The lottery-ticket round loop on real data (ml-100k, few epochs)."""

import json
import math

import pytest
import torch

from recbole_compress import UserError, run_recbole_compress
from recbole_compress.embeddings.masked import masked_tensors
from recbole_compress.export import export_model, import_model, load_artifact
from recbole_compress.run import read_csv as read_table
from recbole_compress.trainers.lth import prune
from tests.conftest import TINY

LTH = {**TINY, "epochs": 2, "prune_rounds": 3, "prune_rate": 0.3, "n_layers": 1}


def _build(model_name, extra=None):
    from recbole.data import create_dataset, data_preparation

    from recbole_compress import Config, get_model

    from recbole.utils import init_seed

    config = Config(model=model_name, dataset="ml-100k", config_dict={**LTH, **(extra or {})})
    init_seed(config["seed"], config["reproducibility"])  # the split is random: same seed, same split
    dataset = create_dataset(config)
    train, valid, test = data_preparation(config, dataset)
    model = get_model(model_name)(config, train._dataset)
    return config, model, (train, valid, test)


def test_sparsity_after_k_rounds(tmp_path):
    result = run_recbole_compress("LightGCN_LTH", "ml-100k", config_dict=dict(LTH))
    rows = read_table(tmp_path / result["output_dir"] / "tickets.csv")
    assert [int(r["round"]) for r in rows] == [0, 1, 2, 3]
    for row in rows:
        k = int(row["round"])
        assert float(row["remaining"]) == pytest.approx((1 - 0.3) ** k, abs=1e-4)
    summary = result["summary"]
    assert summary["lth"]["rounds"] == 3
    assert (tmp_path / result["output_dir"] / "tickets.png").stat().st_size > 1000
    ticket = summary["lth"]["winning_ticket"]
    if ticket is None:  # no ticket: the dense round is the result
        assert summary["nonzero_parameters"] == summary["dense_parameters"]
    else:
        assert summary["nonzero_parameters"] < summary["dense_parameters"]
        assert ticket["valid_score"] >= float(rows[0]["valid_score"])


def test_global_prune_removes_smallest_over_both_tables():
    _, model, _ = _build("BPR_LTH")
    entries = list(masked_tensors(model))
    assert {name.split(".")[0] for name, _, _ in entries} == {"user_embedding", "item_embedding"}
    alive_before = sum(int(m.mask.sum()) for _, _, m in entries)
    threshold_values = torch.cat([o.detach().abs()[m.mask] for _, o, m in entries])
    removed = prune(model, 0.25)
    assert removed == round(0.25 * alive_before)
    kept = torch.cat([o.detach().abs()[m.mask] for _, o, m in entries])
    cut = torch.kthvalue(threshold_values, removed).values
    assert kept.min() >= cut  # every survivor is at least as large as every pruned weight


def test_random_and_per_table_pruning():
    _, model, _ = _build("BPR_LTH")
    prune(model, 0.5, scope="per_table", criterion="random", generator=torch.Generator().manual_seed(0))
    for _, _, mask in masked_tensors(model):
        alive, total = int(mask.mask.sum()), int(mask.prunable().sum())
        assert alive == total - round(0.5 * total)


def test_rewind_restores_initial_values_and_masks_stay_zero(tmp_path):
    from recbole_compress import get_trainer

    config, model, (train, valid, test) = _build("BPR_LTH", {"prune_rounds": 1, "output_dir": str(tmp_path / "run")})
    init = {n: o.detach().clone() for n, o, _ in masked_tensors(model)}
    trainer = get_trainer(config["MODEL_TYPE"], "BPR_LTH")(config, model)
    trained = {}
    original_train_round = trainer._train_round

    def spy(r, *args):
        if r == 1:  # after prune + rewind, before training round 1
            for name, original, mask in masked_tensors(model):
                assert torch.equal(original, init[name] * mask.mask)
        original_train_round(r, *args)
        trained[r] = {n: (o.detach().clone(), m.mask.clone()) for n, o, m in masked_tensors(model)}

    trainer._train_round = spy
    trainer.fit(train, valid, saved=True, show_progress=False)
    for name, (values, mask) in trained[1].items():
        assert torch.all(values[~mask] == 0)  # pruned weights exactly zero after training
        assert not torch.equal(values[mask], init[name][mask])  # survivors trained


def test_resume_gives_the_same_ticket(tmp_path):
    from recbole_compress.trainers import lth as lth_module

    settings = {**LTH, "output_dir": str(tmp_path / "full")}
    full = run_recbole_compress("BPR_LTH", "ml-100k", config_dict=settings)

    # a run killed while training round 2, then started again with the same command
    killed = {**LTH, "output_dir": str(tmp_path / "killed")}
    original = lth_module.LTHTrainerMixin._train_round

    def dies_in_round_2(self, r, *args):
        if r == 2:
            raise KeyboardInterrupt
        return original(self, r, *args)

    lth_module.LTHTrainerMixin._train_round = dies_in_round_2
    try:
        with pytest.raises(KeyboardInterrupt):
            run_recbole_compress("BPR_LTH", "ml-100k", config_dict=dict(killed))
    finally:
        lth_module.LTHTrainerMixin._train_round = original
    state = torch.load(tmp_path / "killed" / "lth" / "state.pt", weights_only=True)
    assert state["rounds_done"] == 2
    resumed = run_recbole_compress("BPR_LTH", "ml-100k", config_dict=dict(killed))

    a = read_table(tmp_path / "full" / "tickets.csv")
    b = read_table(tmp_path / "killed" / "tickets.csv")
    drop = {"epoch_time_s"}
    assert [{k: v for k, v in r.items() if k not in drop} for r in a] == [
        {k: v for k, v in r.items() if k not in drop} for r in b
    ]
    assert full["test_result"] == resumed["test_result"]


def test_other_settings_in_same_output_dir_refused(tmp_path):
    out = str(tmp_path / "run")
    run_recbole_compress("BPR_LTH", "ml-100k", config_dict={**LTH, "prune_rounds": 1, "output_dir": out})
    with pytest.raises(UserError, match="other settings"):
        run_recbole_compress("BPR_LTH", "ml-100k", config_dict={**LTH, "prune_rounds": 1, "prune_rate": 0.5, "output_dir": out})


def test_export_load_predictions_equal(tmp_path):
    result = run_recbole_compress("LightGCN_LTH", "ml-100k", config_dict={**LTH, "prune_rounds": 1, "ticket_tolerance": 1.0})
    out = tmp_path / result["output_dir"]
    artifact = load_artifact(out / "model.pt")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["lth"]["winning_ticket"]["round"] == 1  # tolerance 1.0: the sparsest round wins
    assert summary["model_bytes"] < summary["dense_model_bytes"]

    config, trained, (train, valid, test) = _build("LightGCN_LTH", {"prune_rounds": 1})
    checkpoint = torch.load(out / "lth" / "round-1.pth", weights_only=True)
    trained.load_state_dict(checkpoint["state_dict"])
    _, fresh, _ = _build("LightGCN_LTH", {"prune_rounds": 1})
    with torch.no_grad():
        for p in fresh.parameters():
            p.zero_()  # nothing of the fresh model's own values may survive the import
    import_model(fresh, artifact)
    trained.eval(), fresh.eval()
    batch = next(iter(test))[0]
    with torch.no_grad():
        assert torch.allclose(trained.full_sort_predict(batch), fresh.full_sort_predict(batch), atol=1e-6)

    # the user-facing loader: rebuilds model and data from the output folder alone
    from recbole_compress.quick_start import load_model

    loaded, _, loaded_test = load_model(out)
    loaded_batch = next(iter(loaded_test))[0]
    assert torch.equal(loaded_batch["user_id"], batch["user_id"])
    with torch.no_grad():
        assert torch.allclose(trained.full_sort_predict(batch), loaded.full_sort_predict(loaded_batch), atol=1e-6)


def test_all_weights_target_masks_sasrec_layers(tmp_path):
    config, model, _ = _build(
        "SASRec_LTH",
        {"prune_target": "all", "n_layers": 1, "hidden_size": 16, "inner_size": 32, "train_neg_sample_args": None},
    )
    names = [n for n, _, _ in masked_tensors(model)]
    assert any(n.startswith("item_embedding") for n in names)
    assert any("trm_encoder" in n for n in names) and any("position_embedding" in n for n in names)
    prune(model, 0.5)
    artifact = export_model(model)
    assert artifact["masked"]
    _, fresh, _ = _build(
        "SASRec_LTH",
        {"prune_target": "all", "n_layers": 1, "hidden_size": 16, "inner_size": 32, "train_neg_sample_args": None, "seed": 3},
    )
    import_model(fresh, artifact)
    for (n1, o1, m1), (n2, o2, m2) in zip(masked_tensors(model), masked_tensors(fresh)):
        assert n1 == n2 and torch.equal(m1.mask, m2.mask) and torch.equal(o1 * m1.mask, o2 * m2.mask)


def test_target_sparsity_derives_rounds():
    from recbole_compress import Config
    from recbole_compress.trainers.lth import LTHSettings

    config = Config(model="BPR_LTH", dataset="ml-100k", config_dict={"prune_rate": 0.2, "target_sparsity": 0.9})
    assert LTHSettings(config).rounds == math.ceil(math.log(0.1) / math.log(0.8))
