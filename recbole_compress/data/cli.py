"""``recbole-compress convert`` (temporary adapter; the convert package replaces it)."""

from __future__ import annotations


def configure(parser) -> None:
    parser.add_argument("format", metavar="FORMAT", nargs="?", help="lightgcn, lastfm, s3rec, unisrec, seqsplit, ctcvr or funnel")
    parser.add_argument("src", metavar="SRC", nargs="?", help="source dataset folder (or file for s3rec/ctcvr)")
    parser.add_argument("dst", metavar="DST", nargs="?", help="output dataset folder; files are named NAME.*")
    parser.add_argument("--list", action="store_true", help="list the formats")
    parser.add_argument("--name", default=None)
    parser.add_argument("--valid-ratio", type=float, default=0.1)
    parser.add_argument("--negatives", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--keep-unseen", action="store_true")


def run(args) -> int:
    from recbole_compress.data.convert import FORMATS, convert_dataset
    from recbole_compress.errors import UserError

    if args.list:
        for fmt, (_, description) in FORMATS.items():
            print(f"{fmt:9s} {description}")
        return 0
    if not (args.format and args.src and args.dst):
        raise UserError("give FORMAT SRC DST, e.g. recbole-compress convert lastfm path/to/lastfm dataset/lastfm")
    result = convert_dataset(args.format, args.src, args.dst, name=args.name, valid_ratio=args.valid_ratio,
                             seed=args.seed, keep_unseen=args.keep_unseen, negatives=args.negatives)
    print(result.summary())
    return 0
