"""Which search fills the Pareto front: the validation metric alone vs both objectives.

    uv run python benchmarks/search_objectives.py [--model=LightGCN_LTH] [--dataset=ml-100k]
        [--num_samples=12] [--search_file=properties/tune/lth.yaml] [--key=value ...]

Runs the same search file twice on one local Ray, with the same trial count, sampler
(Optuna TPE, same seed and startup trials) and fixed settings; only the objective
differs: ``validation`` (the metric alone, the search as it was) and ``pareto``
(validation metric up, exported bytes down). Prints one table: finished trials, points
on each search's own front, the hypervolume of that front (area dominated in share of
the dense model's bytes x validation metric, reference point: dense bytes and 0), and
the share of each front that a point of the other front dominates. ``--key=value`` are
config keys for every trial (e.g. ``--epochs=5``).
"""

from __future__ import annotations

import json
import time

from common import REPO, benchmark_parser, parse_with_overrides  # benchmarks/common.py


def main():
    parser = benchmark_parser(__doc__, "search-objectives", "ml-100k")
    parser.add_argument("--model", default="LightGCN_LTH")
    parser.add_argument("--num_samples", type=int, default=12)
    parser.add_argument("--search_file", default="properties/tune/lth.yaml")
    parser.add_argument("--max_concurrent", type=int, default=2)
    parser.add_argument("--seed", type=int, default=None, help="search algorithm seed (default: the config's seed)")
    args, overrides = parse_with_overrides(parser)
    import os
    import sys
    from pathlib import Path

    out = Path(args.out or REPO / "benchmarks" / "out" / f"search-objectives-{args.dataset}").resolve()

    sys.argv = sys.argv[:1]  # RecBole's Config reads --key=value from sys.argv
    from recbole_compress.pareto import dominated_share, hypervolume
    from recbole_compress.tune import import_ray, run_search

    ray, _ = import_ray()
    os.makedirs(out, exist_ok=True)
    os.chdir(out)  # RecBole's log/ of the driver's checks lands here
    results = {}
    try:
        for objective in ("validation", "pareto"):
            flags = {"num_samples": args.num_samples, "objective": objective, "scheduler": "fifo", "seed": args.seed,
                     "max_concurrent": args.max_concurrent, "storage_path": str(out), "name": objective}
            started = time.time()
            results[objective] = run_search(args.model, args.dataset, REPO / args.search_file,
                                            overrides=overrides, flags=flags)
            results[objective]["bench_wall_s"] = round(time.time() - started, 1)
    finally:
        ray.shutdown()
    metric = results["pareto"]["metric"]
    dense = next(float(r["dense_model_bytes"]) for res in results.values() for r in res["rows"] if r.get("dense_model_bytes"))
    print(f"\n{args.model} on {args.dataset}: {args.num_samples} trials per search, {metric} vs exported bytes; "
          f"hypervolume reference: dense model ({dense:,.0f} bytes), metric 0")
    print("| objective | finished | distinct front points | hypervolume | its front dominated by the other's | wall s |")
    print("|---|---|---|---|---|---|")
    summary = {}
    for objective, other in (("validation", "pareto"), ("pareto", "validation")):
        res, rows = results[objective], results[objective]["rows"]
        volume = hypervolume(rows, metric, dense)
        beaten = dominated_share(rows, results[other]["rows"], metric)
        finished = sum(r["status"] == "finished" for r in rows)
        front = len({(r[metric], r["model_bytes"]) for r in rows if r.get("pareto")})  # trials on one point count once
        summary[objective] = {"finished": finished, "front_points": front, "hypervolume": volume,
                              "dominated_by_other": beaten, "wall_s": res["bench_wall_s"]}
        print(f"| {objective} | {finished} | {front} | {volume:.4f} | "
              f"{'-' if beaten is None else f'{beaten:.0%}'} | {res['bench_wall_s']} |")
    ratio = summary["pareto"]["hypervolume"] / max(summary["validation"]["hypervolume"], 1e-12)
    print(f"hypervolume pareto / validation: {ratio:.2f}x")
    for objective in ("validation", "pareto"):
        print(f"\n{objective}: trials (prune_rate, prune_rounds) -> {metric}, bytes/dense, on front")
        for r in sorted(results[objective]["rows"], key=lambda r: r["trial_id"]):
            size = r.get("model_bytes")
            print(f"  {r['trial_id']}: ({r.get('prune_rate')}, {r.get('prune_rounds')}) -> {r.get(metric)}, "
                  f"{'-' if size is None else f'{size / dense:.3f}'}, {bool(r.get('pareto'))}")
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
