"""What every benchmark script shares: config overrides from the command line and
converting a shared dataset on first use."""

from __future__ import annotations

import argparse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"
# how each shared dataset converts (format for `python -m recbole_compress.data convert`)
FORMATS = {
    "tiktok": "lightgcn",
    "yelp2018": "lightgcn",
    "lastfm": "lastfm",
    "beauty": "s3rec",
    "scientific": "unisrec",
}


def config_overrides(parser: argparse.ArgumentParser, extra: list[str]) -> dict:
    """``--key=value`` arguments the script does not know -> config keys, values
    parsed as YAML (as RecBole's command line does)."""
    import yaml

    overrides = {}
    for item in extra:
        if not item.startswith("--") or "=" not in item:
            parser.error(f"unrecognised argument {item!r}; config keys go as --key=value")
        key, value = item[2:].split("=", 1)
        overrides[key] = yaml.safe_load(value)
    return overrides


def ensure_dataset(name: str, data_path: Path) -> None:
    """Convert ``../shared/datasets/<name>`` into ``data_path`` unless it is there."""
    if name == "ml-100k" or (data_path / name).is_dir():
        return
    from recbole_compress.data import convert_dataset

    if name not in FORMATS:
        raise SystemExit(f"error: no converted dataset at {data_path / name}; convert it first")
    convert_dataset(FORMATS[name], SHARED / name, data_path / name)
