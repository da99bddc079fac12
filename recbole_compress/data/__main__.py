"""Convert the raw research datasets into RecBole atomic files.

Usage:
  python -m recbole_compress.data convert FORMAT SRC DST [--name NAME] [--valid-ratio 0.1] [--seed 2020] [--keep-unseen]
  python -m recbole_compress.data list

FORMAT is one of (see ``list``):
  lightgcn  yelp2018, tiktok: train.txt, test.txt, optional valid.txt ('user item item ...', 0-based)
  lastfm    lastfm: data1.txt (train), test1.txt (test) ('user item weight', 1-based)
  s3rec     beauty: the single *.txt of chronological 'user item item ...' sequences (1-based)
  unisrec   scientific: P.{train,valid,test}.inter + P.text (+ P.item2index, P.user2index)
  seqsplit  tiktok as sequences for TransRec: train/valid/test.txt + *.npy item features
  ctcvr     ali-ccp-sample, aliexpress-sample: the CSV file(s) with click + purchase/conversion labels
  funnel    RecBole's ml-100k folder: a DERIVED click/conversion funnel (interactions + --negatives
            sampled non-interactions per interaction; click = interacted, conversion = rating >= 4),
            split at random into train/valid/test (--valid-ratio each for valid and test, --seed)

The files are written into DST as {NAME}.train.inter, {NAME}.valid.inter, {NAME}.test.inter
(lightgcn, lastfm, unisrec) or {NAME}.inter (s3rec, ctcvr), plus {NAME}.convert.json; NAME
defaults to the basename of DST, so RecBole loads them with data_path=<parent of DST> and
dataset=NAME. Without a validation file (yelp2018, lastfm) valid is carved from train: users
with >= 5 train interactions give max(1, floor(ratio * n)) of them, drawn with
numpy.random.default_rng(SEED). Valid/test rows whose item or user never appears in train are
dropped (counted in the summary) unless --keep-unseen. DST is built in a temporary sibling
folder and renamed into place only when complete.

Example:
  python -m recbole_compress.data convert lastfm ../shared/datasets/lastfm dataset/lastfm
  python -m recbole_compress.data convert funnel .venv/lib/python3.11/site-packages/recbole/dataset_example/ml-100k dataset/ml-100k-funnel

On success one summary line is printed; bad input prints one 'error: ...' line and exits 2.
"""

from __future__ import annotations

import argparse
import sys


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line."""

    def error(self, message):  # noqa: D401 - argparse API
        print(f"error: {' '.join(message.split())} (see 'python -m recbole_compress.data --help')", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m recbole_compress.data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="{convert,list}", parser_class=_Parser)
    conv = sub.add_parser("convert", help="convert SRC (in FORMAT) into the dataset folder DST")
    conv.add_argument("format", metavar="FORMAT", help="lightgcn, lastfm, s3rec, unisrec, seqsplit, ctcvr or funnel")
    conv.add_argument("src", metavar="SRC", help="source dataset folder (or file for s3rec/ctcvr)")
    conv.add_argument("dst", metavar="DST", help="output dataset folder; files are named NAME.*")
    conv.add_argument("--name", default=None, help="dataset name (default: basename of DST)")
    conv.add_argument(
        "--valid-ratio", type=float, default=0.1,
        help="share of each user's train interactions carved into valid when the source has none (default 0.1)",
    )
    conv.add_argument(
        "--negatives", type=int, default=2,
        help="funnel: sampled non-interactions per interaction (default 2)",
    )
    conv.add_argument("--seed", type=int, default=2020, help="seed of the validation carve (default 2020)")
    conv.add_argument(
        "--keep-unseen", action="store_true",
        help="keep valid/test rows whose item or user never appears in train (dropped by default)",
    )
    sub.add_parser("list", help="list the formats")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from recbole_compress.data.convert import FORMATS, ConvertError, convert_dataset

    if args.command == "list":
        for fmt, (_, description) in FORMATS.items():
            print(f"{fmt:9s} {description}")
        return 0
    if args.command != "convert":
        print("error: give a command, 'convert' or 'list' (see 'python -m recbole_compress.data --help')",
              file=sys.stderr)
        return 2
    try:
        result = convert_dataset(
            args.format, args.src, args.dst,
            name=args.name, valid_ratio=args.valid_ratio, seed=args.seed, keep_unseen=args.keep_unseen,
            negatives=args.negatives,
        )
    except ConvertError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; nothing was written to DST", file=sys.stderr)
        return 130
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
