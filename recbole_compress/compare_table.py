"""A comparison's rows and outputs: one row per cell, the rows of several seeds pooled
into mean and sd, the best method per budget (or a tie), the Pareto front, and the files.

With one seed (no ``--seeds``) the table is today's: one row per method and budget,
the best method per budget is the top one. With several seeds every number is the mean
over the seeds that finished, each metric has a ``_sd`` column, the Pareto front is taken
on the means, and a method is "best" at a budget only if its mean is ahead of every
other method's by more than their pooled sd; otherwise the methods within it are tied.
"""

from __future__ import annotations

import json
from pathlib import Path

from recbole_compress.budgets import Plan, Table
from recbole_compress.seeds import ahead, format_mean_sd, mean_sd

COLUMNS = ["method", "budget", "max_bytes", "table_bytes", "fits", "table_parameters", "model_bytes",
           "train_time_s", "inference_time_s", "epochs", "quality_vs_dense", "pareto", "best_at_budget",
           "setting", "note"]
CELL_COLUMNS = ["cell", "method", "budget", "seed", "status", "node", "host", "pid", "train_time_s"]
COUNT_KEYS = ("max_bytes", "table_bytes", "table_parameters", "model_bytes", "planned_bytes", "epochs")
MEAN_KEYS = ("train_time_s", "inference_time_s")


# -- one cell ----------------------------------------------------------------------------------

def cell_row(method, budget, max_bytes, summary, tables: list[Table]) -> dict:
    test = summary.get("test") or {}
    if method == "dense":
        table_bytes = sum(t.dense_bytes for t in tables)
        table_params = sum((t.rows - 1) * t.dim for t in tables)
    else:
        table_bytes = sum((summary.get("table_bytes") or {}).values())
        table_params = summary.get("table_parameters")
    wall, tested = summary.get("wall_time_s"), summary.get("test_time_s")
    return {
        "method": method,
        "budget": budget,
        "max_bytes": max_bytes,
        "table_bytes": table_bytes,
        "fits": None if max_bytes is None else table_bytes <= max_bytes,
        "table_parameters": table_params,
        "model_bytes": summary.get("model_bytes"),
        "train_time_s": None if wall is None else round(wall - (tested or 0.0), 2),
        "inference_time_s": tested,
        "epochs": summary.get("epochs"),
        **{f"test_{k}": v for k, v in test.items()},
        **{f"valid_{k}": v for k, v in (summary.get("valid") or {}).items()},
    }


def reason_row(p: Plan, why: str) -> dict:
    return {"method": p.method, "budget": p.budget, "max_bytes": p.max_bytes, "fits": False, "note": why}


# -- several seeds ------------------------------------------------------------------------------

def pool_seeds(rows: list[dict]) -> list[dict]:
    """Rows of the same method and budget (one per seed) -> one row of means, with
    ``<metric>_sd`` and ``n_seeds``; rows without a seed pass unchanged."""
    groups: dict = {}
    for row in rows:
        groups.setdefault((row["method"], row["budget"]), []).append(row)
    pooled = []
    for group in groups.values():
        if all(r.get("seed") is None for r in group):
            pooled.extend(group)
            continue
        done = [r for r in group if r.get("table_bytes") is not None and r.get("note") is None]
        row = {"method": group[0]["method"], "budget": group[0]["budget"], "max_bytes": group[0].get("max_bytes"),
               "n_seeds": len(done), "seeds": " ".join(str(r["seed"]) for r in done)}
        if done:
            row["fits"] = all(r.get("fits") is not False for r in done) if group[0].get("max_bytes") is not None else None
            for key in COUNT_KEYS + MEAN_KEYS:
                mean, _ = mean_sd(r.get(key) for r in done)
                row[key] = None if mean is None else (round(mean) if key in COUNT_KEYS else round(mean, 2))
            for key in sorted({k for r in done for k in r if k.startswith(("test_", "valid_"))}):
                row[key], row[f"{key}_sd"] = mean_sd(r.get(key) for r in done)
            row["setting"] = done[0].get("setting")
        else:
            row["fits"] = False
        missing = [r for r in group if r not in done]
        if missing:
            notes = sorted({r["note"] for r in missing if r.get("note")})
            prefix = f"{len(done)} of {len(group)} seeds; " if done else ""
            row["note"] = prefix + "; ".join(notes)
        pooled.append(row)
    return pooled


def best_per_budget(rows: list[dict], key: str, bigger: bool) -> list[dict]:
    """Per budget: the best method that fits, or the methods tied with it. With seeds
    (``n_seeds``), best means ahead of every other by more than the pooled sd; sets
    ``row['best_at_budget']`` to ``best`` or ``tied``."""
    sign = 1.0 if bigger else -1.0
    out = []
    for budget in sorted({r["budget"] for r in rows if r["method"] != "dense"}, reverse=True):
        fits = [r for r in rows if r["budget"] == budget and r.get("fits") and r.get(key) is not None
                and r["method"] != "dense"]
        if not fits:
            out.append({"budget": budget, "best": None, "tied": [], "row": None})
            continue
        top = max(fits, key=lambda r: sign * r[key])
        if top.get("n_seeds", 1) < 2:  # one seed (--seeds with one, too): no spread to judge a gap by
            top["best_at_budget"] = "best"
            out.append({"budget": budget, "best": top["method"], "tied": [], "row": top})
            continue
        stats = {id(r): {"mean": r[key], "sd": r.get(f"{key}_sd"), "n": r.get("n_seeds", 0)} for r in fits}
        tied = [r for r in fits if r is not top and not ahead(stats[id(top)], stats[id(r)], bigger)]
        top["best_at_budget"] = "tied" if tied else "best"
        for r in tied:
            r["best_at_budget"] = "tied"
        out.append({"budget": budget, "best": None if tied else top["method"],
                    "tied": [top["method"], *(r["method"] for r in tied)] if tied else [], "row": top})
    return out


