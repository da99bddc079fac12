"""Dataset converters: raw research datasets -> RecBole atomic files.

See :mod:`recbole_compress.data.convert` for the formats and rules, docs/datasets.md for
the table, and ``python -m recbole_compress.data convert --help`` for the command line.
Importing this package does not import numpy.
"""

from recbole_compress.data import convert as _convert
from recbole_compress.data.convert import (  # noqa: F401 (re-exported)
    FORMATS,
    ConversionResult,
    ConvertError,
    convert_ctcvr,
    convert_dataset,
    convert_funnel,
    convert_lastfm,
    convert_lightgcn,
    convert_s3rec,
    convert_seqsplit,
    convert_unisrec,
)

__all__ = [n for n in _convert.__all__ if n.startswith("convert_") or n in ("FORMATS", "ConversionResult", "ConvertError", "carve_validation")]


def __getattr__(name: str):
    if name == "carve_validation":  # imported with numpy on first use
        return _convert.carve_validation
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
