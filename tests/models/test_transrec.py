"""TransRec: training steps on each modality, scoring, export without item tables, and
transfer of a pre-trained model into a model for another dataset."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from recbole_compress.errors import UserError
from recbole_compress.export import export_model, load_artifact, save_artifact
from recbole_compress.models.transrec import TransRec
from tests.content_data import HEADER, scientific_slice, text_encoder_installed, tiktok_slice, transrec_data


@pytest.fixture(scope="module")
def text_cache(tmp_path_factory, shared_datasets_dir):
    """One text cache for the module, so each slice is encoded once."""
    return tmp_path_factory.mktemp("text-cache")


@pytest.fixture(scope="module")
def shared_datasets_dir():
    from tests.conftest import shared_datasets

    path = shared_datasets()
    if not path.is_dir():
        pytest.skip(f"shared datasets not found at {path}")
    return path


def _model(data_path, name, **settings):
    config, _, train, valid, test = transrec_data(data_path, name, **settings)
    torch.manual_seed(0)
    return TransRec(config, train._dataset), train, test


def _train_steps(model, batch, steps=25, lr=1e-2):
    """Loss on one batch before and after ``steps`` Adam steps (overfitting it must work),
    measured in eval mode with the same sampled negatives."""
    def measured():
        model.eval()
        torch.manual_seed(1)
        with torch.no_grad():
            return float(model.calculate_loss(batch))

    before = measured()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = model.calculate_loss(batch)
        loss.backward()
        optimizer.step()
        assert torch.isfinite(loss)
    return before, measured()


def _first_batch(loader):
    return next(iter(loader))


def _no_catalogue_tensors(model):
    artifact = export_model(model)
    shapes = {k: tuple(v.shape) for k, v in artifact["tensors"].items()}
    assert not any(s and s[0] == model.n_items for s in shapes.values()), shapes
    return artifact


@text_encoder_installed
@pytest.mark.parametrize("loss_type", ["BCE", "CE"])
def test_text_items_train_and_rank(tmp_path, shared_datasets_dir, text_cache, one_thread, loss_type):
    scientific_slice(shared_datasets_dir, tmp_path)
    model, train, test = _model(tmp_path, "sci", text_cache_dir=str(text_cache), loss_type=loss_type)
    assert not hasattr(model, "item_embedding") and model.sources == ["text"]
    first, last = _train_steps(model, _first_batch(train))
    assert last < 0.8 * first
    model.eval()
    batch = _first_batch(test)[0]
    scores = model.full_sort_predict(batch)
    assert scores.shape == (len(batch), model.n_items)
    np.testing.assert_allclose(model.predict(batch).detach(), scores[torch.arange(len(batch)), batch["item_id"]].detach(), rtol=1e-4, atol=1e-5)
    _no_catalogue_tensors(model)


def test_vector_items_train(tmp_path, shared_datasets_dir, one_thread):
    tiktok_slice(shared_datasets_dir, tmp_path)
    model, train, _ = _model(tmp_path, "tt")
    assert model.sources == ["audio", "image"] and "text" not in dict(model.named_buffers()).keys()
    before = {k: v.clone() for k, v in model.projections.state_dict().items()}
    first, last = _train_steps(model, _first_batch(train))
    assert last < 0.8 * first
    changed = [k for k, v in model.projections.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("audio.linear") for k in changed) and any(k.startswith("image.linear") for k in changed)
    acc = model.accounting()
    assert acc["catalogue_parameters"] == 0 and acc["text_encoder_parameters"] == 0
    assert acc["sasrec_item_table_parameters"] == model.n_items * model.hidden_size


@text_encoder_installed
def test_history_mixing_text_and_vector_items(tmp_path, shared_datasets_dir, text_cache, one_thread):
    """Half the items described by text only, the other half by a vector only."""
    folder = scientific_slice(shared_datasets_dir, tmp_path)
    lines = (folder / "sci.text").read_text().splitlines()
    rows = [line.split("\t", 1) for line in lines[1:]]
    vector_items = {tok for tok, _ in rows[::2]}
    (folder / "sci.text").write_text("\n".join([lines[0]] + [f"{t}\t{x}" for t, x in rows if t not in vector_items]) + "\n")
    rng = np.random.default_rng(0)
    vectors = np.full((max(int(t) for t, _ in rows) + 1, 8), np.nan, dtype=np.float32)
    for tok in vector_items:
        vectors[int(tok)] = rng.normal(size=8)
    np.save(folder / "sci.vec.npy", vectors)  # NaN rows: items without a vector
    model, train, _ = _model(tmp_path, "sci", text_cache_dir=str(text_cache))
    flags = model.modality[1:]
    assert {int(f) for f in flags.unique()} == {1, 2}  # bit 0 text, bit 1 vec
    batch = _first_batch(train)
    seq = batch["item_id_list"]
    assert ((model.modality[seq] == 1).any(1) & (model.modality[seq] == 2).any(1)).any()  # mixed histories
    first, last = _train_steps(model, batch, steps=40)  # 25 steps stopped at 0.805x (threshold 0.8)
    assert last < 0.8 * first


def _write_renamed_slice(shared, tmp_path, name, users, prefix):
    """Scientific users in ``users`` with every item token renamed: a dataset sharing no user or item id."""
    src = scientific_slice(shared, tmp_path / "src", name="src", users=users.stop, history=10)
    folder = tmp_path / name
    folder.mkdir()
    rename = lambda tok: f"{prefix}{tok}"  # noqa: E731
    for split in ("train", "valid", "test"):
        out = []
        for line in (src / f"src.{split}.inter").read_text().splitlines()[1:]:
            user, seq, target = line.split("\t")
            if int(user) in users:
                out.append(f"u{prefix}{user}\t{' '.join(map(rename, seq.split()))}\t{rename(target)}")
        (folder / f"{name}.{split}.inter").write_text(HEADER + "\n".join(out) + "\n")
    text = (src / "src.text").read_text().splitlines()
    (folder / f"{name}.text").write_text("\n".join([text[0]] + [rename(line) for line in text[1:]]) + "\n")


ATTENTION = {"text_pooling": "attention", "text_attention_heads": 2, "text_attention_head_size": 4,
             "text_attention_query_size": 8}


@text_encoder_installed
@pytest.mark.parametrize("pooling", [{}, ATTENTION], ids=["mean", "attention"])
def test_pretrained_model_loads_into_another_dataset(tmp_path, shared_datasets_dir, text_cache, one_thread, pooling):
    source, train, _ = _model(_scientific_dir(tmp_path, shared_datasets_dir), "sci", text_cache_dir=str(text_cache),
                              **pooling)
    _train_steps(source, _first_batch(train), steps=5)
    path = tmp_path / "pre" / "model.pt"
    save_artifact(export_model(source), path)
    assert {"tensors", "modules", "masked"} <= set(load_artifact(path))  # weights-only load

    _write_renamed_slice(shared_datasets_dir, tmp_path, "other", range(100, 130), "x")
    target, train_b, test_b = _model(tmp_path, "other", text_cache_dir=str(text_cache), pretrained=str(path.parent),
                                     MAX_ITEM_LIST_LENGTH=10, **pooling)
    assert target.n_items != source.n_items
    for key, value in source.state_dict().items():
        mine = target.state_dict()[key]
        expected = value[:10] if key == "position_embedding.weight" else value
        assert torch.equal(mine, expected), key
    assert target.pretrained_report["fresh"] == [] and target.pretrained_report["loaded"] == len(source.state_dict())
    target.eval()
    assert target.full_sort_predict(_first_batch(test_b)[0]).shape[1] == target.n_items
    if pooling:  # the trained pooling is part of the model: a model without it cannot take it
        with pytest.raises(UserError, match="text_pooling as in pre-training"):
            _model(tmp_path, "other", text_cache_dir=str(text_cache), pretrained=str(path.parent), MAX_ITEM_LIST_LENGTH=10)


def _scientific_dir(tmp_path, shared):
    scientific_slice(shared, tmp_path / "a")
    return tmp_path / "a"


def test_transfer_errors(tmp_path, shared_datasets_dir, one_thread):
    tiktok_slice(shared_datasets_dir, tmp_path)
    source, _, _ = _model(tmp_path, "tt")
    save_artifact(export_model(source), tmp_path / "pre" / "model.pt")
    # the same users/items with 64-d image vectors: the image projection cannot load
    small = tmp_path / "small"
    small.mkdir()
    for split in ("train", "valid", "test"):
        (small / f"small.{split}.inter").write_text((tmp_path / "tt" / f"tt.{split}.inter").read_text())
    np.save(small / "small.image.npy", np.load(tmp_path / "tt" / "tt.image.npy")[:, :64])
    with pytest.raises(UserError, match=r"feature dimension mismatch for 'image'.*128-d.*64-d"):
        _model(tmp_path, "small", pretrained=str(tmp_path / "pre"))
    with pytest.raises(UserError, match="no such file"):
        _model(tmp_path, "tt", pretrained=str(tmp_path / "nowhere"))
    torch.save({"tensors": {"item_embedding.weight": torch.zeros(3, 2)}, "modules": {}, "masked": []}, tmp_path / "sasrec.pt")
    with pytest.raises(UserError, match="not a TransRec model"):
        _model(tmp_path, "tt", pretrained=str(tmp_path / "sasrec.pt"))
    with pytest.raises(UserError, match="hidden_size"):
        _model(tmp_path, "tt", pretrained=str(tmp_path / "pre"), hidden_size=8, inner_size=16)


def test_cli_trains_and_fine_tunes_from_pretrained(tmp_path, shared_datasets_dir, one_thread, monkeypatch, capsys):
    """Pre-train on one TikTok slice, fine-tune on users it never saw, through the command line."""
    from recbole_compress.cli import main
    from tests.content_data import SEQ_LAYOUT, TINY_TRANSREC

    tiktok_slice(shared_datasets_dir, tmp_path, name="ttA", users=60)
    raw = tmp_path / "ttB-raw"
    raw.mkdir()
    for split in ("train", "valid", "test"):
        lines = (shared_datasets_dir / "tiktok" / f"{split}.txt").read_text().splitlines()
        (raw / f"{split}.txt").write_text("\n".join(l for l in lines if 5000 <= int(l.split()[0]) < 5060) + "\n")
    for feat in ("image", "audio"):
        np.save(raw / f"{feat}_feat.npy", np.load(shared_datasets_dir / "tiktok" / f"{feat}_feat.npy"))
    from recbole_compress.data import convert_dataset

    convert_dataset("seqsplit", raw, tmp_path / "ttB")
    import yaml

    settings = {**SEQ_LAYOUT, **TINY_TRANSREC, "data_path": str(tmp_path)}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(settings))

    def cli(*args):
        monkeypatch.setattr(sys, "argv", ["recbole-compress", "run", *args])
        return main(["run", *args])

    assert cli("--model=TransRec", "--dataset=ttA", "--config_files=tiny.yaml", f"--output_dir={tmp_path / 'A'}") == 0
    assert cli("--model=TransRec", "--dataset=ttB", "--config_files=tiny.yaml", f"--output_dir={tmp_path / 'B'}",
               f"--pretrained={tmp_path / 'A'}") == 0
    summary = json.loads((tmp_path / "B" / "summary.json").read_text())
    assert summary["transrec"]["pretrained"]["loaded"] > 0 and summary["transrec"]["catalogue_parameters"] == 0
    a = json.loads((tmp_path / "A" / "summary.json").read_text())
    assert a["trainable_parameters"] == summary["trainable_parameters"]  # same size for another catalogue
    assert a["transrec"]["items"] != summary["transrec"]["items"]
    assert cli("--model=TransRec", "--dataset=ttB", "--config_files=tiny.yaml", "--pretrained=/no/such/run") == 2
    assert "pretrained=/no/such/run: no such file" in capsys.readouterr().err


@text_encoder_installed
def test_text_finetuning_trains_only_the_top_layers(tmp_path, shared_datasets_dir, text_cache, one_thread):
    scientific_slice(shared_datasets_dir, tmp_path, users=6, history=3)
    frozen, train, _ = _model(tmp_path, "sci", text_cache_dir=str(text_cache))
    tuned, _, _ = _model(tmp_path, "sci", text_cache_dir=str(text_cache), text_finetune_layers=1)
    ids = torch.arange(1, tuned.n_items)
    tuned.eval()
    with torch.no_grad():  # untrained, the tower gives the cached frozen vectors
        torch.testing.assert_close(tuned.text_tower(ids), frozen.content_text[ids], atol=1e-5, rtol=1e-4)
    trainable = {n for n, p in tuned.text_tower.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("top.0.") for n in trainable) and len(tuned.text_tower.top) == 1
    before = {n: p.clone() for n, p in tuned.text_tower.named_parameters()}
    first, last = _train_steps(tuned, _first_batch(train), steps=3, lr=1e-3)
    changed = {n for n, p in tuned.text_tower.named_parameters() if not torch.equal(p, before[n])}
    assert changed == trainable and np.isfinite(last)  # gradients reach the top layer, and only it
    assert tuned.accounting()["text_encoder_trainable_parameters"] == sum(
        p.numel() for p in tuned.text_tower.parameters() if p.requires_grad)
    exported = export_model(tuned)["tensors"]
    assert any(k.startswith("text_tower.top.0.") for k in exported)  # the fine-tuned layer travels with the model
    assert not any(k.startswith("text_tower.") and "top." not in k for k in exported)  # the frozen bottom does not


def test_attention_pooling_ignores_padding_and_learns():
    from recbole_compress.content.text_tower import AttentionPooling

    torch.manual_seed(0)
    pool = AttentionPooling(12, heads=2, head_size=3, query_size=5, dropout=0.0).eval()
    states = torch.randn(2, 4, 12)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    out = pool(states, mask)
    assert out.shape == (2, 6)
    garbage = states.clone()
    garbage[0, 3] = 100.0
    garbage[1, 2:] = -50.0
    torch.testing.assert_close(pool(garbage, mask), out)  # padded tokens change nothing
    torch.testing.assert_close(pool(states[1:, :2], mask[1:, :2]), out[1:])  # nor does the padded length
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in pool.parameters())


@text_encoder_installed
@pytest.mark.parametrize("layers", [0, 1])
def test_attention_pooled_text_trains_pooling_and_top_layers_only(tmp_path, shared_datasets_dir, text_cache, one_thread, layers):
    """text_pooling=attention: the authors' head over the token states; frozen (0) or with the top layer trained."""
    scientific_slice(shared_datasets_dir, tmp_path, users=6, history=3)
    model, train, test = _model(tmp_path, "sci", text_cache_dir=str(text_cache), text_pooling="attention",
                                text_finetune_layers=layers, text_attention_heads=2, text_attention_head_size=4,
                                text_attention_query_size=8)
    tower = model.text_tower
    assert tower.output_dim == 8 and model.projections["text"].in_dim == 8 and len(tower.top) == layers
    trainable = {n for n, p in tower.named_parameters() if p.requires_grad}
    assert {n for n in trainable if not n.startswith("pool.")} == {f"top.{n}" for n, _ in tower.top.named_parameters()}
    before = {n: p.clone() for n, p in tower.named_parameters()}
    first, last = _train_steps(model, _first_batch(train), steps=4, lr=1e-3)
    changed = {n for n, p in tower.named_parameters() if not torch.equal(p, before[n])}
    assert changed == trainable and np.isfinite(last)
    acc = model.accounting()
    assert acc["text_pooling"] == "attention" and acc["text_pooling_parameters"] == tower.pooling_parameters() > 0
    assert acc["text_encoder_trainable_parameters"] == tower.encoder_parameters()
    assert (acc["text_encoder_trainable_parameters"] > 0) == (layers > 0)
    model.eval()
    batch = _first_batch(test)[0]
    scores = model.full_sort_predict(batch)
    np.testing.assert_allclose(model.predict(batch).detach(), scores[torch.arange(len(batch)), batch["item_id"]].detach(),
                               rtol=1e-4, atol=1e-5)
    exported = _no_catalogue_tensors(model)["tensors"]  # no token-state table travels with the model
    assert any(k.startswith("text_tower.pool.") for k in exported)