# -- outputs -------------------------------------------------------------------------------------

def write_outputs(out: Path, rows: list[dict], metric: str, bigger: bool, title: str,
                  cells: list[dict] | None = None, notes: list[str] | None = None) -> dict:
    """compare.csv / .md / .png, pareto.csv and cells.csv (one row per cell: where it ran)."""
    from recbole_compress.pareto import front
    from recbole_compress.plots import plot_comparison
    from recbole_compress.run import atomic_write_text, write_csv

    key = f"test_{metric}"
    dense = next(r for r in rows if r["method"] == "dense")
    for row in rows:
        if row.get(key) is not None and dense.get(key):
            row["quality_vs_dense"] = round(row[key] / dense[key], 4)
    best = best_per_budget(rows, key, bigger)
    fitting = [r for r in rows if r.get("fits")]
    pareto = front(fitting, key, bigger, size_key="table_bytes")
    for row in rows:
        row.setdefault("pareto", False)
        row.setdefault("best_at_budget", "")
    metric_columns = sorted({k for r in rows for k in r if k.startswith("test_")})
    first = COLUMNS[:5] + metric_columns + COLUMNS[5:]
    write_csv(rows, out / "compare.csv", first=first)
    write_csv(pareto, out / "pareto.csv", first=first)
    if cells is not None:
        write_csv(cells, out / "cells.csv", first=CELL_COLUMNS)
    atomic_write_text(out / "compare.md", markdown(rows, metric, title, best, notes))
    plot_comparison(rows, key, out / "compare.png", title=title)
    print(f"[compare] wrote {out / 'compare.md'}, compare.csv, compare.png, pareto.csv"
          + (", cells.csv" if cells is not None else ""), flush=True)
    return {"rows": rows, "metric": metric, "out": str(out), "pareto": pareto,
            "best": [{k: v for k, v in b.items() if k != "row"} for b in best]}


def markdown(rows: list[dict], metric: str, title: str, best: list[dict], notes: list[str] | None = None) -> str:
    key = f"test_{metric}"
    seeds = any("n_seeds" in r for r in rows)
    lines = [f"# {title}: every method at the same memory budgets", "",
             "Budget = fraction of the dense bytes of the compressed tables; bytes are the exported tables."
             + (" Mean ± sd over the seeds (sample sd)." if seeds else ""), "",
             *(f"{note}\n" for note in notes or ()),
             f"| method | budget | test {metric} | / dense | table bytes (max) | table params | train s | inference s |"
             + (" seeds |" if seeds else "") + " note |",
             "|---|---|---|---|---|---|---|---|" + ("---|" if seeds else "") + "---|"]
    for r in rows:
        value = format_mean_sd(r.get(key), r.get(f"{key}_sd"))
        bytes_ = f"{r['table_bytes']:,} ({r['max_bytes']:,})" if r.get("table_bytes") is not None else f"- ({r['max_bytes']:,})"
        note = (r.get("note") or "") + (" Pareto" if r.get("pareto") else "")
        lines.append(
            f"| {r['method']} | {r['budget']:g} | {value} | {r.get('quality_vs_dense', '')} | {bytes_} | "
            f"{_count(r.get('table_parameters'))} | {_blank(r.get('train_time_s'))} | {_blank(r.get('inference_time_s'))} |"
            + (f" {r.get('n_seeds', 1)} |" if seeds else "") + f" {note.strip()} |"
        )
    lines += ["", "Best method that fits each budget" + (
        " (best only if its mean is ahead of every other by more than the pooled sd, else tied):" if seeds else ":"), ""]
    for b in best:
        r = b["row"]
        if r is None:
            lines.append(f"- {b['budget']:g}: no method fits")
        elif b["tied"]:
            lines.append(f"- {b['budget']:g}: tied: {', '.join(b['tied'])} (top mean {r['method']} "
                         f"{format_mean_sd(r[key], r.get(f'{key}_sd'))})")
        else:
            lines.append(f"- {b['budget']:g}: {r['method']} ({metric} {format_mean_sd(r[key], r.get(f'{key}_sd'))}, "
                         f"{r.get('quality_vs_dense')} of dense)")
    return "\n".join(lines) + "\n"


def cell_record(cell, outcome, row: dict | None) -> dict:
    """One line of cells.csv: which cell, how it ended, where it ran."""
    from recbole_compress.compare_cells import NOT_RUN

    status = ("finished earlier" if outcome.reused else "finished") if outcome.summary is not None else (
        "not run" if outcome.error == NOT_RUN else "failed")
    ran_on = outcome.ran_on or {}
    return {"cell": cell.name, "method": cell.method, "budget": cell.budget, "seed": cell.seed, "status": status,
            "node": ran_on.get("node"), "host": ran_on.get("host"), "pid": ran_on.get("pid"),
            "node_id": ran_on.get("node_id"), "train_time_s": (row or {}).get("train_time_s"),
            "error": outcome.error if outcome.summary is None else None}


def _count(value) -> str:
    return "" if value is None else f"{value:,}"


def _blank(value) -> str:
    return "" if value is None else str(value)


def setting_text(p: Plan) -> str:
    return json.dumps(p.overrides, sort_keys=True)
