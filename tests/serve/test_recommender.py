"""The served model recommends what the trained model ranks (RecBole's full_sort_predict
top-k, ties aside) for every backbone family and method, from model.pt alone, and holds
its tables compactly. Models are built on ml-100k (no training needed for equality:
random masks, fixed CERP budgets and random codes exercise the same paths)."""

import pytest
import torch

from recbole_compress import UserError, load
from tests.serve.helpers import GENERAL, K, SEQUENTIAL, model_for_serving, serve

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def general_data():
    from tests.conftest import load_splits

    return load_splits("BPR", GENERAL)


@pytest.fixture(scope="module")
def sequential_data():
    from tests.conftest import load_splits

    return load_splits("SASRec", SEQUENTIAL)


def _check_top(reference, got, rec):
    """Served items are RecBole's top-k: same items, or items with the same reference score (ties)."""
    values, index = reference.topk(K, dim=1)
    served = torch.tensor([[rec.items.find(t) for t in row["items"]] for row in got])
    assert served.shape == index.shape
    assert torch.allclose(reference.gather(1, served), values, atol=1e-5)
    assert torch.allclose(torch.tensor([row["scores"] for row in got]), values, atol=1e-5)
    assert (served == index).all(dim=1).float().mean() > 0.9  # ties are rare: most rows are identical


GENERAL_MODELS = {
    "BPR": {},
    "BPR_LTH": {},
    "BPR_CERP": {"memory_budget": 0.05},
    "BPR_QR": {"memory_budget": 0.2},
    "BPR_PEP": {"memory_budget": 0.2},
    "LightGCN_CERP": {"memory_budget": 0.05},
    "NeuMF": {},  # no compact form: RecBole's own full_sort_predict
}


@pytest.mark.parametrize("name", GENERAL_MODELS)
def test_general_models_recommend_what_recbole_ranks(general_data, tmp_path, name):
    from recbole.data.interaction import Interaction

    train = general_data[0]
    config, model = model_for_serving(name, {**GENERAL, **GENERAL_MODELS[name]}, train)
    rec, figures = serve(config, model, train, tmp_path / name)
    users = torch.arange(1, 944, 7)  # 135 users
    with torch.no_grad():
        try:
            reference = model.full_sort_predict(Interaction({"user_id": users}))
        except NotImplementedError:  # RecBole's trainer: predict every (user, item) pair
            n = model.n_items
            reference = model.predict(Interaction({"user_id": users.repeat_interleave(n), "item_id": torch.arange(n).repeat(len(users))}))
        reference = reference.view(len(users), -1)
    reference[:, 0] = -torch.inf
    seen = train._dataset.inter_matrix(form="csr")
    for row, user in enumerate(users.tolist()):
        reference[row, seen.indices[seen.indptr[user] : seen.indptr[user + 1]]] = -torch.inf
    got = rec.recommend(users=[rec.users.token(u) for u in users.tolist()], k=K, exclude_seen=True)
    assert [g["user"] for g in got] == [rec.users.token(u) for u in users.tolist()]
    _check_top(reference, got, rec)
    held = rec.memory()["model"]
    if name in ("BPR", "BPR_LTH", "BPR_CERP", "BPR_QR", "BPR_PEP"):  # compact forms: within 1.2x the export
        assert held <= 1.2 * figures["model_bytes"], (held, figures["model_bytes"])
    if name == "LightGCN_CERP":  # propagation: dense final tables, reported as such
        assert held == (train._dataset.user_num + train._dataset.item_num) * 32 * 4
        assert rec.family.startswith("propagated graph")
    assert figures["serving_bytes"] > 0


SEQUENTIAL_MODELS = ["SASRec", "SASRec_JPQ", "GRU4Rec_JPQ", "BERT4Rec_JPQ"]


