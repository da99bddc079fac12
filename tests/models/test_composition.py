"""Methods that compose: ``LightGCN_QR_LTH`` is a lottery ticket over the
quotient-remainder tables (ml-100k, tiny runs)."""

import pytest
import torch

from recbole_compress import UserError, run_recbole_compress
from recbole_compress.embeddings.cerp import QREmbedding
from recbole_compress.export import export_model, import_model, table_bytes, table_parameter_count
from recbole_compress.quick_start import load_model
from recbole_compress.registry import get_model, get_trainer
from tests.conftest import TINY

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {**TINY, "embedding_size": 16, "n_layers": 1, "train_batch_size": 2048, "memory_budget": 0.2,
         "prune_schedule": "oneshot", "prune_rounds": 1, "prune_rate": 0.5, "ticket_select": "sparsest"}


def test_composed_name_resolves_to_both_methods():
    cls = get_model("LightGCN_QR_LTH")
    assert [m.name for m in cls.compression_chain] == ["QR", "LTH"]
    assert cls.base_model_name == "LightGCN"
    assert "LTH" in get_trainer(cls.type if hasattr(cls, "type") else 1, "LightGCN_QR_LTH").__name__


@pytest.fixture(scope="module")
def composed_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("qr_lth")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(out)
        result = run_recbole_compress("LightGCN_QR_LTH", "ml-100k", config_dict={**SMALL, "output_dir": str(out / "run")})
    return result


def test_ticket_prunes_the_qr_tables_to_the_rate(composed_run):
    summary = composed_run["summary"]
    rounds = summary["lth"]["rounds_table"]
    full, pruned = rounds[0]["nonzero_pruned_weights"], rounds[1]["nonzero_pruned_weights"]
    assert pruned == full - round(0.5 * full)
    # ticket_select: sparsest -> the run ends with the pruned round, whatever its score
    assert summary["nonzero_parameters"] < summary["dense_parameters"]
    assert rounds[1]["model_bytes"] < rounds[0]["model_bytes"]


def test_composed_export_round_trips(composed_run):
    model, config, test_data = load_model(composed_run["output_dir"])
    table = model.user_embedding
    assert isinstance(table, QREmbedding)
    masks = {n: p.mask for n, plist in table.parametrizations.items() for p in plist}
    assert set(masks) == {"P", "Q"}
    kept = sum(int(m.sum()) for m in masks.values())
    assert table_parameter_count(table) == kept < table.parameter_count()
    # the export keeps the non-zeros only: fewer bytes than the same QR tables stored dense
    assert table_bytes(model)["user_embedding"] < table.export_bytes()
    # LightGCN's graph comes from the dataset it is built with: build both on the same one
    graph = test_data._dataset
    reference = import_model(get_model("LightGCN_QR_LTH")(config, graph), export_model(model))
    fresh = import_model(get_model("LightGCN_QR_LTH")(config, graph), export_model(reference))
    assert torch.equal(reference.user_embedding.weight, model.user_embedding.weight)
    model, _ = reference.eval(), fresh.eval()
    users = torch.arange(1, 20)
    with torch.no_grad():
        a = model.full_sort_predict({"user_id": users})
        b = fresh.full_sort_predict({"user_id": users})
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", ["LightGCN_LTH_QR", "LightGCN_CERP_LTH"])
def test_compositions_that_cannot_work_fail_clearly(name):
    with pytest.raises(UserError, match="already"):
        run_recbole_compress(name, "ml-100k", config_dict=SMALL)
