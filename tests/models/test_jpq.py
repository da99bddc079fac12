"""SASRec_JPQ, BERT4Rec_JPQ and GRU4Rec_JPQ on real data (ml-100k, tiny sizes)."""

import json

import pytest
import torch

from recbole_compress import UserError, run_recbole_compress
from recbole_compress.embeddings.jpq import JPQEmbedding
from recbole_compress.export import export_model, import_model, load_artifact
from tests.conftest import TINY, load_splits

# ml-100k's users with 20..40 interactions (305 users, 868 items, ~8k interactions): a real
# leave-one-out split that trains an epoch in about a second
SMALL = {**TINY, "n_layers": 1, "n_heads": 2, "hidden_size": 16, "inner_size": 32, "embedding_size": 16,
         "MAX_ITEM_LIST_LENGTH": 10, "jpq_code_length": 4, "user_inter_num_interval": "[20,40]"}
MODELS = ["SASRec_JPQ", "BERT4Rec_JPQ", "GRU4Rec_JPQ"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data():
    """The split, loaded once (every model here reads the same sequential dataset)."""
    return load_splits("SASRec_JPQ", SMALL)


def _build(model_name, data, extra=None):
    import sys

    from recbole.utils import init_seed

    from recbole_compress import Config, get_model

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["pytest"])
        config = Config(model=model_name, dataset="ml-100k", config_dict={**SMALL, **(extra or {})})
    init_seed(config["seed"], config["reproducibility"])
    return get_model(model_name)(config, data[0]._dataset)


@pytest.fixture(scope="module")
def built(data):
    return {name: _build(name, data) for name in MODELS}


@pytest.mark.parametrize("name", MODELS)
def test_item_table_is_jpq_for_input_and_output(built, data, name):
    model, train = built[name], data[0]
    table = model.item_embedding
    assert isinstance(table, JPQEmbedding)
    assert table.codes.dtype == torch.uint8 and table.codes.shape == (train._dataset.item_num, 4)
    assert table.n_special == (1 if name == "BERT4Rec_JPQ" else 0)  # BERT4Rec's [MASK] row
    assert not any(isinstance(m, torch.nn.Embedding) and m.num_embeddings >= table.n_coded for m in model.modules())
    # codes are part of the state (RecBole's checkpoints hold them)
    assert "item_embedding.codes" in model.state_dict()


@pytest.mark.parametrize("name", MODELS)
def test_full_sort_predict_uses_pqtopk_and_equals_materialised_scores(built, data, name, monkeypatch):
    model, test = built[name], data[2]
    model.eval()
    batch = next(iter(test))[0]
    with torch.no_grad():
        # reference: RecBole's own full_sort_predict of the base class, which reads .weight
        base = type(model).__mro__[2]
        assert base.__name__ == name.removesuffix("_JPQ")
        expected = base.full_sort_predict(model, batch)
        calls = []
        original = JPQEmbedding.score_all
        monkeypatch.setattr(JPQEmbedding, "score_all", lambda self, q, path=None: calls.append(path) or original(self, q, path))
        for path in ("bag", "pairs"):
            model.item_embedding.scoring = path
            scores = model.full_sort_predict(batch)
            assert scores.shape == expected.shape == (batch["user_id"].shape[0], model.n_items)
            assert torch.allclose(scores[:, 1:], expected[:, 1:], atol=1e-5, rtol=1e-4)
        model.item_embedding.scoring = "auto"
    assert len(calls) == 2


def test_codes_come_from_the_training_split(built, data):
    """The model's svd codes are those of the training interactions alone; adding the
    held-out (validation/test) targets to the matrix would change them."""
    from recbole_compress.embeddings.jpq_codes import assign_codes, training_matrix

    train, valid, test = (d._dataset for d in data)
    matrix = training_matrix(train)
    expected = assign_codes("svd", matrix, 4, 256, seed=2020)  # RecBole's default seed
    assert torch.equal(built["SASRec_JPQ"].item_embedding.codes, expected)
    import numpy as np
    import scipy.sparse as sp

    users = np.concatenate([ds.inter_feat[ds.uid_field].numpy() for ds in (valid, test)])
    items = np.concatenate([ds.inter_feat[ds.iid_field].numpy() for ds in (valid, test)])
    leaked = (matrix + sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)), shape=matrix.shape)).sign()
    assert leaked.nnz == matrix.nnz + len(users)
    assert not torch.equal(expected, assign_codes("svd", leaked, 4, 256, seed=2020))


def test_bert4rec_mask_token_is_not_an_item(built):
    model = built["BERT4Rec_JPQ"]
    table = model.item_embedding
    mask = torch.tensor([model.mask_token])
    assert model.mask_token == table.n_coded  # the row after the items
    assert torch.equal(table(mask)[0], table.special[0])
    assert model.output_bias.shape == (model.n_items,)