@pytest.mark.parametrize("name", SEQUENTIAL_MODELS)
def test_sequential_models_recommend_what_recbole_ranks(sequential_data, tmp_path, name):
    train, _, test = sequential_data
    config, model = model_for_serving(name, SEQUENTIAL, train)
    rec, figures = serve(config, model, train, tmp_path / name)
    batch = next(iter(test))[0]
    item_seq, item_seq_len = batch["item_id_list"], batch["item_length"]
    with torch.no_grad():
        reference = model.full_sort_predict(batch).view(len(batch), -1)
    reference[:, 0] = -torch.inf
    histories = [[rec.items.token(i) for i in item_seq[r, : item_seq_len[r]].tolist()] for r in range(len(batch))]
    got = rec.recommend(history=histories, k=K)
    _check_top(reference, got, rec)
    one = rec.recommend(history=histories[0], k=K)  # one history: a plain list of tokens
    assert one[0]["items"] == got[0]["items"]
    if name == "SASRec_JPQ":
        assert rec.memory()["model"] <= 1.2 * figures["model_bytes"]
        assert type(rec.scorer.model.item_embedding).__name__ == "CodedTable"


def test_excluding_the_history_and_the_seen_items(general_data, sequential_data, tmp_path):
    train = sequential_data[0]
    config, model = model_for_serving("SASRec", SEQUENTIAL, train)
    rec, _ = serve(config, model, train, tmp_path / "seq")
    history = [rec.items.token(i) for i in range(1, 6)]
    top = rec.recommend(history=history, k=rec.num_items - 1, exclude_seen=True)[0]["items"]
    assert not set(history) & set(top) and len(top) == rec.num_items - 1 - len(history)
    train = general_data[0]
    config, model = model_for_serving("BPR", GENERAL, train)
    rec, _ = serve(config, model, train, tmp_path / "general")
    seen = train._dataset.inter_matrix(form="csr")
    items = {rec.items.token(i) for i in seen.indices[seen.indptr[1] : seen.indptr[2]]}
    user = rec.users.token(1)
    assert not items & set(rec.recommend(users=[user], k=50)[0]["items"])  # excluded by default
    assert items & set(rec.recommend(users=[user], k=rec.num_items - 1, exclude_seen=False)[0]["items"])


@pytest.fixture(scope="module")
def served_bpr(general_data, tmp_path_factory):
    train = general_data[0]
    config, model = model_for_serving("BPR_LTH", GENERAL, train)
    folder = tmp_path_factory.mktemp("served")
    rec, _ = serve(config, model, train, folder / "run")
    return rec, folder / "run"


@pytest.mark.parametrize("call,message", [
    (dict(users=["196", "no-such-user", "[PAD]"]), "unknown user tokens 'no-such-user', '[PAD]'"),
    (dict(users=["196"], k=0), "k=0 must be a whole number from 1 to 1682"),
    (dict(users=["196"], k=1683), "k=1683 must be a whole number from 1 to 1682"),
    (dict(users=["196"], k=True), "k=True must be"),
    (dict(users=[]), "users is empty"),
    (dict(history=["242"]), "is a general model: pass users="),
    (dict(), "pass users=[tokens]"),
])
def test_bad_requests_are_one_line(served_bpr, call, message):
    rec, _ = served_bpr
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")) as err:
        rec.recommend(**call)
    assert "\n" not in str(err.value)


def test_a_sequential_model_asks_for_a_history(sequential_data, tmp_path):
    train = sequential_data[0]
    config, model = model_for_serving("SASRec_JPQ", SEQUENTIAL, train)
    rec, _ = serve(config, model, train, tmp_path / "seq")
    with pytest.raises(UserError, match="is a sequential model: pass history="):
        rec.recommend(users=["1"])
    with pytest.raises(UserError, match="unknown item token 'zzz'"):
        rec.recommend(history=["242", "zzz"])
    with pytest.raises(UserError, match="a history is empty"):
        rec.recommend(history=[["242"], []])


def test_model_pt_alone_is_enough_and_other_files_are_refused(served_bpr, tmp_path):
    rec, folder = served_bpr
    alone = load(folder / "model.pt")
    assert alone.recommend(users=["196"], k=5) == rec.recommend(users=["196"], k=5)
    with pytest.raises(UserError, match="holds no model.pt"):
        load(tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        load(tmp_path / "nowhere")
    truncated = tmp_path / "cut"
    truncated.mkdir()
    (truncated / "model.pt").write_bytes((folder / "model.pt").read_bytes()[:5000])
    with pytest.raises(UserError, match="is damaged"):
        load(truncated)
    old = tmp_path / "old"  # an artifact without a serving block (before this version)
    old.mkdir()
    artifact = torch.load(folder / "model.pt", weights_only=True)
    del artifact["serving"]
    torch.save(artifact, old / "model.pt")
    with pytest.raises(UserError, match="carries no serving data"):
        load(old)
