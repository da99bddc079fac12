"""Wall time of one comparison with 1 vs 2 cells at once, on a local Ray, in one run.

    uv run python benchmarks/compare_concurrency.py [--dataset=ml-100k] [--backbone=LightGCN]
        [--budgets=0.2,0.05] [--methods=LTH,CERP,QR] [--cpus=2] [--reference=DIR/compare.csv] [--key=value ...]

Runs the same comparison several times, each on a fresh local Ray with ``--cpus`` CPUs and
one CPU (one thread) per cell, with 1 or 2 cells at once in the ``--order`` given (e.g.
2,1,1,2 to even out a load that drifts). Prints the wall times and the speed-up, and
whether every table (and ``--reference``, e.g. a comparison resumed after its head node
died) holds the same test metrics. ``--key=value`` are config keys of
every cell (e.g. ``--epochs=8``).
"""

from __future__ import annotations

import csv
import time

from common import REPO, benchmark_parser, parse_with_overrides  # benchmarks/common.py


def metrics_of(path) -> dict:
    rows = list(csv.DictReader(open(path)))
    return {(r["method"], r["budget"]): {k: v for k, v in r.items() if k.startswith("test_")} for r in rows}


def main():
    parser = benchmark_parser(__doc__, "compare-concurrency", "ml-100k")
    parser.add_argument("--backbone", default="LightGCN")
    parser.add_argument("--budgets", default="0.2,0.05")
    parser.add_argument("--methods", default="LTH,CERP,QR")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--reference", default=None, help="a compare.csv whose test metrics must match")
    parser.add_argument("--order", default="1,2", help="cells at once, in the order run (e.g. 2,1,1,2: each twice)")
    args, overrides = parse_with_overrides(parser)
    import os
    import shutil
    import sys
    from pathlib import Path

    sys.argv = sys.argv[:1]
    out = Path(args.out or REPO / "benchmarks" / "out" / f"compare-concurrency-{args.dataset}").resolve()
    reference = Path(args.reference).resolve() if args.reference else None
    from recbole_compress.compare import run_comparison
    from recbole_compress.compare_ray import RayRunner
    from recbole_compress.ray_cluster import init_ray

    budgets = [float(b) for b in args.budgets.split(",")]
    methods = args.methods.split(",")
    walls, tables = {}, {}
    for run, concurrent in enumerate(int(c) for c in args.order.split(",")):
        folder = out / f"run{run}-concurrent-{concurrent}"
        shutil.rmtree(folder, ignore_errors=True)  # every cell trains
        folder.mkdir(parents=True)
        os.chdir(folder)
        ray = init_ray(num_cpus=args.cpus)  # a fresh local Ray: no warm workers from the last run
        started = time.perf_counter()
        run_comparison(args.dataset, args.backbone, budgets, methods, folder / "cmp", config_dict=overrides,
                       runner=RayRunner(cpu=1, max_concurrent=concurrent))
        walls.setdefault(concurrent, []).append(time.perf_counter() - started)
        ray.shutdown()
        tables[run] = metrics_of(folder / "cmp" / "compare.csv")
    cells = 1 + len(budgets) * len(methods)
    print(f"\n{args.backbone} on {args.dataset}: {len(methods)} methods x {len(budgets)} budgets + dense = {cells} cells; "
          f"local Ray with {args.cpus} CPUs, 1 CPU (1 thread) per cell; {os.cpu_count()} cores on this machine")
    print(f"runs in order: {args.order}")
    print("| cells at once | wall s (each run) | mean wall s | speed-up vs 1 at once |")
    print("|---|---|---|---|")
    mean = {c: sum(w) / len(w) for c, w in walls.items()}
    for concurrent in sorted(walls):
        each = ", ".join(f"{w:.1f}" for w in walls[concurrent])
        speedup = f"{mean[1] / mean[concurrent]:.2f}x" if 1 in mean else ""
        print(f"| {concurrent} | {each} | {mean[concurrent]:.1f} | {speedup} |")
    same = all(t == tables[0] for t in tables.values())
    print(f"same test metrics in every run: {same}")
    if reference:
        print(f"same test metrics as {reference}: {metrics_of(reference) == tables[0]}")


if __name__ == "__main__":
    main()
