"""LT4Rec's per-task masks on the shared MLP: private and shared weights, zero gradients
outside the active mask, usage counts, weights-only export; the other models' outputs."""

from pathlib import Path

import pytest
import torch

from recbole_compress.export import export_model, import_model, load_artifact, save_artifact
from recbole_compress.registry import get_model, get_trainer
from tests.multitask_helpers import convert_samples, load


@pytest.fixture(scope="module")
def data(tmp_path_factory, one_thread):
    root = convert_samples(tmp_path_factory.mktemp("mt-models"))
    return load("LT4Rec", "ali-ccp-sample", root, {"weight_decay": 0.1, "output_dir": str(root / "out"),
                                                   "checkpoint_dir": str(root / "out")})


def build(data, seed=0):
    config, train, *_ = data
    torch.manual_seed(seed)
    model = get_model("LT4Rec")(config, train.dataset)
    return model, get_trainer(config["MODEL_TYPE"], "LT4Rec")(config, model)


def random_masks(model, density, seed, disjoint_from=None):
    gen = torch.Generator().manual_seed(seed)
    masks = []
    for i, w in enumerate(model.shared.originals()):
        m = torch.rand(w.shape, generator=gen) < density
        if disjoint_from is not None:
            m &= ~disjoint_from[i]
        masks.append(m)
    return masks


def test_a_task_step_moves_only_weights_inside_its_mask(data):
    model, trainer = build(data)
    mask0 = random_masks(model, 0.4, 1)
    mask1 = random_masks(model, 0.4, 2)
    model.shared.set_task_masks([mask0, mask1])
    optimizer = trainer._optimizer()
    batch = next(iter(data[1]))
    for step in range(4):  # alternate: Adam moments of one task must not move the other's weights
        task = step % 2
        active = (mask0, mask1)[task]
        before = [w.detach().clone() for w in model.shared.originals()]
        trainer._task_step(batch, optimizer, task)
        for w, old, m in zip(model.shared.originals(), before, active):
            assert torch.equal(w.grad[~m], torch.zeros_like(w.grad[~m]))  # gradients outside the mask: zero
            assert torch.equal(w.detach()[~m], old[~m])  # weight decay and momentum did not move them
            assert not torch.equal(w.detach()[m], old[m])  # the task's own weights learnt


def test_disjoint_masks_give_private_weights_and_shared_weights_serve_both(data):
    model, _ = build(data)
    mask0 = random_masks(model, 0.3, 3)
    mask1 = random_masks(model, 0.3, 4, disjoint_from=mask0)
    model.shared.set_task_masks([mask0, mask1])
    model.eval()
    batch = next(iter(data[2]))
    x = model.features(batch)
    out0, out1 = model.shared(x, 0), model.shared(x, 1)
    with torch.no_grad():  # change only task 0's private weights
        for w, m in zip(model.shared.originals(), mask0):
            w[m] += 1.0
    assert torch.equal(model.shared(x, 1), out1) and not torch.equal(model.shared(x, 0), out0)
    usage = model.shared.usage()
    assert usage["mlp_weights_shared"] == 0
    assert usage["mlp_weights_used"] == sum(int(a.sum() + b.sum()) for a, b in zip(mask0, mask1))
    # weights outside both masks are pruned: zero and counted nowhere
    for w, a, b in zip(model.shared.originals(), mask0, mask1):
        assert torch.count_nonzero(w.detach()[~(a | b)]) == 0

    shared = [torch.ones_like(m) for m in mask0]  # identical masks: everything shared
    model.shared.set_task_masks([shared, shared])
    usage = model.shared.usage()
    assert usage["mlp_weights_shared"] == usage["mlp_weights_used"] == usage["mlp_weights"]
    assert all(layer["overlap"] == 1.0 for layer in usage["layers"])


def test_usage_counts_per_layer(data):
    model, _ = build(data)
    mask0, mask1 = random_masks(model, 0.5, 5), random_masks(model, 0.5, 6)
    model.shared.set_task_masks([mask0, mask1])
    for layer, a, b in zip(model.shared.usage()["layers"], mask0, mask1):
        assert layer["per_task"] == [int(a.sum()), int(b.sum())]
        assert layer["used"] == int((a | b).sum()) and layer["shared"] == int((a & b).sum())
        assert layer["overlap"] == pytest.approx(int((a & b).sum()) / int((a | b).sum()))


def test_export_is_weights_only_and_stores_only_used_weights(data, tmp_path):
    model, _ = build(data)
    mask0, mask1 = random_masks(model, 0.2, 7), random_masks(model, 0.2, 8)
    model.shared.set_task_masks([mask0, mask1])
    size = save_artifact(export_model(model), tmp_path / "model.pt")
    dense_model, _ = build(data, seed=1)
    dense_size = save_artifact(export_model(dense_model), tmp_path / "dense.pt")
    assert size < dense_size
    # per-task masks are stored at one bit per weight, and load back exactly (predictions below)
    artifact = export_model(model)
    masks = {k: v for k, v in model.state_dict().items() if "task_mask" in k}
    assert masks and set(artifact["packed_bool"]) == set(masks)
    for key, mask in masks.items():
        assert artifact["tensors"][f"{key}::bits"].numel() == -(-mask.numel() // 8)
    fresh, _ = build(data, seed=2)
    import_model(fresh, load_artifact(tmp_path / "model.pt"))  # torch.load(weights_only=True)
    batch = next(iter(data[2]))
    model.eval(), fresh.eval()
    for a, b in zip(model.predict_funnel(batch), fresh.predict_funnel(batch)):
        assert torch.allclose(a, b)


@pytest.mark.parametrize("name", ["SharedBottom", "ESMM", "MMoE", "LT4Rec"])
def test_predictions_are_probabilities_and_ctcvr_is_their_product(data, name):
    config, train, _, test = load(name, "ali-ccp-sample", Path(data[0]["data_path"]).parent)
    model = get_model(name)(config, train.dataset).eval()
    batch = next(iter(test))
    p_ctr, p_cvr = model.predict_funnel(batch)
    assert p_ctr.shape == p_cvr.shape == (len(batch),)
    assert bool(((p_ctr > 0) & (p_ctr < 1) & (p_cvr > 0) & (p_cvr < 1)).all())
    assert torch.allclose(model.predict(batch), p_ctr * p_cvr)
    losses = model.task_losses(batch)
    assert set(losses) == {0, 1} and all(torch.isfinite(v) for v in losses.values())
