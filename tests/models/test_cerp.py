"""BPR_CERP, LightGCN_CERP, SASRec_CERP and the PEP / QR baselines on real data (ml-100k, tiny runs)."""

import json

import pytest
import torch

from recbole_compress import UserError, run_recbole_compress
from recbole_compress.embeddings.cerp import CERPEmbedding, PEPEmbedding, QREmbedding
from recbole_compress.export import export_model, import_model
from tests.conftest import TINY, load_splits

# ml-100k: 943 users, 1682 items; d=16 keeps every step tiny. Thresholds rise fast
# enough (pace 0.2 per step, about 40 steps per epoch) to cross the budget in stage 1.
SMALL = {**TINY, "embedding_size": 16, "n_layers": 1, "train_batch_size": 2048, "threshold_pace": 0.2,
         "threshold_epochs": 3, "memory_budget": 0.2}
DENSE = (943 + 1682) * 16  # user + item tables, [PAD] rows excluded


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data():
    """The general-model split, loaded once."""
    return load_splits("BPR_CERP", SMALL)


def _build(model_name, data, extra=None, tmp_path=None):
    import sys

    from recbole.utils import init_seed

    from recbole_compress import Config, get_model, get_trainer

    settings = {**SMALL, **(extra or {})}
    if tmp_path is not None:
        settings["output_dir"] = str(tmp_path / model_name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["pytest"])
        config = Config(model=model_name, dataset="ml-100k", config_dict=settings)
    config["checkpoint_dir"] = settings.get("output_dir", "saved")
    init_seed(config["seed"], config["reproducibility"])
    model = get_model(model_name)(config, data[0]._dataset)
    return config, model, get_trainer(config["MODEL_TYPE"], model_name)


def test_lightgcn_cerp_meets_the_budget_exactly_and_exports(tmp_path):
    result = run_recbole_compress("LightGCN_CERP", "ml-100k", config_dict=dict(SMALL))
    summary = json.loads((tmp_path / result["output_dir"] / "summary.json").read_text())
    budget = summary["budget"]
    assert budget["budget"] == round(0.2 * DENSE) == budget["nonzero"] == summary["nonzero_parameters"]
    assert budget["budget_met_by_thresholds"] and budget["stage1_nonzeros"] <= budget["budget"]
    assert set(budget["tables"]) == {"user_embedding", "item_embedding"}
    assert sum(t["budget"] for t in budget["tables"].values()) == budget["budget"]
    assert summary["model_bytes"] < summary["dense_model_bytes"] and summary["test"]["ndcg@10"] > 0
    assert budget["bytes"] < 0.3 * budget["dense_bytes"]
    assert summary["epochs"] == budget["stage1_epochs"] + 1


def test_count_budget_and_bpr(data, tmp_path):
    config, model, trainer_class = _build("BPR_CERP", data, {"memory_budget": 7001}, tmp_path)
    assert isinstance(model.user_embedding, CERPEmbedding) and isinstance(model.item_embedding, CERPEmbedding)
    assert model.user_embedding.budget + model.item_embedding.budget == 7001
    trainer = trainer_class(config, model)
    trainer.fit(data[0], data[1], saved=False)
    assert trainer.extra_summary()["budget"]["nonzero"] == 7001


def test_thresholds_prune_and_stage2_restarts_from_the_initial_values_with_the_mask_fixed(data, tmp_path):
    config, model, trainer_class = _build("LightGCN_CERP", data, {"threshold_epochs": 2, "threshold_pace": 0.02}, tmp_path)
    table = model.item_embedding
    initial = {n: getattr(table.parametrizations, n).original.detach().clone() for n in table.parts}
    counts, at_stage2 = [table.parameter_count()], {}
    trainer = trainer_class(config, model)
    original_epoch, original_reset = trainer._train_epoch, trainer._reset

    def train_epoch(*args, **kwargs):
        try:
            return original_epoch(*args, **kwargs)
        finally:
            if trainer._stage == 1:
                counts.append(table.parameter_count())

    def reset(train_data):
        if trainer._stage == 2 and not at_stage2:
            at_stage2.update({n: getattr(table.parametrizations, n).original.detach().clone() for n in table.parts})
        return original_reset(train_data)

    trainer._train_epoch, trainer._reset = train_epoch, reset
    trainer.fit(data[0], data[1], saved=False)
    assert counts[0] > counts[1] > counts[2]  # sparsity rises epoch by epoch (budget not yet met: cap of 2)
    assert not trainer.budget_met_by_thresholds and table.parameter_count() == table.budget
    for name in table.parts:
        mask = table.mask_of(name)
        assert torch.equal(at_stage2[name], initial[name] * mask)  # rewound to the ORIGINAL values
        trained = getattr(table.parametrizations, name).original
        assert torch.all(trained[~mask] == 0) and not torch.equal(trained[mask], initial[name][mask])
    # more optimiser steps (stage 2's optimiser, hooks included) leave pruned entries at zero
    before = table.parameter_count()
    for batch, _ in zip(data[0], range(3)):
        trainer.optimizer.zero_grad()
        model.calculate_loss(batch).backward()
        trainer.optimizer.step()
    assert table.parameter_count() == before
    assert all(torch.all(getattr(table.parametrizations, n).original[~table.mask_of(n)] == 0) for n in table.parts)


