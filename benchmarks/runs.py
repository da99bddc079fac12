"""Helpers the training-regime benchmarks share (seqtrain.py, jpq.py): resumable runs,
time to the best validation score, learning-curve plots."""

from __future__ import annotations

import json
import time
from pathlib import Path

SETTINGS_FILE = "bench_settings.json"


def run_or_reuse(model: str, dataset: str, settings: dict, out_dir: Path, config_files: list[str] | None = None) -> dict:
    """``run_recbole_compress`` into ``out_dir``; a finished run with the same model and
    settings is read back instead (so a long benchmark resumes after its last finished run)."""
    from recbole_compress import run_recbole_compress
    from recbole_compress.run import atomic_write_json

    wanted = {"model": model, "dataset": dataset, "settings": settings, "config_files": config_files or []}
    marker, summary_file = out_dir / SETTINGS_FILE, out_dir / "summary.json"
    if marker.is_file() and summary_file.is_file() and json.loads(marker.read_text()) == json.loads(json.dumps(wanted)):
        print(f"reusing the finished run in {out_dir}", flush=True)
        return json.loads(summary_file.read_text())
    started = time.time()
    result = run_recbole_compress(model, dataset, config_file_list=config_files or None,
                                  config_dict={**settings, "output_dir": str(out_dir)})
    summary = result["summary"]
    summary["wall_time_s"] = round(time.time() - started, 1)
    atomic_write_json(summary_file, summary)
    atomic_write_json(marker, wanted)
    return summary


def _set_threads(threads: int) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def run_in_parallel(jobs: list[tuple], workers: int, threads: int = 0) -> None:
    """``run_or_reuse(*job)`` for every job, ``workers`` at a time, each in a fresh spawned
    process (its own torch threads, RecBole logger and CUDA context; several small models
    share one GPU this way). The caller then reads the finished runs back, in its own
    order, with ``run_or_reuse``. Every job runs even when one fails; the failures are
    raised together at the end."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    failures = []
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=1,
                             initializer=_set_threads, initargs=(threads,)) as pool:
        futures = [(job[3], pool.submit(run_or_reuse, *job)) for job in jobs]
        for out_dir, future in futures:
            try:
                future.result()
            except Exception as err:  # noqa: BLE001  (reported below, with its folder)
                failures.append(f"{out_dir}: {type(err).__name__}: {err}")
    if failures:
        raise SystemExit("error: runs failed:\n  " + "\n  ".join(failures))


def best_point(summary: dict) -> dict:
    """The validation at which the run's best score was reached (the first, on ties),
    with ``time_s``: training plus validation seconds up to and including it."""
    curve = summary.get("valid_curve") or []
    if not curve:
        return {"epochs": None, "valid_score": None, "time_s": None}
    best = max(curve, key=lambda row: row["valid_score"])  # max returns the first maximum
    return {**best, "time_s": round(best["train_time_s"] + best["valid_time_s"], 1)}


def total_time(summary: dict) -> float:
    curve = summary.get("valid_curve") or []
    return round(curve[-1]["train_time_s"] + curve[-1]["valid_time_s"], 1) if curve else float("nan")


def plot_curves(runs: dict[str, dict], path: Path, title: str, metric: str = "NDCG@10", against: str = "epochs") -> Path:
    """Validation ``metric`` per evaluation for every run: against training epochs, or
    against cumulative seconds (``against='time'``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 4.4), dpi=120)
    for label, summary in runs.items():
        curve = summary.get("valid_curve") or []
        if not curve:
            continue
        xs = [row["epochs"] if against == "epochs" else row["train_time_s"] + row["valid_time_s"] for row in curve]
        ax.plot(xs, [row["valid_score"] for row in curve], "-", marker=".", markersize=3, label=label)
    ax.set_xlabel("training epochs" if against == "epochs" else "training + validation time (s)")
    ax.set_ylabel(f"valid {metric}")
    ax.set_title(title, fontsize=10)
    from recbole_compress.plots import save_figure

    return save_figure(plt, fig, ax, Path(path))
