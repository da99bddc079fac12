"""Which method-vs-method claims of a multi-seed comparison survive the seeds.

    uv run python benchmarks/seed_claims.py OUT_DIR [--seed=2020]

Reads ``OUT_DIR/compare.csv`` (a comparison run with ``--seeds``) and the per-seed cells.
Per budget: every method's mean +- sd of the test metric and its share of the dense mean,
then every pair: the gap between the means, their pooled sd, and whether the better one is
ahead by more than the pooled sd ("ahead") or not ("tied"). ``--seed`` adds that seed's
one-seed ranking (what a single run would have claimed) for comparison.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
from pathlib import Path


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    from recbole_compress.seeds import ahead, pooled_sd

    out = Path(args.out)
    rows = list(csv.DictReader(open(out / "compare.csv")))
    cells = list(csv.DictReader(open(out / "cells.csv")))
    first = json.loads((out / "cells" / cells[0]["cell"] / "summary.json").read_text())
    metric = f"test_{first['valid_metric']}"  # the metric the comparison ranks by
    dense = next(float(r[metric]) for r in rows if r["method"] == "dense")
    single = {}
    if args.seed is not None:
        for cell in cells:
            if cell["seed"] == str(args.seed) and cell["status"].startswith("finished"):
                summary = json.loads((out / "cells" / cell["cell"] / "summary.json").read_text())
                single[(cell["method"], float(cell["budget"]))] = summary["test"][metric.removeprefix("test_")]
    for budget in sorted({float(r["budget"]) for r in rows if r["method"] != "dense"}, reverse=True):
        here = [r for r in rows if float(r["budget"]) == budget and r["method"] != "dense" and r.get(metric)]
        stats = {r["method"]: {"mean": float(r[metric]), "sd": float(r[f"{metric}_sd"]) if r.get(f"{metric}_sd") else None,
                               "n": int(r["n_seeds"] or 0)} for r in here}
        order = sorted(stats, key=lambda m: -stats[m]["mean"])
        print(f"\nbudget {budget:g} ({metric}, mean ± sd over seeds; dense mean {dense:.4f})")
        print("| method | mean ± sd | / dense | seeds |" + (f" seed {args.seed} alone |" if single else ""))
        print("|---|---|---|---|" + ("---|" if single else ""))
        for m in order:
            s = stats[m]
            one = f" {single.get((m, budget), float('nan')):.4f} |" if single else ""
            print(f"| {m} | {s['mean']:.4f} ± {s['sd']:.4f} | {s['mean'] / dense:.3f} | {s['n']} |{one}")
        print("| pair | gap of means | pooled sd | verdict |")
        print("|---|---|---|---|")
        for a, b in itertools.combinations(order, 2):
            gap = stats[a]["mean"] - stats[b]["mean"]
            pooled = pooled_sd(stats[a]["sd"], stats[a]["n"], stats[b]["sd"], stats[b]["n"])
            verdict = f"{a} ahead" if ahead(stats[a], stats[b]) else "tied"
            print(f"| {a} vs {b} | {gap:+.4f} | {pooled:.4f} | {verdict} |")


if __name__ == "__main__":
    main()
