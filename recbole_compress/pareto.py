"""Quality vs size as two objectives: the Pareto front of a search's trials, its
hypervolume, the best trial under each size budget, and the chosen trial. Plain rows
(dicts), no ray."""

from __future__ import annotations

import math

SIZE_KEY = "model_bytes"


def _value(row, key):
    value = row.get(key)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def complete(rows, metric: str, size_key: str = SIZE_KEY) -> list[dict]:
    """Rows with both objectives (finished trials; early-stopped and errored ones have no size)."""
    return [row for row in rows if _value(row, metric) is not None and _value(row, size_key) is not None]


def mark_pareto(rows: list[dict], metric: str, bigger: bool = True, size_key: str = SIZE_KEY) -> list[dict]:
    """Set ``row['pareto']``: True where no other complete row is at least as good on
    both objectives (metric, and fewer bytes) and strictly better on one."""
    sign = 1.0 if bigger else -1.0
    points = {id(row): (sign * _value(row, metric), -_value(row, size_key)) for row in complete(rows, metric, size_key)}
    for row in rows:
        mine = points.get(id(row))
        row["pareto"] = mine is not None and not any(
            other[0] >= mine[0] and other[1] >= mine[1] and other != mine for other in points.values()
        )
    return rows


def front(rows, metric: str, bigger: bool = True, size_key: str = SIZE_KEY) -> list[dict]:
    """The Pareto rows, smallest first."""
    mark_pareto(rows, metric, bigger, size_key)
    return sorted((r for r in rows if r["pareto"]), key=lambda r: (_value(r, size_key), -_value(r, metric)))


def best_per_budget(rows, metric: str, budgets, dense_bytes: float, bigger: bool = True) -> list[dict]:
    """For each budget (a fraction of the dense model's bytes), the best trial that fits it."""
    sign = 1.0 if bigger else -1.0
    out = []
    for budget in sorted(budgets):
        limit = budget * dense_bytes
        fits = [r for r in complete(rows, metric) if _value(r, SIZE_KEY) <= limit]
        best = max(fits, key=lambda r: (sign * _value(r, metric), -_value(r, SIZE_KEY))) if fits else None
        out.append({"budget": budget, "max_bytes": int(limit), "trial": best})
    return out


def choose(rows, metric: str, bigger: bool = True) -> dict | None:
    """The configuration to run: best validation on the front (ties: fewer bytes)."""
    candidates = front(rows, metric, bigger)
    sign = 1.0 if bigger else -1.0
    return max(candidates, key=lambda r: (sign * _value(r, metric), -_value(r, SIZE_KEY))) if candidates else None


def hypervolume(rows, metric: str, reference_bytes: float, size_key: str = SIZE_KEY, reference_metric: float = 0.0) -> float:
    """Area dominated by the complete rows (metric up, bytes down) and bounded by the
    reference point (``reference_bytes``, ``reference_metric``), with bytes as a share of
    ``reference_bytes``: 0 for no point below the reference; the larger, the better the
    front (two searches compare on the same reference, e.g. the dense model's bytes)."""
    points = sorted(
        (_value(r, size_key) / reference_bytes, _value(r, metric))
        for r in complete(rows, metric, size_key)
        if _value(r, size_key) <= reference_bytes and _value(r, metric) > reference_metric
    )
    area, best = 0.0, reference_metric
    edges = [x for x, _ in points[1:]] + [1.0]
    for (x, y), right in zip(points, edges):  # sweep left to right: the best metric so far covers [x, right)
        best = max(best, y)
        area += (right - x) * (best - reference_metric)
    return area


def dominated_share(rows, by_rows, metric: str, size_key: str = SIZE_KEY) -> float | None:
    """Share of the front of ``rows`` that some front point of ``by_rows`` dominates
    (at least as good on both objectives, better on one); None for an empty front."""
    mine = [(_value(r, metric), _value(r, size_key)) for r in front([dict(r) for r in rows], metric, size_key=size_key)]
    theirs = [(_value(r, metric), _value(r, size_key)) for r in front([dict(r) for r in by_rows], metric, size_key=size_key)]
    if not mine:
        return None
    beaten = sum(any(q >= m and b <= s and (q, b) != (m, s) for q, b in theirs) for m, s in mine)
    return beaten / len(mine)
