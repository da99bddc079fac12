"""Served models side by side with their dense backbones, measured in one run: exported
bytes, bytes held in memory, process RSS after load, and top-10 latency.

    OMP_NUM_THREADS=1 uv run python benchmarks/serve.py --dataset=ml-100k --threads=1 \\
        --models=general,sequential [--epochs=5] [--key=value ...]
    OMP_NUM_THREADS=1 uv run python benchmarks/serve.py --dataset=beauty --models=sequential --epochs=2

Trains each model of the chosen groups once (short runs: quality is not the point; a
finished run in ``benchmarks/out/serve-<dataset>/runs/`` is reused), then:

- exported: ``model_bytes`` and ``serving_bytes`` of ``model.pt``;
- held: bytes of the tensors the served model keeps (``Recommender.memory()``);
- RSS: the growth of a fresh process's anonymous resident memory (heap after
  ``malloc_trim``; libtorch's code pages, mapped in by each kernel's first call, are not
  the model's) over ``load()`` and one top-10 request, imports done and kernels warmed
  before (one subprocess per model);
- latency: ``recommend()`` end to end (tokens in, tokens out), top-10, for one user
  (history) and for 128 at once; best of ``--repeats``, all models interleaved in one
  process, one thread.

Every figure is also a ratio to the model's dense backbone (BPR for BPR_*, ...). A
synthetic section times table scoring alone at 100k and 1M items (JPQ codes, a 20%
ticket and dense tables of 64 columns, random values). Outputs: ``report.md`` and
``summaries.json`` in ``benchmarks/out/serve-<dataset>/`` (git-ignored).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from common import benchmark_parser, parse_with_overrides, prepare_run, write_report  # benchmarks/common.py

# (label, model, settings, dense backbone's label); general models first
_TICKET = {"prune_schedule": "oneshot", "prune_rounds": 1, "prune_rate": 0.8, "ticket_select": "sparsest"}
_STAGE1 = {"threshold_epochs": 5}
GROUPS = {
    "general": [
        ("BPR", "BPR", {}, "BPR"),
        ("BPR_LTH 20%", "BPR_LTH", _TICKET, "BPR"),
        ("BPR_CERP 5%", "BPR_CERP", {"memory_budget": 0.05, **_STAGE1}, "BPR"),
        ("BPR_QR {qr}", "BPR_QR", {"memory_budget": "{qr}"}, "BPR"),
        ("LightGCN", "LightGCN", {}, "LightGCN"),
        ("LightGCN_CERP 5%", "LightGCN_CERP", {"memory_budget": 0.05, **_STAGE1}, "LightGCN"),
    ],
    "sequential": [
        ("SASRec", "SASRec", {}, "SASRec"),
        ("SASRec_JPQ m=8", "SASRec_JPQ", {"jpq_code_length": 8}, "SASRec"),
    ],
}
BATCH = 128
K = 10


def parse():
    parser = benchmark_parser(__doc__, "serve", "ml-100k")
    parser.add_argument("--models", default="general,sequential", help="groups: general, sequential")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per training run (a ticket: per round)")
    parser.add_argument("--qr_budget", default="0.2",
                        help="QR's memory_budget (its two tables need at least 2*sqrt(N) rows: 5%% does not fit ml-100k)")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per model and batch size (best kept)")
    parser.add_argument("--rss", default=None, help=argparse_suppress())
    return parse_with_overrides(parser)


def argparse_suppress():
    import argparse

    return argparse.SUPPRESS


def specs(groups: str, qr: str) -> list[tuple[str, str, dict, str]]:
    chosen = []
    for group in groups.split(","):
        if group not in GROUPS:
            raise SystemExit(f"error: --models={groups}: groups are {', '.join(GROUPS)}")
        for label, model, settings, base in GROUPS[group]:
            settings = {k: (float(qr) if v == "{qr}" else v) for k, v in settings.items()}
            chosen.append((label.format(qr=f"{float(qr):.0%}"), model, settings, base))
    return chosen


# -- training -------------------------------------------------------------------------------

def train(label, model, settings, dataset, common, runs: Path) -> Path:
    """The run folder of ``model`` (trained now unless a finished run is there)."""
    from recbole_compress import run_recbole_compress

    folder = runs / label.replace(" ", "_").replace("%", "pct").replace("=", "")
    if (folder / "summary.json").is_file() and (folder / "model.pt").is_file():
        return folder
    started = time.time()
    run_recbole_compress(model, dataset, config_dict={**common, **settings, "output_dir": str(folder)})
    print(f"trained {label} in {time.time() - started:.0f} s", flush=True)
    return folder


# -- memory ------------------------------------------------------------------------------------

def rss_bytes() -> int:
    """Resident anonymous memory (the heap: tensors, Python objects) after collecting garbage
    and handing freed heap back to the system; libtorch's code pages, which the first call
    of each kernel maps in (several MB), are file-backed and not counted."""
    import ctypes
    import gc

    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no RssAnon in /proc/self/status")


def measure_rss(folder: str) -> None:
    """(subprocess) RSS growth over load() and one top-10 request, imports done before."""
    import scipy.sparse  # noqa: F401
    import torch
    from recbole.data.interaction import Interaction  # noqa: F401

    from recbole_compress.registry import get_model
    from recbole_compress.serve import load
    from recbole_compress.serve.recommender import Recommender  # noqa: F401

    torch.set_num_threads(1)
    get_model(json.loads((Path(folder) / "summary.json").read_text())["model"])  # import the model's classes
    _warm_kernels()
    before = rss_bytes()
    rec = load(folder)
    loaded = rss_bytes()
    _request(rec, 1, 0)
    print(json.dumps({"after_load": loaded - before, "after_request": rss_bytes() - before}))


def _warm_kernels() -> None:
    """First calls of BLAS, sparse and bag kernels allocate their workspaces (several MB,
    the same for every model): done before the baseline, so the growth is the model's."""
    import warnings

    import torch
    import torch.nn.functional as F

    query, table = torch.randn(128, 64), torch.randn(300, 64)
    (query @ table.T).topk(10, dim=1)
    (query[:1] @ table.T).topk(10, dim=1)
    F.embedding_bag(torch.zeros(6, dtype=torch.int32), query.T.contiguous(), torch.tensor([0, 3, 6], dtype=torch.int32),
                    per_sample_weights=torch.ones(6), include_last_offset=True, mode="sum")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        matrix = torch.sparse_csr_tensor(torch.tensor([0, 1, 2], dtype=torch.int32), torch.tensor([0, 1], dtype=torch.int32),
                                         torch.ones(2), (2, 64))
    matrix @ query[:1].T