def test_codes_are_deterministic_under_the_seed(data):
    a = _build("SASRec_JPQ", data, {"jpq_assignment": "random"})
    b = _build("SASRec_JPQ", data, {"jpq_assignment": "random"})
    c = _build("SASRec_JPQ", data, {"jpq_assignment": "random", "seed": 3})
    assert torch.equal(a.item_embedding.codes, b.item_embedding.codes)
    assert not torch.equal(a.item_embedding.codes, c.item_embedding.codes)


@pytest.mark.parametrize("name", MODELS)
def test_trains_and_writes_summary(tmp_path, name):
    result = run_recbole_compress(name, "ml-100k", config_dict=dict(SMALL))
    out = tmp_path / result["output_dir"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 1 and summary["test"]["ndcg@10"] > 0
    assert summary["model_bytes"] < summary["dense_model_bytes"]
    table = summary["jpq"]["tables"]["item_embedding"]
    artifact = load_artifact(out / "model.pt")
    exported = sum(t.numel() * t.element_size() for k, t in artifact["tensors"].items() if k.startswith("item_embedding::"))
    assert table["bytes"] == exported < table["dense_bytes"] == (table["items"] + table["special_rows"]) * 16 * 4
    assert artifact["modules"] == {"item_embedding": "JPQEmbedding"}
    assert artifact["tensors"]["item_embedding::codes"].dtype == torch.uint8


def test_training_moves_codebooks_not_codes(built, data):
    model, train = built["SASRec_JPQ"], data[0]
    model.train()
    codes = model.item_embedding.codes.clone()
    books = model.item_embedding.codebooks.detach().clone()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss = model.calculate_loss(next(iter(train)))
    loss.backward()
    opt.step()
    assert torch.equal(model.item_embedding.codes, codes)
    assert not torch.equal(model.item_embedding.codebooks, books)


def test_export_import_predictions_equal(built, data):
    model, test = built["BERT4Rec_JPQ"], data[2]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)  # not the init values
    artifact = export_model(model)
    assert artifact["tensors"]["item_embedding::codes"].dtype == torch.uint8
    fresh = _build("BERT4Rec_JPQ", data, {"seed": 5, "jpq_assignment": "random"})  # other codes, other weights
    assert not torch.equal(fresh.item_embedding.codes, model.item_embedding.codes)
    import_model(fresh, artifact)
    assert torch.equal(fresh.item_embedding.codes, model.item_embedding.codes)
    model.eval(), fresh.eval()
    batch = next(iter(test))[0]
    with torch.no_grad():
        assert torch.allclose(model.full_sort_predict(batch), fresh.full_sort_predict(batch), atol=1e-6)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"jpq_code_length": 5, "hidden_size": 64}, r"jpq_code_length=5 does not divide embedding size 64 \(hidden_size\); use a divisor such as 4 or 8"),
        ({"jpq_centroids": 300}, "jpq_centroids=300 is outside 2..256"),
        ({"jpq_assignment": "kmeans"}, "jpq_assignment=kmeans is not one of svd, bpr, random"),
        ({"jpq_scoring": "fast"}, "jpq_scoring=fast is not one of"),
    ],
)
def test_bad_settings_fail_before_data_loading(settings, message, monkeypatch):
    import recbole_compress.quick_start as quick_start

    monkeypatch.setattr(quick_start, "load_data", lambda config: pytest.fail("data loaded before the check"))
    with pytest.raises(UserError, match=message):
        run_recbole_compress("SASRec_JPQ", "ml-100k", config_dict={**SMALL, **settings})


def test_gru4rec_checks_its_embedding_size():
    from recbole_compress.quick_start import build_config

    with pytest.raises(UserError, match=r"does not divide embedding size 20 \(embedding_size\)"):
        build_config("GRU4Rec_JPQ", "ml-100k", config_dict={**SMALL, "embedding_size": 20, "jpq_code_length": 8})


def test_code_length_too_large_for_svd(data):
    # the training matrix is 305 users x 868 items ([PAD] dropped): at most 304 components
    with pytest.raises(UserError, match=r"jpq_code_length=320 is more than svd code assignment allows for a 305 x 868 .*\(at most 304\)"):
        _build("GRU4Rec_JPQ", data, {"embedding_size": 320, "hidden_size": 8, "jpq_code_length": 320})


def test_any_recbole_model_resolves_as_jpq():
    from recbole_compress import get_model

    narm = get_model("NARM_JPQ")
    assert narm.compression_method.name == "JPQ" and narm.base_model_name == "NARM"
