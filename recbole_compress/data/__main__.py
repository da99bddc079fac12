"""``python -m recbole_compress.data convert FORMAT SRC DST [options]``: the same command as
``recbole-compress convert`` (:mod:`recbole_compress.data.cli`); ``list`` = ``convert --list``.
Bad input prints one ``error: ...`` line and exits 2.
"""

from __future__ import annotations

import argparse
import sys

from recbole_compress.data import cli
from recbole_compress.errors import UserError

PROG = "python -m recbole_compress.data"


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line."""

    def error(self, message):  # noqa: D401 - argparse API
        print(f"error: {' '.join(message.split())} (see '{PROG} convert --help')", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Convert raw research datasets into RecBole atomic files.")
    sub = parser.add_subparsers(dest="command", metavar="{convert,list}", parser_class=_Parser)
    cli.configure(sub.add_parser("convert", help=cli.HELP))
    sub.add_parser("list", help="list the formats (same as convert --list)")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "list":
        args = parser.parse_args(["convert", "--list"])
    if args.command != "convert":
        print(f"error: give a command, 'convert' or 'list' (see '{PROG} --help')", file=sys.stderr)
        return 2
    try:
        return cli.run(args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