def rss_of(folder: Path) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--rss", str(folder)], capture_output=True, text=True, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    )
    if done.returncode:
        raise SystemExit(f"error: measuring RSS of {folder} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- latency ---------------------------------------------------------------------------------

_QUERIES: dict = {}


def _request(rec, batch: int, start: int):
    """One ``recommend`` call of ``batch`` users (general) or histories (sequential)."""
    import random

    key = (id(rec), batch)
    if key not in _QUERIES:
        rng = random.Random(0)
        if rec.sequential:
            length = rec.max_length or 50
            _QUERIES[key] = [[rec.items.token(rng.randrange(1, rec.num_items)) for _ in range(length)] for _ in range(BATCH)]
        else:
            _QUERIES[key] = [rec.users.token(rng.randrange(1, len(rec.users))) for _ in range(BATCH)]
    queries = _QUERIES[key]
    chosen = [queries[(start + i) % len(queries)] for i in range(batch)]
    if rec.sequential:
        return rec.recommend(history=chosen, k=K)
    return rec.recommend(users=chosen, k=K)


def time_interleaved(recs: dict, repeats: int) -> dict:
    """Best wall time of a top-10 call per model, batch 1 and 128, models interleaved."""
    best = {label: {1: float("inf"), BATCH: float("inf")} for label in recs}
    for label, rec in recs.items():  # warm up (first calls allocate)
        for batch in (1, BATCH):
            _request(rec, batch, 0)
    import random

    order = list(recs)
    for r in range(repeats):
        random.Random(r).shuffle(order)  # no model always runs right after the same one
        for batch in (1, BATCH):
            for label in order:
                rec = recs[label]
                started = time.perf_counter()
                _request(rec, batch, r)
                best[label][batch] = min(best[label][batch], time.perf_counter() - started)
    return best


# -- synthetic table scoring -------------------------------------------------------------------

def synthetic(repeats: int) -> list[str]:
    """Scoring alone (no model): dense, a 20% ticket (row-sparse) and JPQ (m=8, 256 centroids)
    tables of 64 columns at 100k and 1M items, random values; best of ``repeats``."""
    import torch

    from recbole_compress.embeddings.serving import DenseMatrix, matrix_form
    from recbole_compress.embeddings.serving_coded import CodedTable
    from recbole_compress.embeddings.sparse_codec import encode_masked

    g = torch.Generator().manual_seed(0)
    lines = ["| items | table | held MB | batch 1 (ms) | vs dense | batch 128 (ms) | vs dense |", "|---|---|---|---|---|---|---|"]
    for items in (100_000, 1_000_000):
        weight = torch.randn(items, 64, generator=g)
        mask = torch.rand(items, 64, generator=g) < 0.2
        codes = torch.randint(0, 256, (items - 1, 8), dtype=torch.uint8, generator=g)
        tables = {
            "dense": DenseMatrix(weight),
            "ticket 20% (CSR)": matrix_form(encode_masked(weight * mask, mask)),
            "JPQ m=8 (PQTopK)": CodedTable(codes, torch.randn(8, 256, 8, generator=g), torch.zeros(0, 64), items, 0),
        }
        del weight, mask
        times = {name: {} for name in tables}
        for batch in (1, BATCH):
            query = torch.randn(batch, 64, generator=g)
            for name, table in tables.items():
                score = table.score if hasattr(table, "score") else table.scores
                score(query)
            for _ in range(max(3, repeats // (10 if items > 500_000 else 3))):
                for name, table in tables.items():
                    score = table.score if hasattr(table, "score") else table.scores
                    started = time.perf_counter()
                    score(query)
                    elapsed = time.perf_counter() - started
                    times[name][batch] = min(times[name].get(batch, float("inf")), elapsed)
        for name, table in tables.items():
            t1, t128 = times[name][1], times[name][BATCH]
            lines.append(
                f"| {items:,} | {name} | {table.held_bytes() / 2**20:.1f} | {t1 * 1e3:.2f} | {t1 / times['dense'][1]:.2f}x "
                f"| {t128 * 1e3:.1f} | {t128 / times['dense'][BATCH]:.2f}x |"
            )
        del tables
    return lines


# -- the report --------------------------------------------------------------------------------

def machine() -> str:
    import torch

    cpu = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} thread), python {platform.python_version()}"


def ratio(value, base) -> str:
    return f"{value / base:.2f}x" if base else "n/a"


def main():
    args, overrides = parse()
    if args.rss:
        return measure_rss(args.rss)
    out, data_path = prepare_run(args, "serve")
    import torch

    torch.set_num_threads(1)
    common = {"data_path": str(data_path), "show_progress": False, "epochs": args.epochs, "state": "WARNING",
              "eval_batch_size": 4096, **overrides}
    chosen = specs(args.models, args.qr_budget)
    folders = {label: train(label, model, settings, args.dataset, common, out / "runs") for label, model, settings, _ in chosen}
    base_of = {label: base for label, _, _, base in chosen}

    from recbole_compress.serve import load

    summaries, recs, rows = {}, {}, {}
    for label, folder in folders.items():
        summary = json.loads((folder / "summary.json").read_text())
        rec = load(folder)
        recs[label] = rec
        held = rec.memory()
        rows[label] = {
            "model": summary["model"], "family": rec.family,
            "model_bytes": summary["model_bytes"], "serving_bytes": summary.get("serving_bytes", 0),
            "held_model": held["model"], "held_serving": held["serving"], "rss": rss_of(folder),
            "test_ndcg@10": (summary.get("test") or {}).get("ndcg@10"),
        }
        summaries[label] = {**rows[label], "summary": summary}
    best = time_interleaved(recs, args.repeats)
    for label in rows:
        rows[label]["batch1_s"], rows[label]["batch128_s"] = best[label][1], best[label][BATCH]

    lines = [
        f"# Served models vs their dense backbones on {args.dataset}", "",
        f"command: `OMP_NUM_THREADS=1 uv run python benchmarks/serve.py {' '.join(sys.argv[1:])}`  ",
        f"machine: {machine()}  ",
        f"date: {time.strftime('%Y-%m-%d %H:%M')}; training settings: `{json.dumps({**common, 'data_path': 'dataset/'})}`", "",
        "Bytes: exported = `model_bytes` of model.pt (serving data apart); held = tensors the served model keeps; "
        "RSS = growth of a fresh process's anonymous resident memory (heap, after `malloc_trim`; not libtorch's code "
        "pages) over `load()` (and after one top-10 request), imports done and kernels warmed before; it includes the "
        "serving data, Python objects and allocator slack. Latency: `recommend()` top-10, tokens in and out, "
        f"best of {args.repeats}, models interleaved, 1 thread. Ratios: to the dense backbone in the same run.", "",
        "| model | served as | exported KB | vs dense | held KB | held / exported | RSS KB: load (+ request) | RSS vs dense "
        "| 1 user (us) | vs dense | 128 users (ms) | vs dense | serving data KB (exported / held) | test NDCG@10 |",
        "|" + "---|" * 14,
    ]
    for label, row in rows.items():
        base = rows[base_of[label]]
        lines.append(
            f"| {label} | {row['family']} | {row['model_bytes'] / 1024:,.1f} | {ratio(row['model_bytes'], base['model_bytes'])} "
            f"| {row['held_model'] / 1024:,.1f} | {ratio(row['held_model'], row['model_bytes'])} "
            f"| {row['rss']['after_load'] / 1024:,.0f} ({row['rss']['after_request'] / 1024:,.0f}) "
            f"| {ratio(row['rss']['after_load'], base['rss']['after_load'])} "
            f"| {row['batch1_s'] * 1e6:,.0f} | {ratio(row['batch1_s'], base['batch1_s'])} "
            f"| {row['batch128_s'] * 1e3:,.2f} | {ratio(row['batch128_s'], base['batch128_s'])} "
            f"| {row['serving_bytes'] / 1024:,.1f} / {row['held_serving'] / 1024:,.1f} "
            f"| {row['test_ndcg@10'] if row['test_ndcg@10'] is None else round(row['test_ndcg@10'], 4)} |"
        )
    lines += ["", "## Table scoring alone, synthetic tables (64 columns, random values)", "", *synthetic(args.repeats)]
    write_report(out, "\n".join(lines) + "\n", summaries)


if __name__ == "__main__":
    main()
