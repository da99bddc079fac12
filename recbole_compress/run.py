"""A run: its config, its output folder and the files written into it.

One home for what every entry point (``quick_start``, ``compare``, ``tune``) and every
trainer needs: building and checking the config once, naming the output folder, the
settings fingerprint that resume and reuse depend on, claiming a folder (a folder that
holds a run of other settings is refused), weights-only checkpoint loads confined to the
run's folder, and atomic writes (nothing half-written) with the user's normal file
permissions. Light at import: torch and RecBole load only when a function needs them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import secrets
from pathlib import Path

from recbole_compress.errors import UserError

RUN_CONFIG_FILE = "run_config.json"
SUMMARY_FILE = "summary.json"
ARTIFACT_FILE = "model.pt"
SCHEMA_VERSION = 2  # of summary.json and run_config.json (1: before versions were recorded)

# keys that do not change what a run computes: left out of the fingerprint
NON_SEMANTIC_KEYS = {
    "output_dir", "checkpoint_dir", "show_progress", "gpu_id", "use_gpu", "state",
    "log_wandb", "wandb_project", "data_path", "worker", "verbose", "resume",
}


# -- files ------------------------------------------------------------------------------

def atomic_write(path, write) -> Path:
    """Write ``path`` through a temporary sibling renamed into place (never half-written).
    The file gets the permissions a plain ``open(path, "w")`` would (0666 less the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_write_json(path, obj) -> Path:
    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2) + "\n")


def atomic_torch_save(obj, path) -> Path:
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))


def to_jsonable(obj):
    """numpy scalars, tensors, paths, enums and OrderedDicts -> plain JSON types."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if hasattr(obj, "tolist") and callable(obj.tolist):  # tensors, numpy arrays and scalars
        return obj.tolist()
    if hasattr(obj, "item") and callable(obj.item):
        return obj.item()
    return str(obj)


def write_csv(rows: list[dict], path, first=()) -> Path:
    """All rows (union of their keys, ``first`` leading) as CSV, written atomically."""
    fields = list(dict.fromkeys([*first, *(k for row in rows for k in row)]))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(row.get(k, "")) for k in fields})
    return atomic_write_text(path, buffer.getvalue())


def _csv_value(value):
    return f"{value:.6g}" if isinstance(value, float) else value


def read_csv(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# -- identity of a run ----------------------------------------------------------------------

def settings_of(config) -> dict:
    """The user's settings (files, dict, command line) that change what a run computes."""
    return {
        k: v for k, v in to_jsonable(dict(config.external_config_dict)).items()
        if k not in NON_SEMANTIC_KEYS and k not in ("model", "dataset")
    }


def fingerprint(model: str, dataset: str, settings: dict) -> str:
    """Short hash of a run's identity (keys that change nothing it computes left out)."""
    semantic = {k: v for k, v in to_jsonable(settings).items() if k not in NON_SEMANTIC_KEYS}
    payload = json.dumps({"model": model, "dataset": dataset, "settings": semantic}, sort_keys=True)
    return hashlib.sha1(payload.encode()).hexdigest()[:8]


def config_fingerprint(config) -> str:
    """Short hash of what a run computes: model, dataset and the user's settings."""
    return fingerprint(config["model"], config["dataset"], settings_of(config))


def check_fingerprint(saved: str, config, path) -> None:
    """A state file from a run of other settings (in a folder reused by hand) is refused."""
    if saved != config_fingerprint(config):
        raise UserError(f"{path} belongs to a run with other settings; pass a new --output_dir or delete that folder")


def run_dir(config) -> Path:
    """``output_dir`` from the config, else ``saved/<model>-<dataset>-<hash>``:
    the same command always maps to the same folder, which is what resume needs."""
    chosen = config["output_dir"]
    if chosen:
        return Path(os.path.expanduser(str(chosen))).resolve()
    return Path("saved", f"{config['model']}-{config['dataset']}-{config_fingerprint(config)}").resolve()


# -- the output folder ------------------------------------------------------------------------

def prepare_folder(path, what: str = "output folder") -> Path:
    """Create ``path`` (and parents) and prove it writable, before any work is done."""
    path = Path(path)
    blocker = next((p for p in [path, *path.parents] if p.exists() or p.is_symlink()), None)
    if blocker is not None and not blocker.is_dir():
        raise UserError(f"{what} {path} cannot be created: {blocker} is a file; pass another --output_dir or move it")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{secrets.token_hex(4)}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise UserError(f"{what} {path} is not writable ({reason}); pass a writable --output_dir") from None
    return path


def claim_folder(out: Path, model: str, dataset: str, settings: dict) -> None:
    """Refuse a folder that holds a run of another model or other settings (its
    ``run_config.json``); otherwise record this run there, before training starts."""
    path = Path(out) / RUN_CONFIG_FILE
    mine = fingerprint(model, dataset, settings)
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
            theirs = fingerprint(saved["model"], saved["dataset"], saved.get("config", {}))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise UserError(f"{out} holds an unreadable {RUN_CONFIG_FILE}; pass another --output_dir or delete that folder") from None
        if theirs != mine:
            what = saved["model"] if saved["model"] != model else (
                f"{model} with other settings ({settings_difference(saved.get('config', {}), settings)})")
            raise UserError(f"{out} holds a run of {what}; pass another --output_dir or delete that folder")
    elif any(p.name in (SUMMARY_FILE, ARTIFACT_FILE) for p in Path(out).iterdir()):
        raise UserError(f"{out} holds another run's results; pass another --output_dir or delete that folder")
    write_run_config(out, model, dataset, settings)


