"""``--key=value`` config overrides: one parser for every command.

RecBole's ``run_recbole.py`` reads each value with ``eval()``. Here a value is read as a
Python literal (``1e-3``, ``None``, ``[10, 20]``, ``{'LS': 'valid_and_test'}``), then as
YAML (``true``, ``{split: {LS: valid_and_test}}``), else kept as the string: the same
meaning for the values people write, and no code runs. Light on purpose (no torch, no
RecBole): the command line parses before anything heavy is imported.
"""

from __future__ import annotations

import ast

from recbole_compress.errors import UserError


def parse_value(text: str):
    """A command-line value as data (never evaluated as code)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null", "~"):
        return None
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    # YAML reads a bare word as itself and "1e-3" as a string; only structured values win
    return value if isinstance(value, (dict, list)) else text


def parse_overrides(items: list[str]) -> dict:
    """``["--key=value", ...]`` -> ``{key: value}``; anything else is a one-line error."""
    overrides: dict = {}
    for item in items:
        if not item.startswith("--") or "=" not in item or item.startswith("--="):
            raise UserError(f"unrecognised argument {item!r}; config keys go as --key=value (e.g. --epochs=5)")
        key, value = item[2:].split("=", 1)
        key = key.strip()
        if key in overrides and overrides[key] != parse_value(value):
            raise UserError(f"--{key} is given twice with different values; keep one")
        overrides[key] = parse_value(value)
    return overrides
