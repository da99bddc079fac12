"""Export, import and accounting of a whole model.

The artifact is weights-only (tensors plus plain strings; ``torch.load(...,
weights_only=True)`` reads it). Compressed tables contribute their own
``export()``; masked tensors elsewhere in the model (lottery tickets over all
weights) are stored as their non-zeros; everything else as is. A model's bytes
are the sum of the artifact's tensor sizes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from recbole_compress.embeddings.base import (
    EMBEDDING_CLASSES,
    artifact_bytes,
    compressed_modules,
    embedding_kind,
)
from recbole_compress.embeddings.masked import TensorMask, add_mask, masked_state_keys, original_of, tensor_masks
from recbole_compress.embeddings.sparse_codec import (
    decode_masked,
    encode_masked,
    encoded_bytes_bound,
    encoded_shapes,
    is_encoding_key,
    pack_bits,
    unpack_bits,
)
from recbole_compress.errors import UserError
from recbole_compress.run import atomic_torch_save


def _inside(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _masked_outside(model: nn.Module, prefixes) -> dict[str, tuple[str, str]]:
    """Masked tensors outside compressed tables: export name -> (module, tensor name)."""
    found = {}
    for module_name, module in model.named_modules():
        if _inside(module_name, prefixes):
            continue
        for tensor_name in tensor_masks(module):
            key = f"{module_name}.{tensor_name}" if module_name else tensor_name
            found[key] = (module_name, tensor_name)
    return found


def export_model(model: nn.Module, serving: dict | None = None) -> dict:
    """``{"tensors": {name: Tensor}, "modules": {table: class name}, "masked": [names],
    "model": class name, "table_shapes": {table: [rows, dim]}}``, plus ``serving`` (what a
    served model needs besides its weights: serve/block.py) when given. ``model_bytes``
    counts ``tensors`` only."""
    compressed = dict(compressed_modules(model))
    masked = _masked_outside(model, compressed)
    skip = {k for m, t in masked.values() for k in masked_state_keys(m, t)}
    tensors: dict[str, Tensor] = {}
    masked_in_tables = []
    for name, module in compressed.items():
        exported, pruned = export_table(module)
        for key, value in exported.items():
            tensors[f"{name}::{key}"] = value.detach().cpu()
        masked_in_tables += [f"{name}::{key}" for key in pruned]
    state = model.state_dict()
    for name, (module_name, tensor_name) in masked.items():
        original, mask = (state[k] for k in masked_state_keys(module_name, tensor_name))
        for key, value in encode_masked(original.reshape(original.shape[0], -1), mask.reshape(mask.shape[0], -1)).items():
            tensors[f"{name}::{key}"] = value
        tensors[f"{name}::full_shape"] = torch.tensor(list(original.shape), dtype=torch.int64)
    packed = []
    for key, value in state.items():
        if key in skip or _inside(key.rpartition(".")[0], compressed):
            continue
        if value.dtype == torch.bool:  # masks kept as plain buffers (LT4Rec's per-task masks): 1 bit each
            tensors[f"{key}::bits"] = pack_bits(value.detach().cpu().flatten())
            tensors[f"{key}::shape"] = torch.tensor(list(value.shape), dtype=torch.int64)
            packed.append(key)
        else:
            tensors[key] = value.detach().cpu()
    artifact = {
        "tensors": tensors,
        "packed_bool": packed,
        "modules": {n: embedding_kind(m) for n, m in compressed.items()},
        "masked": sorted(masked),
        "masked_in_tables": masked_in_tables,
        "model": type(model).__name__,
        "table_shapes": {n: [m.num_embeddings, m.embedding_dim] for n, m in compressed.items()},
    }
    if serving is not None:
        artifact["serving"] = serving
    return artifact


def _own_masks(module: nn.Module) -> dict[str, TensorMask]:
    """Masks a composition put on a compressed table's own tensors (e.g. a lottery
    ticket over the quotient-remainder tables): tensor name -> mask."""
    if getattr(module, "masks_own_tensors", False):
        return {}  # a pruning method's own masks: its export and counts handle them
    return tensor_masks(module)


def export_table(module) -> tuple[dict[str, Tensor], list[str]]:
    """A compressed table's artifact; tensors that a composition masked are stored as
    their non-zeros (``<key>.values``, bitmap or CSR). Returns (tensors, masked keys)."""
    exported = module.export()
    masks = _own_masks(module)
    pruned = [key for key in exported if key in masks]
    for key in pruned:
        original = original_of(module, key).detach()
        mask = masks[key].mask
        exported.pop(key)
        flat_values, flat_mask = original.reshape(original.shape[0], -1), mask.reshape(mask.shape[0], -1)
        for part, value in encode_masked(flat_values, flat_mask).items():
            exported[f"{key}.{part}"] = value
        exported[f"{key}.full_shape"] = torch.tensor(list(original.shape), dtype=torch.int64)
    return exported, pruned


def table_parameter_count(module) -> int:
    """Numbers a deployed table keeps: its own count, less what a composition pruned."""
    pruned = sum(int(m.mask.numel() - m.mask.sum()) for m in _own_masks(module).values())
    return module.parameter_count() - pruned


def exported_bytes(modules: list[nn.Module]) -> int:
    """Exported bytes of compressed tables, all together."""
    return sum(artifact_bytes(export_table(m)[0]) for m in modules)


def pruned_bytes_bound(modules: list[nn.Module], kept: int) -> int:
    """Upper bound on the exported bytes of ``modules`` (pruned tables) keeping ``kept``
    values in all, whichever they are: their fixed tensors plus the encodings of their
    masked tensors (exact whenever all of those pick the same encoding)."""
    fixed, shapes = 0, []
    for module in modules:
        exported, _ = export_table(module)
        fixed += artifact_bytes({k: v for k, v in exported.items() if not is_encoding_key(k)})
        shapes += encoded_shapes(exported)
    return fixed + encoded_bytes_bound(shapes, kept)


def table_bytes(model: nn.Module, artifact: dict | None = None) -> dict[str, int]:
    """Exported bytes of every compressed table (what a memory budget counts), read
    from ``artifact`` (an :func:`export_model` result) when given."""
    if artifact is None:
        return {name: artifact_bytes(export_table(module)[0]) for name, module in compressed_modules(model)}
    tensors = artifact["tensors"]
    return {name: artifact_bytes({k: v for k, v in tensors.items() if k.startswith(f"{name}::")}) for name in artifact["modules"]}


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def check_fits(model: nn.Module, artifact: dict) -> None:
    """Refuse, in one line, an artifact of another model: its recorded class name, the
    kind and shape of each compressed table, and the shape of every other tensor."""
    name = type(model).__name__
    saved = artifact.get("model")
    if saved is not None and saved != name:
        raise UserError(f"the artifact holds a {saved} model, not a {name}; load it into a {saved} (or export this model again)")
    what = f"a {saved} artifact" if saved else "the artifact"
    fresh = dict(compressed_modules(model))
    for table, kind in artifact["modules"].items():
        module = fresh.get(table)
        if module is None:
            raise UserError(f"{what} stores '{table}' as a {kind}, which {name} does not have; it is not a {name} artifact")
        if embedding_kind(module) != kind:
            raise UserError(
                f"{what} stores '{table}' as a {kind} but {name} has a {embedding_kind(module)} there; it is not a {name} artifact"
            )
        want = artifact.get("table_shapes", {}).get(table)
        have = [module.num_embeddings, module.embedding_dim]
        if want is not None and have != list(want):
            raise UserError(f"{what} has '{table}' of shape {list(want)} but {name} has {have} (another dataset or size?)")
    extra = [t for t in fresh if t not in artifact["modules"]]
    if extra:
        raise UserError(f"{name} compresses '{extra[0]}' but {what} stores it plainly; it is not a {name} artifact")
    state = model.state_dict()
    for key, value in artifact["tensors"].items():
        if "::" not in key and key in state and tuple(state[key].shape) != tuple(value.shape):
            raise UserError(
                f"{what} has '{key}' of shape {list(value.shape)} but {name} has {list(state[key].shape)} "
                "(another dataset or size?)"
            )


def import_model(model: nn.Module, artifact: dict) -> nn.Module:
    """Load an :func:`export_model` artifact into a freshly built model of the same class
    (an artifact of another model, table kind or shape is refused in one line)."""
    check_fits(model, artifact)
    tensors = artifact["tensors"]

    def own(name):
        prefix = f"{name}::"
        return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

    for name, class_name in artifact["modules"].items():
        parts = own(name)
        pruned = [k.split("::", 1)[1] for k in artifact.get("masked_in_tables", []) if k.startswith(f"{name}::")]
        masks = {}
        for key in pruned:  # a composition's masked tensor: decode it, mask it again below
            encoded = {k[len(key) + 1:]: parts.pop(k) for k in list(parts) if k.startswith(f"{key}.")}
            dense, mask = decode_masked(encoded)
            shape = torch.Size(encoded["full_shape"].tolist())
            parts[key], masks[key] = dense.reshape(shape), mask.reshape(shape)
        module = EMBEDDING_CLASSES[class_name].from_export(parts)
        for key, mask in masks.items():
            add_mask(module, key).mask.copy_(mask)
        _set_submodule(model, name, module)
    state = {k: v for k, v in tensors.items() if "::" not in k}
    for key in artifact.get("packed_bool", []):
        shape = torch.Size(tensors[f"{key}::shape"].tolist())
        state[key] = unpack_bits(tensors[f"{key}::bits"], shape.numel()).view(shape)
    masked = _masked_outside(model, artifact["modules"])
    for name in artifact.get("masked", []):
        if name not in masked:
            raise UserError(f"artifact has a masked tensor '{name}' that {type(model).__name__} does not mask")
        parts = own(name)
        dense, mask = decode_masked(parts)
        shape = torch.Size(parts["full_shape"].tolist())
        original_key, mask_key = masked_state_keys(*masked[name])
        state[original_key], state[mask_key] = dense.reshape(shape), mask.reshape(shape)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not _inside(k.rpartition(".")[0], artifact["modules"])]
    if missing or unexpected:
        raise UserError(
            f"artifact does not fit {type(model).__name__}: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    return model


def save_artifact(artifact: dict, path) -> int:
    """Write atomically; returns the artifact's byte size (sum of tensor nbytes)."""
    atomic_torch_save(artifact, path)
    return artifact_bytes(artifact["tensors"])


