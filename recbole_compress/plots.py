"""PNG plots of results people would rather see than read."""

from __future__ import annotations

from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(plt, fig, ax, path: Path) -> Path:
    """Grid, legend, tight layout; write the PNG and free the figure."""
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_tickets(rows: list[dict], metric: str, path, title: str = "", winner: int | None = None) -> Path:
    """Validation and test ``metric`` against remaining parameters, with the dense lines,
    the winning ticket (round ``winner``) marked, and the exported size of each round on
    a second axis."""
    plt = _pyplot()
    path = Path(path)
    remaining = [row["remaining"] * 100 for row in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=120)
    for split, style in (("valid", "o-"), ("test", "s-")):
        values = [row.get(f"{split}_{metric}") for row in rows]
        if all(v is not None for v in values):
            line = ax.plot(remaining, values, style, label=f"{split} {metric}")[0]
            ax.axhline(values[0], color=line.get_color(), linestyle="--", linewidth=1, label=f"dense {split}")
    chosen = next((row for row in rows if row["round"] == winner), None)
    if chosen is not None and chosen.get(f"valid_{metric}") is not None:
        ax.plot([chosen["remaining"] * 100], [chosen[f"valid_{metric}"]], marker="*", markersize=16, color="gold",
                markeredgecolor="black", linestyle="none", label=f"winning ticket (round {winner})", zorder=5)
    ax.set_xscale("log")
    ticks = [t for t in (100, 80, 64, 50, 40, 30, 20, 15, 10, 5, 2, 1) if min(remaining) <= t <= max(remaining)]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlim(max(remaining) * 1.08, min(remaining) / 1.08)  # sparser to the right
    ax.set_xlabel("remaining embedding parameters (%)")
    ax.set_ylabel(metric)
    if all(row.get("model_bytes") for row in rows):
        top = ax.twiny()
        top.set_xscale("log")
        top.set_xlim(ax.get_xlim())
        step = max(1, len(rows) // 6)
        shown = rows[::step]
        top.set_xticks([row["remaining"] * 100 for row in shown], [f"{row['model_bytes'] / 1024:,.0f}" for row in shown])
        top.minorticks_off()
        top.set_xlabel("exported model (KB)")
    ax.set_title(title or "lottery tickets", fontsize=10)
    return save_figure(plt, fig, ax, path)


def plot_pareto(rows: list[dict], metric: str, path, title: str = "", bigger: bool = True) -> Path:
    """Validation ``metric`` against exported model bytes for every finished trial,
    the Pareto front (``row['pareto']``) drawn as a step line."""
    plt = _pyplot()
    path = Path(path)
    done = [r for r in rows if r.get("model_bytes") not in (None, "") and r.get(metric) not in (None, "")]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    kib = [float(r["model_bytes"]) / 1024 for r in done]
    values = [float(r[metric]) for r in done]
    ax.scatter(kib, values, color="0.6", label="trials", zorder=2)
    # trials that landed on the same point (same ticket, same code length) share one label
    points: dict = {}
    for k, v, r in zip(kib, values, done):
        if r.get("pareto"):
            points.setdefault((k, v), []).append(str(r.get("trial_id", "")))
    best = sorted(points)
    if best:
        ax.plot(*zip(*best), "o-", color="C3", drawstyle="steps-post" if bigger else "default", label="Pareto front", zorder=3)
        for point in best:
            ids = sorted(points[point])
            label = ids[0] + (f" +{len(ids) - 1}" if len(ids) > 1 else "")
            ax.annotate(label, point, textcoords="offset points", xytext=(4, 4), fontsize=7)
    dense = next((float(r["dense_model_bytes"]) for r in done if r.get("dense_model_bytes") not in (None, "")), None)
    if dense:
        ax.axvline(dense / 1024, color="0.3", linestyle="--", linewidth=1, label="dense model")
    if kib and max(kib) / max(min(kib), 1e-9) > 20:
        ax.set_xscale("log")
    ax.set_xlabel("exported model size (KiB)")
    ax.set_ylabel(f"valid {metric.removeprefix('valid_')}")
    ax.set_title(f"{title or 'search'}: {len(done)} of {len(rows)} trials finished", fontsize=10)
    return save_figure(plt, fig, ax, path)


def plot_comparison(rows: list[dict], metric: str, path, title: str = "") -> Path:
    """Test ``metric`` against exported table bytes: one curve per method over the
    budgets, the dense point, the 95%-of-dense line, the Pareto front ringed; with
    several seeds (``<metric>_sd``) the points are means with +- 1 sd error bars."""
    plt = _pyplot()
    path = Path(path)
    fig, ax = plt.subplots(figsize=(7.0, 4.6), dpi=120)
    dense = next((r for r in rows if r["method"] == "dense"), None)
    methods = list(dict.fromkeys(r["method"] for r in rows if r["method"] != "dense"))
    for i, method in enumerate(methods):
        done = sorted((r for r in rows if r["method"] == method and r.get(metric) is not None and r.get("table_bytes")),
                      key=lambda r: r["table_bytes"])
        if done:
            x, y = [r["table_bytes"] / 1024 for r in done], [r[metric] for r in done]
            spread = [r.get(f"{metric}_sd") or 0.0 for r in done]
            if any(spread):  # several seeds: mean with +- 1 sd
                ax.errorbar(x, y, yerr=spread, fmt="o-", color=f"C{i}", capsize=3, label=method)
            else:
                ax.plot(x, y, "o-", color=f"C{i}", label=method)
    front = [r for r in rows if r.get("pareto")]
    if front:
        ax.scatter([r["table_bytes"] / 1024 for r in front], [r[metric] for r in front], s=140, facecolors="none",
                   edgecolors="k", linewidths=1.2, label="Pareto front", zorder=4)
    if dense and dense.get(metric) is not None:
        ax.errorbar([dense["table_bytes"] / 1024], [dense[metric]], yerr=[dense.get(f"{metric}_sd") or 0.0], fmt="k*",
                    markersize=12, capsize=3, label="dense", zorder=5)
        ax.axhline(dense[metric] * 0.95, color="0.4", linestyle=":", linewidth=1, label="95% of dense")
    for budget in sorted({r["max_bytes"] for r in rows if r["method"] != "dense" and r.get("max_bytes")}):
        ax.axvline(budget / 1024, color="0.85", linewidth=1, zorder=0)
    ax.set_xscale("log")
    ax.set_xlabel("exported embedding tables (KiB, log); grey lines: budgets")
    seeds = max((int(r.get("n_seeds") or 1) for r in rows), default=1)
    ax.set_ylabel(metric.replace("_", " ") + (f" (mean +- sd, {seeds} seeds)" if seeds > 1 else ""))
    ax.set_title(title or "methods at the same budgets", fontsize=10)
    return save_figure(plt, fig, ax, path)


def plot_task_rounds(rows: list[dict], path, title: str = "") -> Path:
    """LT4Rec's per-task pruning rounds: each task's validation metric against the
    remaining share of the shared MLP's weights, the chosen round circled."""
    plt = _pyplot()
    path = Path(path)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for task in dict.fromkeys(r["task"] for r in rows):
        own = [r for r in rows if r["task"] == task]
        metric = next(k for k in own[0] if k.startswith("valid_"))
        x = [r["remaining"] * 100 for r in own]
        y = [r[metric] for r in own]
        line = ax.plot(x, y, "o-", label=f"{task}: {metric}")[0]
        for r, xi, yi in zip(own, x, y):
            if r.get("chosen"):
                ax.plot([xi], [yi], "o", markersize=12, markerfacecolor="none", color=line.get_color())
    ax.set_xscale("log")
    remaining = [r["remaining"] * 100 for r in rows]
    ticks = [t for t in (100, 80, 64, 50, 40, 30, 20, 15, 10, 5, 2, 1) if min(remaining) <= t <= max(remaining)]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.invert_xaxis()
    ax.set_xlabel("remaining shared-MLP weights (%)")
    ax.set_ylabel("validation metric of the task")
    ax.set_title(title or "LT4Rec: per-task pruning rounds (chosen mask circled)")
    return save_figure(plt, fig, ax, path)