def test_export_import_predictions_equal(data, tmp_path):
    config, model, trainer_class = _build("LightGCN_CERP", data, {"memory_budget": 0.05}, tmp_path)
    trainer = trainer_class(config, model)
    trainer.fit(data[0], data[1], saved=False)
    artifact = export_model(model)
    assert artifact["modules"] == {"user_embedding": "CERPEmbedding", "item_embedding": "CERPEmbedding"}
    assert "item_embedding::mapping" in artifact["tensors"]
    _, fresh, _ = _build("LightGCN_CERP", data, {"memory_budget": 0.05, "seed": 7})
    import_model(fresh, artifact)
    model.eval(), fresh.eval()
    batch = next(iter(data[2]))[0]
    with torch.no_grad():
        assert torch.allclose(model.full_sort_predict(batch), fresh.full_sort_predict(batch), atol=1e-6)


def test_pep_and_qr_baselines_at_the_same_budget(data, tmp_path):
    config, model, trainer_class = _build("BPR_PEP", data, {"memory_budget": 0.05}, tmp_path)
    assert isinstance(model.item_embedding, PEPEmbedding)
    trainer = trainer_class(config, model)
    trainer.fit(data[0], data[1], saved=False)
    assert trainer.extra_summary()["budget"]["nonzero"] == round(0.05 * DENSE)
    _, qr, _ = _build("LightGCN_QR", data, {"memory_budget": 0.2})
    assert isinstance(qr.item_embedding, QREmbedding)
    used = qr.user_embedding.parameter_count() + qr.item_embedding.parameter_count()
    assert 0.95 * round(0.2 * DENSE) <= used <= round(0.2 * DENSE)


def test_sasrec_compresses_only_its_item_table(tmp_path):
    settings = {**SMALL, "n_heads": 2, "hidden_size": 16, "inner_size": 32, "MAX_ITEM_LIST_LENGTH": 10,
                "user_inter_num_interval": "[20,40]", "memory_budget": 0.3}
    result = run_recbole_compress("SASRec_CERP", "ml-100k", config_dict=settings)
    budget = result["summary"]["budget"]
    assert set(budget["tables"]) == {"item_embedding"}
    assert budget["nonzero"] == budget["budget"] == round(0.3 * budget["tables"]["item_embedding"]["dense_parameters"])


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"memory_budget": 1}, r"memory_budget=1 is neither a fraction .* in \(0, 1\) nor a whole count"),
        ({"memory_budget": 0}, "memory_budget=0 is neither"),
        ({"memory_budget": 2.5}, "memory_budget=2.5 is neither"),
        ({"memory_budget": "lots"}, "memory_budget=lots is neither"),
        ({"meta_combine": "product"}, "meta_combine=product is not one of sum, concat"),
        ({"meta_density": 2}, r"meta_density=2.0 is outside"),
    ],
)
def test_bad_settings_fail_before_data_loading(settings, message, monkeypatch):
    import recbole_compress.quick_start as quick_start

    monkeypatch.setattr(quick_start, "load_data", lambda config: pytest.fail("data loaded before the check"))
    with pytest.raises(UserError, match=message):
        run_recbole_compress("LightGCN_CERP", "ml-100k", config_dict={**SMALL, **settings})


@pytest.mark.parametrize(
    "model, settings, message",
    [
        ("BPR_CERP", {"memory_budget": DENSE}, rf"memory_budget={DENSE} is not below the dense size .* \({DENSE}\)"),
        ("BPR_CERP", {"meta_buckets": 30}, r"meta_buckets=30: b\*b=900 < 943 entities"),
        ("BPR_CERP", {"meta_buckets": 42, "memory_budget": 0.5}, r"more than the .* elements its meta tables hold \(b=42"),
        ("BPR_QR", {"memory_budget": 0.01}, "below the smallest quotient-remainder pair"),
        ("BPR_PEP", {"memory_budget": 20}, "less than one row of 16"),
    ],
)
def test_budgets_that_cannot_be_met_are_errors(data, model, settings, message):
    with pytest.raises(UserError, match=message):
        _build(model, data, settings)


class _Interrupted(Exception):
    pass


