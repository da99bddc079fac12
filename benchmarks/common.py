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
    "ali-ccp-sample": "ctcvr",
    "aliexpress-sample": "ctcvr",
    "ml-100k-funnel": "funnel",  # DERIVED from RecBole's own ml-100k (see the converter)
    "tiktok-seq": "seqsplit",
}
# converted datasets whose source folder has another name
SOURCES = {"tiktok-seq": "tiktok"}


def source_of(name: str) -> Path:
    """Where a dataset's raw files are: ../shared/datasets/<name>, or for the
    ml-100k funnel the ml-100k folder that ships inside the recbole wheel."""
    if FORMATS.get(name) == "funnel":
        import recbole

        return Path(recbole.__file__).resolve().parent / "dataset_example" / "ml-100k"
    return SHARED / SOURCES.get(name, name)


def benchmark_parser(doc: str, kind: str, dataset: str) -> argparse.ArgumentParser:
    """The options every benchmark has: --dataset, --threads, --out (benchmarks/out/<kind>-<dataset>)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=dataset)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--out", default=None, help=f"output folder (default benchmarks/out/{kind}-<dataset>)")
    return parser


def parse_with_overrides(parser: argparse.ArgumentParser):
    """(the script's own arguments, the other --key=value as config keys)."""
    args, extra = parser.parse_known_args()
    return args, config_overrides(parser, extra)


def config_overrides(parser: argparse.ArgumentParser, extra: list[str]) -> dict:
    """``--key=value`` arguments the script does not know -> config keys, parsed as the
    ``recbole-compress`` command parses them."""
    from recbole_compress.errors import UserError
    from recbole_compress.overrides import parse_overrides

    try:
        return parse_overrides(extra)
    except UserError as err:
        parser.error(str(err))


def config_file_paths(spec: str | None) -> list[str]:
    """``--config_files`` (space-separated, relative to the repository or absolute) -> absolute
    paths, resolved before ``prepare_run`` moves into the output folder."""
    return [str((REPO / f).resolve()) if not Path(f).is_absolute() else f for f in (spec or "").split()]


def ensure_dataset(name: str, data_path: Path) -> None:
    """Convert ``../shared/datasets/<name>`` into ``data_path`` unless it is there."""
    if name == "ml-100k" or (data_path / name).is_dir():
        return
    from recbole_compress.data import convert_dataset

    if name not in FORMATS:
        raise SystemExit(f"error: no converted dataset at {data_path / name}; convert it first")
    convert_dataset(FORMATS[name], source_of(name), data_path / name)


def prepare_run(args, kind: str) -> tuple[Path, Path]:
    """Shared start of a benchmark: clear sys.argv (RecBole's Config reads --key=value
    from it; overrides are handed over explicitly), set torch threads, make the output
    folder ``benchmarks/out/<kind>-<dataset>`` (or ``--out``), convert the dataset if
    needed and move there (RecBole's log/ and saved/ land in the working directory).
    Returns (output folder, data_path)."""
    import os
    import sys

    sys.argv = sys.argv[:1]
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    out = Path(args.out or REPO / "benchmarks" / "out" / f"{kind}-{args.dataset}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    data_path = (REPO / "dataset").resolve()
    ensure_dataset(args.dataset, data_path)
    os.chdir(out)
    return out, data_path


def write_report(out: Path, text: str, summaries: dict) -> None:
    """``report.md`` and ``summaries.json`` in ``out``, and the report on stdout."""
    import json

    (out / "report.md").write_text(text)
    (out / "summaries.json").write_text(json.dumps(summaries, indent=2, default=str))
    print("\n" + text)
    print(f"report: {out / 'report.md'}")