def load_artifact(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def model_accounting(model: nn.Module, artifact: dict | None = None) -> dict[str, int]:
    """Parameter and byte figures for summary.json.

    ``nonzero_parameters`` counts what a deployed model keeps (non-zeros of
    masked tensors, codebooks, ...); ``model_bytes`` is the exported artifact;
    ``dense_*`` are the same model with every table and tensor stored dense.
    """
    compressed = dict(compressed_modules(model))
    masked = _masked_outside(model, compressed)
    mask_state = {masked_state_keys(m, t)[1] for m, t in masked.values()}
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    nonzero = sum(table_parameter_count(m) for m in compressed.values())
    dense_params = sum(m.dense_parameter_count() for m in compressed.values())
    dense_bytes = sum(m.dense_bytes() for m in compressed.values())
    for key, value in model.state_dict().items():
        if key in mask_state or _inside(key.rpartition(".")[0], compressed):
            continue
        dense_bytes += value.numel() * value.element_size()
        if value.is_floating_point():
            nonzero += int(torch.count_nonzero(value))
            dense_params += value.numel()
    figures = {
        "trainable_parameters": int(trainable),
        "nonzero_parameters": int(nonzero),
        "dense_parameters": int(dense_params),
        "model_bytes": artifact_bytes((artifact or export_model(model))["tensors"]),
        "dense_model_bytes": int(dense_bytes),
    }
    if artifact is not None and artifact.get("serving"):
        from recbole_compress.serve.block import serving_bytes

        figures["serving_bytes"] = serving_bytes(artifact["serving"])  # token maps, seen items: not model bytes
    return figures