def test_a_rerun_resumes_after_the_pruning_stage_and_skips_a_finished_run(tmp_path, monkeypatch):
    from recbole_compress.trainers.cerp import STATE_FILE, BudgetTrainerMixin

    settings = {**SMALL, "epochs": 2, "output_dir": str(tmp_path / "run")}

    def interrupt(epoch, score):  # RecBole calls it after each stage-2 evaluation
        raise _Interrupted

    with pytest.raises(_Interrupted):
        run_recbole_compress("BPR_CERP", "ml-100k", config_dict=settings, callback_fn=interrupt)
    assert (tmp_path / "run" / STATE_FILE).is_file()

    def no_stage1(*args, **kwargs):
        raise AssertionError("the pruning stage ran again")

    monkeypatch.setattr(BudgetTrainerMixin, "_stage1", no_stage1)
    resumed = run_recbole_compress("BPR_CERP", "ml-100k", config_dict=settings)["summary"]
    assert resumed["budget"]["nonzero"] == resumed["budget"]["budget"]
    assert resumed["budget"]["stage1_epochs"] >= 1

    # finished: a third run trains nothing and reports the same test result
    import recbole.trainer.trainer as recbole_trainer

    monkeypatch.setattr(recbole_trainer.Trainer, "_train_epoch", no_stage1)
    again = run_recbole_compress("BPR_CERP", "ml-100k", config_dict=settings)["summary"]
    assert again["test"] == resumed["test"]

    with pytest.raises(UserError, match="other settings"):
        run_recbole_compress("BPR_CERP", "ml-100k", config_dict={**settings, "seed": 9})


# -- the authors' form of the budget: meta_sparsity with meta_buckets ----------------------------

def _meta(extra):
    """SMALL without memory_budget (stating both forms is an error) plus ``extra``."""
    return {k: v for k, v in {**SMALL, **extra}.items() if k != "memory_budget"}


def test_meta_sparsity_keeps_the_authors_count_in_cerp_and_pep(data, tmp_path):
    import math

    settings = {"meta_sparsity": 0.8, "meta_buckets": 0.05, "threshold_epochs": 1}
    expected = {}
    for name, entities in (("user_embedding", 943), ("item_embedding", 1682)):
        b = max(math.ceil(0.05 * entities), math.isqrt(entities - 1) + 1)  # 48, 85
        expected[name] = round(0.2 * 2 * b * 16)
    counts = {}
    for model_name in ("BPR_CERP", "BPR_PEP"):
        config, model, trainer_class = _build_meta(model_name, data, settings, tmp_path)
        assert {n: getattr(model, n).budget for n in expected} == expected
        trainer = trainer_class(config, model)
        trainer.fit(data[0], data[1], saved=False)
        budget = trainer.extra_summary()["budget"]
        counts[model_name] = budget["nonzero"]
        assert budget["nonzero"] == sum(expected.values()) and budget["meta_sparsity"] == 0.8
        # both forms reported: the meta tables' sparsity reached, and the share of the full tables
        assert budget["meta_table_sparsity"] == pytest.approx(0.8, abs=1e-4)
        assert budget["full_table_fraction"] == pytest.approx(sum(expected.values()) / DENSE)
    assert counts["BPR_CERP"] == counts["BPR_PEP"]


def _build_meta(model_name, data, settings, tmp_path):
    import sys

    from recbole.utils import init_seed

    from recbole_compress import Config, get_model, get_trainer

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["pytest"])
        config = Config(model=model_name, dataset="ml-100k",
                        config_dict={**_meta(settings), "output_dir": str(tmp_path / model_name)})
    config["checkpoint_dir"] = str(tmp_path / model_name)
    init_seed(config["seed"], config["reproducibility"])
    model = get_model(model_name)(config, data[0]._dataset)
    return config, model, get_trainer(config["MODEL_TYPE"], model_name)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"meta_sparsity": 0.9}, "meta_sparsity counts over the meta tables, whose rows meta_buckets sets"),
        ({"meta_sparsity": 1.0, "meta_buckets": 50}, r"meta_sparsity=1.0 is outside \(0, 1\)"),
        ({"meta_sparsity": 0.9, "meta_buckets": 50, "memory_budget": 0.1}, "give one: memory_budget"),
        ({"meta_buckets": 2.5}, "meta_buckets=2.5 is neither a whole count >= 1 nor a fraction"),
        ({"threshold_schedule": "fast"}, "threshold_schedule=fast is not one of pace, decay"),
        ({"cerp_reg_reduction": "max"}, "cerp_reg_reduction=max is not one of sum, mean"),
    ],
)
def test_bad_budget_forms_fail_before_data_loading(settings, message, monkeypatch):
    import recbole_compress.quick_start as quick_start

    monkeypatch.setattr(quick_start, "load_data", lambda config: pytest.fail("data loaded before the check"))
    base = _meta({}) if "memory_budget" not in settings and "meta_sparsity" in settings else dict(SMALL)
    with pytest.raises(UserError, match=message):
        run_recbole_compress("LightGCN_CERP", "ml-100k", config_dict={**base, **settings})
