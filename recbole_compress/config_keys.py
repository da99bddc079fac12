"""Which config keys exist: a misspelled key (``prune_rat``) would otherwise be silently
ignored, since RecBole accepts any key. A key is known when a property file of RecBole
or of this project defines it, RecBole lists it as an argument, or RecBole's code reads
it without a default (the fixed list below: RecBole 1.2.1 is its last release)."""

from __future__ import annotations

import difflib
import warnings
from functools import lru_cache
from pathlib import Path

from recbole_compress.errors import UserError

# read by RecBole 1.2.1's code (or set by its Config) without a property-file default
_RECBOLE_CODE_KEYS = {
    "model", "dataset", "MODEL_TYPE", "MODEL_INPUT_TYPE", "device", "eval_type", "local_rank", "single_spec",
    "world_size", "nproc", "offset", "ip", "port", "config_files", "valid_neg_sample_args", "test_neg_sample_args",
    "CROP_ITEM_SEQ", "CROP_ITEM_SEQ_LEN", "INVERSE_ITEM_SEQ", "MASK_INDEX", "MASK_ITEM_SEQ", "NEG_ITEMS",
    "POS_ITEMS", "REORDER_ITEM_SEQ", "cin", "contrast", "encoding", "eta", "feature_num", "has_residual", "norm",
    "sim", "tail_ratio", "token_num_threshold", "use_filter", "xgb_early_stopping_rounds",
}
_NOT_SETTINGS = ("url.yaml", "kg_url.yaml")


class UnknownConfigKey(UserWarning):
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
