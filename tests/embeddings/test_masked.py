import torch
from torch import nn

from recbole_compress.embeddings.masked import (
    MaskedEmbedding,
    add_mask,
    enforce_masks,
    mask_of,
    mask_state_keys,
    masked_state_keys,
    original_of,
    tensor_masks,
)


def test_lookup_equals_rows_of_the_masked_table_and_gradients_are_masked():
    table = MaskedEmbedding(torch.randn(10, 4))
    table.mask[torch.rand(10, 4, generator=torch.Generator().manual_seed(0)) < 0.5] = False
    table.mask[3, 0] = True  # row 3 keeps a weight, so its gradient must be non-zero
    ids = torch.tensor([[1, 3, 3], [0, 9, 2]])
    rows = table(ids)
    assert torch.equal(rows, torch.nn.functional.embedding(ids, table.weight))
    rows.sum().backward()
    grad = table.parametrizations.table.original.grad
    assert torch.all(grad[~table.mask] == 0) and grad[3].abs().sum() > 0


def test_masked_embedding_is_a_drop_in_table():
    dense = nn.Embedding(10, 4)
    table = MaskedEmbedding.from_dense(dense)
    ids = torch.tensor([[1, 2], [3, 0]])
    assert torch.equal(table(ids)[0], dense(ids)[0])
    assert torch.all(table(ids)[1, 1] == 0)  # [PAD] row is zero
    assert table.parameter_count() == 9 * 4  # [PAD] row not counted
    assert table.weight.shape == (10, 4) and table.weight.requires_grad


def test_weight_is_never_stale_after_mask_changes():
    table = MaskedEmbedding(torch.ones(5, 3))
    first = table.weight.sum()
    table.mask[1, 0] = False
    assert table.weight.sum() == first - 1  # read .weight directly, like LightGCN does


def test_export_round_trip_equals():
    table = MaskedEmbedding(torch.randn(20, 8))
    table.mask[torch.rand(20, 8) < 0.7] = False
    enforce_masks(table)
    rebuilt = MaskedEmbedding.from_export(table.export())
    assert torch.equal(rebuilt.weight, table.weight)
    assert rebuilt.parameter_count() == table.parameter_count()
    assert table.export_bytes() < table.dense_bytes()


def test_masked_weights_and_adam_moments_stay_zero():
    # no per-step enforcement (the LTH trainer does none): the zero gradient of a
    # masked position keeps a fresh Adam's moments and the weight (decay included) at zero
    linear = nn.Linear(6, 6)
    mask = add_mask(linear, "weight")
    mask.mask[:3] = False
    enforce_masks(linear)  # what pruning does once
    opt = torch.optim.Adam(linear.parameters(), lr=0.1, weight_decay=0.1)
    for _ in range(5):
        opt.zero_grad()
        linear(torch.randn(4, 6)).pow(2).sum().backward()
        opt.step()
    original = linear.parametrizations.weight.original
    assert torch.all(original[:3] == 0) and torch.all(original[3:] != 0)
    state = opt.state[original]
    assert torch.all(state["exp_avg"][:3] == 0) and torch.all(state["exp_avg_sq"][:3] == 0)


def test_mask_helpers_find_the_mask_the_original_and_their_state_keys():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    plain = model[1].weight
    mask = add_mask(model[0], "weight")
    mask.mask[0] = False
    assert mask_of(model[0], "weight") is mask and mask_of(model[0], "bias") is None and mask_of(model[1], "weight") is None
    assert original_of(model[1], "weight") is plain  # an unmasked tensor is its own original
    original = original_of(model[0], "weight")
    assert isinstance(original, nn.Parameter) and torch.equal(model[0].weight, original * mask.mask)
    assert tensor_masks(model[0]) == {"weight": mask} and tensor_masks(model[1]) == {}
    original_key, mask_key = masked_state_keys("0", "weight")
    state = model.state_dict()
    assert torch.equal(state[original_key], original) and torch.equal(state[mask_key], mask.mask)
    assert mask_state_keys(model) == {mask_key}


def test_exports_leave_the_pad_row_out_and_older_exports_still_import():
    from recbole_compress.embeddings.sparse_codec import encode_masked

    table = MaskedEmbedding(torch.randn(20, 8))
    exported = table.export()  # every entity weight kept: no index, the [PAD] row left out
    assert exported["shape"].tolist() == [19, 8] and "bitmap" not in exported and "crow" not in exported
    assert table.export_bytes() <= table.dense_bytes()  # the [PAD] row saved pays for the 32 bytes of header
    assert torch.equal(MaskedEmbedding.from_export(exported).weight, table.weight)
    older = {**encode_masked(table.parametrizations.table.original, table.mask), "padding_idx": torch.tensor(0)}
    rebuilt = MaskedEmbedding.from_export(older)  # written before exports left the [PAD] row out
    assert torch.equal(rebuilt.weight, table.weight) and torch.equal(rebuilt.mask, table.mask)
