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


def test_dot_interaction_input_is_pairwise_dot_products_then_flattened_vectors(data):
    """feature_interaction=dot: the distinct entries of the fields' Gram matrix (token, token_seq
    and float fields as vectors), then the vectors flattened."""
    from recbole_compress.models.multitask import FeatureInput

    config, train, _, test = data
    torch.manual_seed(0)
    dot = FeatureInput(train.dataset, 4, exclude=["click", "purchase"], interaction="dot")
    assert dot.float_fields and dot.token_fields  # the sample has both kinds
    n = len(dot.embeddings) + len(dot.float_fields)
    assert dot.output_dim == n * (n + 1) // 2 + 4 * n
    batch = next(iter(test))
    out = dot(batch)
    assert out.shape == (len(batch), dot.output_dim)
    vectors = dot.field_vectors(batch) + [batch[f].float().unsqueeze(-1) * dot.float_vectors[i]
                                         for i, f in enumerate(dot.float_fields)]
    pairs = [(vectors[i] * vectors[j]).sum(-1) for i in range(n) for j in range(i, n)]
    torch.testing.assert_close(out, torch.cat([torch.stack(pairs, 1), torch.cat(vectors, 1)], 1))
    concat = FeatureInput(train.dataset, 4, exclude=["click", "purchase"])
    assert concat.output_dim == 4 * len(concat.embeddings) + len(concat.float_fields)
    out.sum().backward()  # gradients reach the float fields' vectors
    assert dot.float_vectors.grad is not None and dot.float_vectors.grad.abs().sum() > 0


def test_focal_loss_weights_easy_examples_down():
    from torch.nn.functional import binary_cross_entropy_with_logits as bce

    from recbole_compress.models.multitask import focal_loss

    logits = torch.tensor([3.0, -3.0, 0.2, -0.1])
    labels = torch.tensor([1.0, 0.0, 0.0, 1.0])
    p = torch.sigmoid(logits)
    expected = torch.stack([-0.75 * (1 - p[0]) ** 2 * torch.log(p[0]), -0.25 * p[1] ** 2 * torch.log(1 - p[1]),
                            -0.25 * p[2] ** 2 * torch.log(1 - p[2]), -0.75 * (1 - p[3]) ** 2 * torch.log(p[3])]).mean()
    torch.testing.assert_close(focal_loss(logits, labels, 0.75, 2.0), expected)
    # gamma 0 and alpha 1/2: half the binary cross-entropy
    torch.testing.assert_close(focal_loss(logits, labels, 0.5, 0.0), 0.5 * bce(logits, labels))
    # the confident correct rows count far less than under BCE
    assert focal_loss(logits[:2], labels[:2], 0.5, 2.0) < 0.01 * bce(logits[:2], labels[:2])


@pytest.mark.parametrize("name", ["SharedBottom", "ESMM", "LT4Rec"])
def test_paper_preset_builds_every_model_with_focal_ctr_loss(data, name):
    """properties/paper/lt4rec.yaml: dot input, focal CTR loss, CVR weighted 1.5, for the baselines too."""
    from recbole_compress.models.multitask import focal_loss

    paper, ptrain, _, ptest = load_with_files(name, Path(data[0]["data_path"]).parent, ["properties/paper/lt4rec.yaml"])
    assert paper["feature_interaction"] == "dot" and paper["ctr_loss"] == "focal"
    assert paper["task_weights"] == [1.0, 1.5] and paper["focal_alpha"] == 0.75
    torch.manual_seed(0)
    model = get_model(name)(paper, ptrain.dataset)
    assert model.features.interaction == "dot"
    batch = next(iter(ptest))
    logits = model.task_logits(batch, [0])[0]
    torch.testing.assert_close(model.task_losses(batch, [0])[0] if name != "ESMM" else model.task_losses(batch)[0],
                               focal_loss(logits, batch["click"].float(), 0.75, 2.0))


def load_with_files(name, root, files):
    """``load`` with property files (the packaged ones found by their properties/... path)."""
    import sys

    from recbole.data import create_dataset
    from recbole.utils import init_seed

    from recbole_compress import Config
    from recbole_compress.data.multitask import multitask_data_preparation
    from tests.multitask_helpers import TINY_MT

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["pytest"])
        config = Config(model=name, dataset="ali-ccp-sample", config_file_list=files,
                        config_dict={"data_path": str(root), **TINY_MT})
        init_seed(config["seed"], config["reproducibility"])
        loaders = multitask_data_preparation(config, create_dataset(config))
    return (config, *loaders)


def test_paper_preset_keys_are_known():
    from recbole_compress.config_keys import check_keys
    from recbole_compress.property_files import load_yaml, resolve_property_file

    preset = load_yaml(resolve_property_file("properties/paper/lt4rec.yaml"))
    check_keys(preset, strict=True)  # a misspelled key would be silently ignored
    assert (preset["prune_rounds"], preset["target_sparsity"], preset["mlp_hidden_sizes"]) == (4, 0.8, [512, 256, 128])
