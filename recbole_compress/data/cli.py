"""``recbole-compress convert FORMAT SRC DST [options]``: raw research datasets -> RecBole atomic files.

``configure(parser)`` adds the arguments to an argparse (sub)parser and ``run(args)``
converts, printing one summary line; bad input raises a :class:`~recbole_compress.errors.UserError`
(the caller prints ``error: ...`` and exits 2). ``--list`` prints the formats.
Importing this module, and ``configure``, load no numpy: only ``run`` loads the converters.
"""

from __future__ import annotations

import argparse
import sys
import textwrap

from recbole_compress.errors import UserError

HELP = "convert a raw research dataset into RecBole atomic files"
DESCRIPTION = (
    "Convert the dataset SRC, in FORMAT, into the dataset folder DST as RecBole atomic files "
    "(DST/NAME.train.inter, ...). Load it with data_path=<parent of DST> and dataset=NAME."
)


def configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add FORMAT SRC DST, --list and the conversion options to ``parser``."""
    from recbole_compress.data.convert.formats import FORMATS, OPTIONS, formats_help

    parser.description = textwrap.fill(DESCRIPTION, 88)
    parser.epilog = formats_help()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("format", nargs="?", metavar="FORMAT", help=", ".join(FORMATS))
    parser.add_argument("src", nargs="?", metavar="SRC", help="the source dataset folder (or file, see the formats)")
    parser.add_argument("dst", nargs="?", metavar="DST", help="the dataset folder to write; files are named NAME.*")
    parser.add_argument("--list", action="store_true", help="list the formats with their details and exit")
    parser.add_argument("--name", default=None, help="dataset name (default: the last part of DST)")
    for option in OPTIONS.values():
        if option.type is None:
            parser.add_argument(option.flag, dest=option.name, action="store_true", default=None, help=option.help)
        else:
            parser.add_argument(option.flag, dest=option.name, type=option.type, default=None,
                                metavar=option.metavar, help=option.help)
    return parser


def run(args: argparse.Namespace) -> int:
    """Convert as ``args`` says (or list the formats); return the exit status."""
    from recbole_compress.data.convert.formats import OPTIONS, formats_help

    if args.list:
        print(formats_help(details=True))
        return 0
    missing = [label for label, value in (("FORMAT", args.format), ("SRC", args.src), ("DST", args.dst)) if not value]
    if missing:
        raise UserError(
            f"missing {' '.join(missing)}; give FORMAT SRC DST, e.g. `convert lightgcn path/to/yelp2018 "
            "dataset/yelp2018` (--list shows the formats)"
        )
    from recbole_compress.data.convert import convert_dataset

    options = {key: getattr(args, key, None) for key in OPTIONS}
    try:
        result = convert_dataset(args.format, args.src, args.dst, name=args.name, **options)
    except KeyboardInterrupt:
        print("error: interrupted; DST was left as it was", file=sys.stderr)
        return 130
    print(result.summary())
    return 0