def settings_difference(theirs: dict, mine: dict, shown: int = 3) -> str:
    """The settings two runs disagree on, as ``key: A there, B here`` (the first ``shown``
    keys), so a refused folder says which setting to change back."""
    def values(settings):
        return {k: json.dumps(v, sort_keys=True) for k, v in to_jsonable(settings).items() if k not in NON_SEMANTIC_KEYS}

    theirs, mine = values(theirs), values(mine)
    keys = sorted(k for k in theirs.keys() | mine.keys() if theirs.get(k) != mine.get(k))
    parts = [f"{k}: {theirs.get(k, 'unset')} there, {mine.get(k, 'unset')} here" for k in keys[:shown]]
    if len(keys) > shown:
        parts.append(f"{len(keys) - shown} more")
    return "; ".join(parts)


def write_run_config(out, model: str, dataset: str, settings: dict, data_path: str | None = None) -> None:
    record = {"schema_version": SCHEMA_VERSION, "model": model, "dataset": dataset, "config": dict(settings)}
    if data_path is not None:
        record["config"]["data_path"] = data_path
    atomic_write_json(Path(out) / RUN_CONFIG_FILE, record)


def read_run_config(out) -> dict:
    """``run_config.json`` of a finished run, as data (one line when it is damaged)."""
    path = Path(out) / RUN_CONFIG_FILE
    try:
        saved = json.loads(path.read_text())
        if not isinstance(saved.get("model"), str) or not isinstance(saved.get("dataset"), str):
            raise ValueError("model or dataset missing")
        if not isinstance(saved.get("config", {}), dict):
            raise ValueError("config is not a mapping")
    except FileNotFoundError:
        raise UserError(f"{out} is not a run folder: no {RUN_CONFIG_FILE}; give the folder a run wrote") from None
    except (ValueError, TypeError, AttributeError, OSError) as err:
        raise UserError(f"{path} is damaged ({err}); rerun the training or restore the file") from None
    return saved


def load_checkpoint(path, folder=None, map_location="cpu"):
    """A weights-only ``torch.load`` of ``path`` (which must lie inside ``folder`` when
    given). A truncated or unsafe file is one line naming it, never a traceback."""
    import pickle
    import zipfile

    import torch

    path = Path(path)
    if folder is not None:
        root = Path(folder).resolve()
        if not path.resolve().is_relative_to(root):
            raise UserError(f"checkpoint {path} lies outside the run folder {root}; refusing to load it")
    if not path.is_file():
        raise UserError(f"checkpoint {path} is missing; rerun the training (or delete the folder to start over)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise UserError(
            f"{path} is not a weights-only file (it holds pickled objects); it was not loaded, as it could run code"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise UserError(f"{path} is damaged ({first}); delete it and rerun the training") from None


# -- the config of a run ------------------------------------------------------------------------

def build_config(model=None, dataset=None, config_file_list=None, config_dict=None, overrides=None, strict=False):
    """RecBole's config for one run with every check done up front: the method's and the
    model's own checks, and a warning (``strict``: an error) for keys nothing defines.
    ``output_dir`` and ``checkpoint_dir`` are set to the run's folder (not created yet)."""
    import warnings

    from recbole_compress.config import Config
    from recbole_compress.config_keys import check_keys, check_values

    with warnings.catch_warnings():
        # RecBole's Config warns about its own defaults on every build (e.g. train_neg_sample_args)
        warnings.filterwarnings("ignore", module="recbole.*")
        config = Config(model=model, dataset=dataset, config_file_list=config_file_list,
                        config_dict=config_dict, overrides=overrides)
    check_keys([k for k in config.external_config_dict if k not in ("model", "dataset")], strict=strict)
    # the methods' and the model's own checks explain their keys best; then every other key's kind
    try:
        for method in getattr(config.model_class, "compression_chain", ()):
            if method.check_config is not None:
                method.check_config(config)  # bad settings fail before data loading
        own_check = getattr(config.model_class, "check_config", None)
        if own_check is not None:
            own_check(config)
    except (TypeError, ValueError):
        check_values(config)  # a value of the wrong kind that a check tripped over: one line naming it
        raise
    check_values(config)
    out = run_dir(config)
    config["output_dir"] = str(out)
    config["checkpoint_dir"] = str(out)
    return config


class claimed_run_folder:
    """``with claimed_run_folder(config) as out:`` create, check and claim the config's
    output folder before any data is loaded; a run that fails before it wrote anything
    but the claim leaves no folder behind (a folder that existed before is kept)."""

    def __init__(self, config):
        self.out = Path(config["output_dir"])
        self.created = not self.out.exists()
        prepare_folder(self.out)
        claim_folder(self.out, config["model"], config["dataset"], settings_of(config))

    def __enter__(self) -> Path:
        return self.out

    def __exit__(self, kind, error, trace) -> bool:
        if kind is not None and self.created and self.out.is_dir():
            if {p.name for p in self.out.iterdir()} <= {RUN_CONFIG_FILE}:
                import shutil

                shutil.rmtree(self.out, ignore_errors=True)
        return False
