"""Dataset converters: raw research datasets -> RecBole atomic files.

See :mod:`recbole_compress.data.convert` for the formats and rules, and
``python -m recbole_compress.data --help`` for the command line.
"""

from recbole_compress.data.convert import (
    FORMATS,
    ConversionResult,
    ConvertError,
    carve_validation,
    convert_ctcvr,
    convert_dataset,
    convert_funnel,
    convert_lastfm,
    convert_lightgcn,
    convert_s3rec,
    convert_unisrec,
)

__all__ = [
    "FORMATS",
    "ConversionResult",
    "ConvertError",
    "carve_validation",
    "convert_ctcvr",
    "convert_dataset",
    "convert_funnel",
    "convert_lastfm",
    "convert_lightgcn",
    "convert_s3rec",
    "convert_unisrec",
]
