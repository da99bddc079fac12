"""Converters from raw research datasets to RecBole atomic files.

One module per source format (``lightgcn``, ``lastfm``, ``s3rec``, ``unisrec``, ``seqsplit``,
``ctcvr``, ``funnel``), each documenting its format once in a :class:`Format` record;
:mod:`.formats` gathers them into :data:`FORMATS` with the shared rules, and renders the
command-line help and the table of docs/datasets.md. Shared code: :mod:`.common` (result,
errors, readers, writers), :mod:`.output` (the destination folder) and :mod:`.splits`
(duplicates, overlap, validation carve; numpy).

Importing this package does not import numpy; a conversion does.
"""

from recbole_compress.data.convert.common import ConversionResult, ConvertError, Format
from recbole_compress.data.convert.ctcvr import convert_ctcvr
from recbole_compress.data.convert.formats import (
    FORMATS,
    OPTIONS,
    RULES,
    convert_dataset,
    formats_details_markdown,
    formats_help,
    formats_markdown,
)
from recbole_compress.data.convert.funnel import convert_funnel
from recbole_compress.data.convert.lastfm import convert_lastfm
from recbole_compress.data.convert.lightgcn import convert_lightgcn
from recbole_compress.data.convert.s3rec import convert_s3rec
from recbole_compress.data.convert.seqsplit import convert_seqsplit
from recbole_compress.data.convert.unisrec import convert_unisrec

__all__ = [
    "FORMATS",
    "OPTIONS",
    "RULES",
    "ConversionResult",
    "ConvertError",
    "Format",
    "carve_validation",
    "convert_ctcvr",
    "convert_dataset",
    "convert_funnel",
    "convert_lastfm",
    "convert_lightgcn",
    "convert_s3rec",
    "convert_seqsplit",
    "convert_unisrec",
    "formats_details_markdown",
    "formats_help",
    "formats_markdown",
]


def __getattr__(name: str):
    if name == "carve_validation":  # lives with numpy
        from recbole_compress.data.convert.splits import carve_validation

        return carve_validation
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
