"""The artifact records its model: an artifact of another model, table kind or shape is
refused in one line (issue 15: a BPR_CERP model.pt loaded into a BPR_LTH), and a ticket
that keeps every weight exports no larger than the dense model."""

import pytest
import torch

from recbole_compress import UserError
from recbole_compress.export import export_model, import_model, model_accounting
from tests.serve.helpers import GENERAL, model_for_serving

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def train():
    from tests.conftest import load_splits

    return load_splits("BPR", GENERAL)[0]


def _fresh(name, train, **settings):
    return model_for_serving(name, {**GENERAL, **settings}, train)[1]


def test_an_artifact_records_its_model_and_table_shapes(train):
    artifact = export_model(_fresh("BPR_CERP", train, memory_budget=0.05), serving=None)
    assert artifact["model"] == "BPR_CERP" and "serving" not in artifact
    assert artifact["table_shapes"] == {"user_embedding": [944, 32], "item_embedding": [1683, 32]}


@pytest.mark.parametrize("source,target,message", [
    ("BPR_CERP", "BPR_LTH", "the artifact holds a BPR_CERP model, not a BPR_LTH"),
    ("BPR", "BPR_LTH", "the artifact holds a BPR model, not a BPR_LTH"),
    ("BPR_LTH", "BPR", "the artifact holds a BPR_LTH model, not a BPR"),
])
def test_an_artifact_of_another_model_is_refused(train, source, target, message):
    artifact = export_model(_fresh(source, train, memory_budget=0.05))
    with pytest.raises(UserError, match=message) as err:
        import_model(_fresh(target, train, memory_budget=0.05), artifact)
    assert "\n" not in str(err.value)


def test_artifacts_without_a_model_name_are_checked_table_by_table(train):
    """Artifacts written before the name was recorded: each table's kind and every shape."""
    artifact = export_model(_fresh("BPR_CERP", train, memory_budget=0.05))
    del artifact["model"]
    with pytest.raises(UserError, match="stores 'user_embedding' as a CERPEmbedding but BPR_LTH has a MaskedEmbedding"):
        import_model(_fresh("BPR_LTH", train), artifact)
    dense = export_model(_fresh("BPR", train))
    del dense["model"]
    with pytest.raises(UserError, match=r"has 'user_embedding.weight' of shape \[944, 32\] but BPR has \[944, 16\]"):
        import_model(_fresh("BPR", train, embedding_size=16), dense)


def test_a_ticket_that_keeps_every_weight_is_no_larger_than_the_dense_model(train):
    ticket, dense = _fresh("BPR_LTH", train), _fresh("BPR", train)
    from recbole_compress.embeddings.masked import masked_tensors

    for _, _, mask in masked_tensors(ticket):  # round 0: every entity weight kept
        mask.mask[1:] = True
    ticket_bytes = model_accounting(ticket)["model_bytes"]
    assert ticket_bytes <= model_accounting(dense)["model_bytes"]
    fresh = _fresh("BPR_LTH", train)
    import_model(fresh, export_model(ticket))
    assert torch.equal(fresh.item_embedding.weight, ticket.item_embedding.weight)
