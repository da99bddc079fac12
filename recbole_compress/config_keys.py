"""Which config keys exist: a misspelled key (``prune_rat``) would otherwise be silently
ignored, since RecBole accepts any key. A key is known when a property file of RecBole
or of this project defines it, RecBole lists it as an argument, or RecBole's code reads
it without a default (the fixed list below: RecBole 1.2.1 is its last release)."""

from __future__ import annotations

import difflib
import warnings
from functools import lru_cache
from pathlib import Path

from recbole_compress.errors import Notice, UserError

# read by RecBole 1.2.1's code (or set by its Config) without a property-file default
_RECBOLE_CODE_KEYS = {
    "model", "dataset", "MODEL_TYPE", "MODEL_INPUT_TYPE", "device", "eval_type", "local_rank", "single_spec",
    "world_size", "nproc", "offset", "ip", "port", "config_files", "valid_neg_sample_args", "test_neg_sample_args",
    "CROP_ITEM_SEQ", "CROP_ITEM_SEQ_LEN", "INVERSE_ITEM_SEQ", "MASK_INDEX", "MASK_ITEM_SEQ", "NEG_ITEMS",
    "POS_ITEMS", "REORDER_ITEM_SEQ", "cin", "contrast", "encoding", "eta", "feature_num", "has_residual", "norm",
    "sim", "tail_ratio", "token_num_threshold", "use_filter", "xgb_early_stopping_rounds",
}
_NOT_SETTINGS = ("url.yaml", "kg_url.yaml")


class UnknownConfigKey(Notice):
    """A config key that nothing defines (probably misspelled)."""


@lru_cache(maxsize=1)
def known_keys() -> frozenset[str]:
    import recbole
    from recbole.utils import argument_list

    from recbole_compress.property_files import load_yaml, properties_dir

    keys = set(_RECBOLE_CODE_KEYS)
    for group in ("general_arguments", "training_arguments", "evaluation_arguments", "dataset_arguments"):
        keys.update(getattr(argument_list, group))
    roots = [Path(recbole.__file__).resolve().parent / "properties", properties_dir()]
    for root in roots:
        for file in root.rglob("*.yaml"):
            if file.name in _NOT_SETTINGS or file.parent.name == "tune":  # search files are not settings
                continue
            keys.update(str(k) for k in load_yaml(file, "property file"))
    return frozenset(keys)


def unknown_key_message(key: str) -> str:
    close = difflib.get_close_matches(key, sorted(known_keys()), n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else "no property file of RecBole or recbole-compress defines it"
    return f"unknown config key '{key}' ({hint}); it is ignored"


def check_keys(keys, strict: bool = False) -> list[str]:
    """Warn (``strict``: raise a one-line UserError) for every key nothing defines."""
    unknown = [k for k in keys if k not in known_keys()]
    for key in unknown:
        message = unknown_key_message(key)
        if strict:
            raise UserError(f"{message.removesuffix('; it is ignored')}; fix it or drop --strict")
        warnings.warn(message, UnknownConfigKey, stacklevel=3)
    return unknown


# -- values -------------------------------------------------------------------------------

# keys whose value must be > 0 (RecBole would fail late, or loop zero times, on anything else)
_POSITIVE = {
    "epochs", "train_batch_size", "eval_batch_size", "learning_rate", "embedding_size", "hidden_size",
    "inner_size", "n_heads", "stopping_step", "eval_step", "MAX_ITEM_LIST_LENGTH",
}
_NON_NEGATIVE = {"weight_decay", "reg_weight", "n_layers", "hidden_dropout_prob", "attn_dropout_prob", "dropout_prob"}


def _kind(value) -> str | None:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, dict):
        return "a mapping"
    return None  # strings and lists: RecBole accepts several forms for many of them


def _fits(value, kind: str) -> bool:
    if kind == "true or false":
        return isinstance(value, bool)
    if kind == "an integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "a number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, dict)


def check_values(config) -> None:
    """A value of the wrong kind for its key (``--epochs=abc``), or out of range
    (``--epochs=0``), is one line before any work: the key's default in the property
    files says what kind of value it takes (a key without a default takes anything)."""
    defaults = config.internal_config_dict
    for key, value in config.external_config_dict.items():
        if value is None:
            continue
        kind = _kind(defaults.get(key))
        if kind is not None and not _fits(value, kind):
            raise UserError(f"{key}={value!r} is not {kind} (its default is {defaults[key]!r}); give e.g. --{key}={defaults[key]}")
        if key in _POSITIVE and isinstance(value, (int, float)) and not value > 0:
            raise UserError(f"{key}={value} must be greater than 0")
        if key in _NON_NEGATIVE and isinstance(value, (int, float)) and value < 0:
            raise UserError(f"{key}={value} must not be negative")
