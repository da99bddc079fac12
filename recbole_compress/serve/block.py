"""What a served model needs besides its weights, stored in ``model.pt`` under ``serving``.

Written at export (``write_summary``) from the run's config and its training dataset:

- ``model``, ``model_type`` (``general`` or ``sequential``) and ``settings``: the run's
  resolved config as JSON (the values the model's constructor reads: sizes, layers, field
  names), without paths or devices;
- ``num_users``, ``num_items``: the rows of the ID tables;
- ``tensors``: the token <-> internal id maps of items (and users, for general models),
  each one uint8 buffer of UTF-8 bytes plus offsets, and for general models each user's
  training items (the graph LightGCN propagates over, the items ``exclude_seen``
  removes) as CSR: int32 row pointers, the narrowest integer columns.

Weights-only loading reads all of it (tensors, numbers and strings). Its bytes are
``serving_bytes``, counted apart from ``model_bytes``.
"""

from __future__ import annotations

import json

import numpy as np
import torch
from torch import Tensor

from recbole_compress.embeddings.base import artifact_bytes

SERVING_FORMAT = 1
SERVING_KEY = "serving"
# config keys that describe a machine or a run, not the model: never stored
LOCAL_KEYS = {
    "data_path", "checkpoint_dir", "output_dir", "dataset_save_path", "dataloaders_save_path", "device",
    "gpu_id", "use_gpu", "local_rank", "worker", "show_progress", "state", "log_wandb", "wandb_project",
}


def index_dtype(limit: int) -> torch.dtype:
    """The narrowest signed integer dtype for values below ``limit``."""
    if limit <= 32767:
        return torch.int16
    return torch.int32 if limit <= 2**31 - 1 else torch.int64


def encode_tokens(tokens) -> dict[str, Tensor]:
    """Tokens (index = internal id) as one UTF-8 buffer and offsets into it."""
    encoded = [str(t).encode("utf-8") for t in tokens]
    lengths = torch.tensor([len(b) for b in encoded], dtype=torch.int64)
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)])
    buffer = torch.frombuffer(bytearray(b"".join(encoded)), dtype=torch.uint8) if offsets[-1] else torch.zeros(0, dtype=torch.uint8)
    return {"bytes": buffer.clone(), "offsets": offsets.to(index_dtype(int(offsets[-1]) + 1))}


def seen_csr(dataset) -> dict[str, Tensor]:
    """Each user's training items (no duplicates, ascending) as CSR."""
    matrix = dataset.inter_matrix(form="csr")
    matrix.sum_duplicates()
    matrix.sort_indices()
    return {
        "crow": torch.from_numpy(matrix.indptr.astype(np.int64)).to(index_dtype(int(matrix.indptr[-1]) + 1)),
        "col": torch.from_numpy(matrix.indices.astype(np.int64)).to(index_dtype(matrix.shape[1])),
    }


def resolved_settings(config) -> dict:
    """The run's resolved config as JSON-able data (enums by name), local keys left out."""
    from enum import Enum

    from recbole_compress.run import to_jsonable

    out = {}
    for key, value in dict(config.final_config_dict).items():
        if key in LOCAL_KEYS:
            continue
        out[key] = value.name if isinstance(value, Enum) else to_jsonable(value)
    return out


def servable(config) -> bool:
    """General and sequential models on RecBole's own datasets (not the multi-task or
    content models, whose data has other shapes)."""
    from recbole.utils import ModelType

    model_class = config.model_class
    if getattr(model_class, "dataset_class", None) is not None or getattr(model_class, "trainer_class", None) is not None:
        return False
    return config["MODEL_TYPE"] in (ModelType.GENERAL, ModelType.SEQUENTIAL)


def serving_block(config, dataset) -> dict | None:
    """The ``serving`` entry of an artifact for a model trained on ``dataset`` (the
    training split), or None for models serving does not cover."""
    if not servable(config):
        return None
    from recbole.utils import ModelType

    sequential = config["MODEL_TYPE"] == ModelType.SEQUENTIAL
    tensors = {}
    item_field = dataset.iid_field
    for part, value in encode_tokens(dataset.field2id_token[item_field]).items():
        tensors[f"item_tokens.{part}"] = value
    if not sequential:
        for part, value in encode_tokens(dataset.field2id_token[dataset.uid_field]).items():
            tensors[f"user_tokens.{part}"] = value
        for part, value in seen_csr(dataset).items():
            tensors[f"seen.{part}"] = value
    return {
        "format": SERVING_FORMAT,
        "model": str(config["model"]),
        "model_type": "sequential" if sequential else "general",
        "settings": json.dumps(resolved_settings(config), sort_keys=True),
        "num_users": 0 if sequential else int(dataset.user_num),
        "num_items": int(dataset.item_num),
        "tensors": tensors,
    }


def serving_bytes(block: dict | None) -> int:
    """Bytes of a serving block: its tensors plus its settings text."""
    if not block:
        return 0
    return artifact_bytes(block["tensors"]) + len(block["settings"].encode("utf-8"))
