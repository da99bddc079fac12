"""Small helpers: atomic writes (nothing half-written), run directories."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch

# keys that do not change what a run computes: left out of the run-directory hash
_NON_SEMANTIC_KEYS = {
    "output_dir", "checkpoint_dir", "show_progress", "gpu_id", "use_gpu", "state",
    "log_wandb", "wandb_project", "data_path", "worker", "verbose", "resume",
}


def _atomic_write(path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_torch_save(obj, path) -> None:
    _atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_text(path, text: str) -> None:
    _atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_write_json(path, obj) -> None:
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def to_jsonable(obj):
    """numpy scalars, tensors, paths and OrderedDicts -> plain JSON types."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return obj.item()
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def config_fingerprint(config) -> str:
    """Short hash of what a run computes: model, dataset and the user's settings."""
    external = {k: v for k, v in config.external_config_dict.items() if k not in _NON_SEMANTIC_KEYS}
    payload = json.dumps(
        {"model": config["model"], "dataset": config["dataset"], "settings": to_jsonable(external)},
        sort_keys=True,
    )
    return hashlib.sha1(payload.encode()).hexdigest()[:8]


def run_dir(config) -> Path:
    """``output_dir`` from the config, else ``saved/<model>-<dataset>-<hash>``:
    the same command always maps to the same folder, which is what resume needs."""
    chosen = config["output_dir"]
    if chosen:
        return Path(chosen).resolve()
    return Path("saved", f"{config['model']}-{config['dataset']}-{config_fingerprint(config)}").resolve()


def key_value_overrides(items: list[str], error) -> dict:
    """``--key=value`` arguments -> config keys, values parsed as YAML (as RecBole's
    command line does); ``error(message)`` reports anything else (argparse's parser.error)."""
    import yaml

    overrides = {}
    for item in items:
        if not item.startswith("--") or "=" not in item:
            error(f"unrecognised argument {item!r}; config keys go as --key=value")
        key, value = item[2:].split("=", 1)
        overrides[key] = yaml.safe_load(value)
    return overrides