def test_bce_loss_is_mean_over_positives_plus_mean_over_negatives(tmp_path, shared_datasets_dir, one_thread):
    tiktok_slice(shared_datasets_dir, tmp_path)
    model, train, _ = _model(tmp_path, "tt", neg_samples=5)
    model.eval()  # no dropout: the loss depends only on the sampled negatives
    batch = _first_batch(train)
    torch.manual_seed(3)
    loss = model.calculate_loss(batch)
    torch.manual_seed(3)
    pos = batch["item_id"]
    neg = torch.randint(1, model.n_items, (len(pos), 5))
    neg = torch.where(neg == pos[:, None], neg % (model.n_items - 1) + 1, neg)
    with torch.no_grad():
        user = model.forward(batch["item_id_list"], batch["item_length"])
        table = model.all_items()
        pos_logit = (user * table[pos]).sum(-1)
        neg_logit = (user.unsqueeze(1) * table[neg]).sum(-1)
    expected = -torch.nn.functional.logsigmoid(pos_logit).mean() - torch.nn.functional.logsigmoid(-neg_logit).mean()
    torch.testing.assert_close(loss, expected)


def test_paper_preset_keys_are_known_and_match_the_authors():
    from recbole_compress.config_keys import check_keys
    from recbole_compress.property_files import load_yaml, resolve_property_file

    preset = load_yaml(resolve_property_file("properties/paper/transrec.yaml"))
    check_keys(preset, strict=True)  # a misspelled key would be silently ignored
    assert preset["text_pooling"] == "attention" and preset["text_finetune_layers"] >= 1
    assert (preset["n_layers"], preset["hidden_size"], preset["hidden_dropout_prob"], preset["neg_samples"]) == (4, 256, 0.1, 5)
    assert preset["learning_rate"] == 1e-4 and preset["loss_type"] == "BCE"


def test_longer_histories_keep_their_last_items(tmp_path, shared_datasets_dir, one_thread):
    """Pre-built history lists longer than MAX_ITEM_LIST_LENGTH are cut to their last items."""
    tiktok_slice(shared_datasets_dir, tmp_path)
    model, _, _ = _model(tmp_path, "tt", MAX_ITEM_LIST_LENGTH=3)
    seq = torch.tensor([[5, 6, 7, 8, 9, 0], [5, 6, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6]])
    cut, length = model.last_items(seq, torch.tensor([5, 2, 6]))
    assert cut.tolist() == [[7, 8, 9], [5, 6, 0], [4, 5, 6]] and length.tolist() == [3, 2, 3]
    model.eval()
    with torch.no_grad():  # the model sees only what it keeps
        torch.testing.assert_close(model.forward(seq, torch.tensor([5, 2, 6])), model.forward(cut, length))
