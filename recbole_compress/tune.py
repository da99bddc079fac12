"""Ray Tune searches over any config key, on the current Ray API (``tune.Tuner``).

RecBole 1.2.1's own Ray path uses the removed ``tune.run``, reports test metrics once
and lets ``Config._init_device`` overwrite the GPU Ray assigns. Here every trial is
``run_recbole_compress`` with the sampled keys, in its own output folder, reporting the
validation metric after every evaluation (so ASHA can stop it early) and, at the end,
validation/test metrics, exported bytes and non-zero parameters. The search ends in a
Pareto front (validation metric vs bytes) as CSV and PNG, the best trial per size budget,
and a ready-to-run yaml of the chosen configuration, all in the experiment folder.

This module imports ray; ``import recbole_compress`` does not import this module.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from recbole_compress.errors import UserError
from recbole_compress.pareto import SIZE_KEY, best_per_budget, choose, mark_pareto
from recbole_compress.run import atomic_write_json, atomic_write_text, write_csv
from recbole_compress.tune_space import Dist, SearchSettings, load_search_file

SCORE = "valid_score"  # what every report carries and the scheduler compares
PARETO_CSV, PARETO_PNG, CHOSEN_YAML, BUDGETS_CSV, SEARCH_JSON = (
    "pareto.csv", "pareto.png", "chosen.yaml", "budgets.csv", "search.json",
)


def import_ray(local: bool = True):
    if local:
        # under `uv run`, Ray would ship the project to workers as a uv runtime env and refuse
        # any working directory outside it; a local cluster's workers share this environment
        os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    try:
        import ray
        from ray import tune
    except ImportError as err:
        raise UserError(
            f"Ray Tune is not installed ({err}); install it with `uv sync` or `pip install 'ray[tune]>=2.40' optuna`"
        ) from err
    return ray, tune


@dataclass
class TrialJob:
    """What every trial needs (small and picklable: it travels to the workers)."""

    model: str
    dataset: str
    base: dict  # fixed overrides: search file's config:, then the command line
    config_files: list = field(default_factory=list)
    trials_dir: str = ""
    cpu: float = 1.0


def run_trial(params: dict, job: TrialJob) -> None:
    """The function trainable: one ``run_recbole_compress`` with the sampled ``params``."""
    from ray import tune
    import torch

    torch.set_num_threads(max(1, int(job.cpu)))
    trial_id = tune.get_context().get_trial_id()
    # Ray sets CUDA_VISIBLE_DEVICES to this trial's GPU(s); RecBole's _init_device
    # overwrites it from gpu_id, so hand it the same ids (or none: CPU)
    overrides = trial_settings(job, params, trial_id, _assigned_gpus())
    os.chdir(overrides["output_dir"])  # RecBole's log/ and log_tensorboard/ land beside the trial's results
    reports = 0

    def report(epoch_idx, valid_score):
        nonlocal reports
        reports += 1  # counts across lottery-ticket rounds (each round restarts epoch_idx)
        tune.report({SCORE: float(valid_score), "evaluation": reports, "final": False})

    from recbole_compress.quick_start import run_recbole_compress

    result = run_recbole_compress(job.model, job.dataset, job.config_files or None, overrides, callback_fn=report)
    summary = result["summary"]
    final = {
        SCORE: float(result["best_valid_score"]),
        "evaluation": reports + 1,
        "final": True,
        **{f"valid_{k}": float(v) for k, v in summary["valid"].items()},
        **{f"test_{k}": float(v) for k, v in summary["test"].items()},
        SIZE_KEY: int(summary["model_bytes"]),
        "dense_model_bytes": int(summary["dense_model_bytes"]),
        "nonzero_parameters": int(summary["nonzero_parameters"]),
        "trial_wall_time_s": float(summary["wall_time_s"]),
        "output_dir": str(result["output_dir"]),
    }
    tune.report(final)


def trial_settings(job: TrialJob, params: dict, trial_id: str, visible: str) -> dict:
    """A trial's config dict. ``visible``: the GPU ids Ray gave the trial ("" for none).
    RecBole's ``Config._init_device`` sets CUDA_VISIBLE_DEVICES from ``gpu_id``: passing
    Ray's ids keeps the variable what Ray set; no ids means CPU."""
    out = Path(job.trials_dir) / trial_id
    out.mkdir(parents=True, exist_ok=True)
    return {
        **job.base,
        **params,
        "output_dir": str(out),
        "show_progress": False,
        "gpu_id": visible,
        "use_gpu": bool(visible),
    }


def _assigned_gpus() -> str:
    import ray

    try:
        ids = ray.get_gpu_ids()
    except Exception:  # not inside a Ray worker (tests calling run_trial directly)
        ids = []
    if not ids:
        return ""
    return os.environ.get("CUDA_VISIBLE_DEVICES") or ",".join(str(i) for i in ids)


# -- the search ---------------------------------------------------------------------------

def ray_space(space: list[Dist], tune) -> dict:
    make = {
        "choice": lambda a: tune.choice(list(a)),
        "uniform": lambda a: tune.uniform(*a),
        "loguniform": lambda a: tune.loguniform(*a),
        "randint": lambda a: tune.randint(*a),
    }
    return {d.key: make[d.form](d.args) for d in space}


def _check_base(model, dataset, config_files, base, strict=False):
    """Build the base config once in the driver, with every check a run does: bad
    settings and missing data fail before Ray starts, not in every trial."""
    from recbole_compress.config import check_dataset
    from recbole_compress.run import build_config

    # Config._init_device would set CUDA_VISIBLE_DEVICES=gpu_id in this process, and the local
    # Ray started next would then see only that GPU: keep the variable as it was
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        config = build_config(model, dataset, config_files or None, dict(base), strict=strict)
    finally:
        if visible is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = visible
    check_dataset(config)
    return config


def run_search(
    model: str,
    dataset: str,
    search_file,
    config_files=None,
    overrides: dict | None = None,
    flags: dict | None = None,
    resume: bool = False,
    strict: bool = False,
    _interrupt: int | None = None,
) -> dict:
    """Run (or with ``resume`` continue) a search; returns the paths and the rows written.

    ``flags`` override the search file's ``search:`` block (num_samples, scheduler, ...).
    ``_interrupt`` (tests) interrupts the search (SIGINT, as Ctrl+C) once that many trials finished.
    """
    spec = load_search_file(search_file)
    settings: SearchSettings = spec.settings.update(flags or {}, "the command line")
    ray, tune = import_ray(local=not settings.ray_address)
    from recbole_compress.property_files import resolve_property_file

    config_files = [str(Path(resolve_property_file(f)).resolve()) for f in (config_files or [])]
    searched = sorted(set(overrides or {}) & {d.key for d in spec.space})
    if searched:
        raise UserError(f"--{searched[0]} is searched by {spec.path}; drop it from the command line or from the search file")
    base = {**spec.fixed, **(overrides or {})}
    base.pop("output_dir", None)  # every trial gets its own
    config = _check_base(model, dataset, config_files, base, strict)
    base["data_path"] = str(Path(config["data_path"]).resolve().parent)
    metric = str(config["valid_metric"]).lower()
    bigger = bool(config["valid_metric_bigger"])
    mode = "max" if bigger else "min"

    storage = Path(settings.storage_path or "saved/tune").resolve()
    name = settings.name or f"{model}-{dataset}-tune"
    exp_dir = storage / name
    job = TrialJob(model, dataset, base, config_files, str(exp_dir / "trials"), settings.cpu)

    exists = tune.Tuner.can_restore(str(exp_dir))
    if resume and not exists:
        raise UserError(f"no search to resume at {exp_dir}; run it first without --resume (same --storage_path and name)")
    if exists and not resume:
        raise UserError(f"a search already exists at {exp_dir}; pass --resume to continue it, or another --name/--storage_path")
    _init_ray(ray, settings)
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, job=job), {"cpu": settings.cpu, "gpu": settings.gpu}
    )
    started = time.time()
    if resume:  # finished trials are kept; unfinished and errored ones run again
        tuner = tune.Tuner.restore(str(exp_dir), trainable=trainable, resume_unfinished=True, resume_errored=True)
    else:
        tuner = tune.Tuner(
            trainable,
            param_space=ray_space(spec.space, tune),
            tune_config=tune.TuneConfig(
                metric=SCORE,
                mode=mode,
                num_samples=settings.num_samples,
                search_alg=_search_alg(settings, tune, mode, int(settings.seed if settings.seed is not None else config["seed"])),
                scheduler=_scheduler(settings),
                max_concurrent_trials=settings.max_concurrent or None,
                reuse_actors=True,  # a new trial skips the worker start and the torch/RecBole imports
            ),
            run_config=tune.RunConfig(
                name=name,
                storage_path=str(storage),
                failure_config=tune.FailureConfig(max_failures=settings.max_failures),
                callbacks=[_interrupt_after(_interrupt, exp_dir / ".interrupted")] if _interrupt else None,
                verbose=1,
            ),
        )
    grid = tuner.fit()
    wall = time.time() - started
    # ASHA stops a trial only once it has reported grace_period times; FIFO never does
    min_reports_to_stop = settings.grace_period if settings.scheduler == "asha" else None
    rows = _rows(grid, [d.key for d in spec.space], metric, exp_dir, min_reports_to_stop)
    return _write_results(exp_dir, rows, model, dataset, metric, bigger, settings, config_files, base, wall, spec)


def _init_ray(ray, settings: SearchSettings) -> None:
    if ray.is_initialized():
        return
    import logging

    env = {"env_vars": {"OMP_NUM_THREADS": str(max(1, int(settings.cpu)))}}
    if settings.ray_address:
        ray.init(address=settings.ray_address, runtime_env=env, logging_level=logging.WARNING, log_to_driver=False)
    else:
        ray.init(
            num_cpus=os.cpu_count(), include_dashboard=False, runtime_env=env,
            logging_level=logging.WARNING, log_to_driver=False,
        )


def _search_alg(settings, tune, mode, seed):
    if settings.search_alg == "optuna":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        return OptunaSearch(metric=SCORE, mode=mode, seed=seed)
    from ray.tune.search.basic_variant import BasicVariantGenerator

    return BasicVariantGenerator(random_state=seed)


def _scheduler(settings):
    if settings.scheduler == "asha":
        from ray.tune.schedulers import ASHAScheduler

        return ASHAScheduler(
            time_attr="training_iteration", grace_period=settings.grace_period,
            reduction_factor=settings.reduction_factor, max_t=10**6,
        )
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


def _interrupt_after(count: int, marker: Path):
    """A callback that sends this process SIGINT once ``count`` trials completed: Ray Tune
    then saves the experiment and returns, as after Ctrl+C (tests of resume).
    Callbacks are restored with the experiment, so ``marker`` makes it fire only once."""
    import signal

    from ray.tune import Callback

    class InterruptAfterFinished(Callback):
        def __init__(self):
            self.finished = set()

        def on_trial_complete(self, iteration, trials, trial, **info):
            self.finished.add(trial.trial_id)
            if len(self.finished) == count and not marker.exists():
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.touch()
                os.kill(os.getpid(), signal.SIGINT)

    return InterruptAfterFinished()


# -- results ----------------------------------------------------------------------------------

def _saved_statuses(exp_dir: Path) -> dict:
    """Trial states as Ray saved them for a restore (RUNNING/PENDING after an interruption,
    where the in-memory results already say TERMINATED); empty if the format is not known."""
    try:
        newest = max(exp_dir.glob("experiment_state-*.json"), key=lambda p: p.stat().st_mtime)
        data = json.loads(newest.read_text())
        trials = (json.loads(entry[0]) for entry in data["trial_data"])
        return {t["trial_id"]: t["status"] for t in trials}
    except (ValueError, KeyError, IndexError, TypeError, OSError):
        return {}


def _rows(grid, keys: list[str], metric: str, exp_dir: Path, min_reports_to_stop: int | None = None) -> list[dict]:
    saved = _saved_statuses(exp_dir)
    rows = []
    for result in grid:
        last = result.metrics or {}
        folder = Path(result.path).name  # run_trial_<id>_<n>_<params>_<date>
        trial_id = last.get("trial_id") or next((t for t in saved if f"_{t}_" in folder), folder)
        history = result.metrics_dataframe
        reports = 0 if history is None else len(history)
        scheduler_could_stop = min_reports_to_stop is not None and reports >= min_reports_to_stop
        if result.error is not None:
            status = "errored"
        elif last.get("final"):
            status = "finished"
        elif saved.get(trial_id, "TERMINATED") not in ("TERMINATED", "ERROR") or (last and not scheduler_could_stop):
            # cut off by an interruption (Ray's saved state can lag behind it; a trial
            # the scheduler could not have stopped was cut off too): --resume runs it
            status = "unfinished"
        elif last:
            status = "stopped early"  # by the scheduler
        else:
            status = "not run"
        row = {
            "trial_id": trial_id,
            "status": status,
            **{k: (result.config or {}).get(k) for k in keys},
            f"valid_{metric}": last.get(f"valid_{metric}") if status == "finished" else None,
            f"test_{metric}": last.get(f"test_{metric}") if status == "finished" else None,
            "last_valid_score": last.get(SCORE),
            SIZE_KEY: last.get(SIZE_KEY) if status == "finished" else None,
            "dense_model_bytes": last.get("dense_model_bytes"),
            "nonzero_parameters": last.get("nonzero_parameters"),
            "reports": reports,
            "trial_wall_time_s": last.get("trial_wall_time_s"),
            "output_dir": last.get("output_dir"),
            "error": _one_line(result.error),
        }
        rows.append(row)
    return sorted(rows, key=lambda r: str(r["trial_id"]))


def _one_line(error) -> str:
    if error is None:
        return ""
    text = str(error).strip().splitlines()
    return (text[-1] if text else type(error).__name__)[:300]


def _write_results(exp_dir, rows, model, dataset, metric, bigger, settings, config_files, base, wall, spec) -> dict:
    from recbole_compress.plots import plot_pareto

    key = f"valid_{metric}"
    mark_pareto(rows, key, bigger)
    write_csv(rows, exp_dir / PARETO_CSV, first=["trial_id", "status", "pareto"])
    plot_pareto(rows, key, exp_dir / PARETO_PNG, title=f"{model} on {dataset}", bigger=bigger)
    dense = next((float(r["dense_model_bytes"]) for r in rows if r.get("dense_model_bytes")), None)
    budgets = best_per_budget(rows, key, settings.budgets, dense, bigger) if dense else []
    write_csv(
        [{"budget": b["budget"], "max_bytes": b["max_bytes"], **(b["trial"] or {"trial_id": ""})} for b in budgets],
        exp_dir / BUDGETS_CSV,
        first=["budget", "max_bytes", "trial_id"],
    )
    chosen = choose(rows, key, bigger)
    command = None
    if chosen is not None:
        settings_out = {"model": model, "dataset": dataset, **base, **{d.key: chosen[d.key] for d in spec.space}}
        files = " ".join([*config_files, str(exp_dir / CHOSEN_YAML)])
        command = f'recbole-compress run --model={model} --dataset={dataset} --config_files="{files}"'
        header = (
            f"# chosen by the search in {exp_dir}: trial {chosen['trial_id']}, best validation {metric} on the\n"
            f"# Pareto front ({key}={chosen[key]}, {SIZE_KEY}={chosen[SIZE_KEY]}). Run it with:\n# {command}\n"
        )
        atomic_write_text(exp_dir / CHOSEN_YAML, header + yaml.safe_dump(_plain(settings_out), sort_keys=False))
    out = {
        "experiment": str(exp_dir),
        "metric": key,
        "trials": len(rows),
        "statuses": {s: sum(r["status"] == s for r in rows) for s in dict.fromkeys(r["status"] for r in rows)},
        "wall_time_s": round(wall, 1),
        "pareto_csv": str(exp_dir / PARETO_CSV),
        "pareto_png": str(exp_dir / PARETO_PNG),
        "budgets_csv": str(exp_dir / BUDGETS_CSV),
        "chosen_yaml": str(exp_dir / CHOSEN_YAML) if chosen else None,
        "chosen_trial": chosen["trial_id"] if chosen else None,
        "command": command,
        "budgets": [{"budget": b["budget"], "max_bytes": b["max_bytes"], "trial_id": (b["trial"] or {}).get("trial_id")} for b in budgets],
        "rows": rows,
    }
    atomic_write_json(exp_dir / SEARCH_JSON, out)
    return out


def _plain(obj):
    """yaml.safe_dump-able values (numpy scalars from the search algorithm -> Python)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):
        return obj.item()
    return obj


def format_front(result: dict, keys: list[str]) -> str:
    """The Pareto table as printed at the end of a search."""
    metric = result["metric"]
    rows = [r for r in result["rows"] if r.get("pareto")]
    rows.sort(key=lambda r: float(r[SIZE_KEY]))
    head = ["trial", *keys, metric, metric.replace("valid_", "test_"), "bytes", "nonzero", "reports"]
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in rows:
        cells = [
            str(r["trial_id"]), *(_cell(r.get(k)) for k in keys), _cell(r[metric]),
            _cell(r.get(metric.replace("valid_", "test_"))), str(r[SIZE_KEY]), str(r.get("nonzero_parameters")),
            str(r.get("reports")),
        ]
        lines.append(" | ".join(cells))
    return "\n".join(f"| {line} |" for line in lines)


def _cell(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def main(args, overrides: dict) -> int:
    """``recbole-compress tune SEARCH_FILE ...`` (``cli`` parses; this runs and prints)."""
    flags = {
        "num_samples": args.num_samples, "scheduler": args.scheduler, "search_alg": args.search_alg,
        "cpu": args.cpu, "gpu": args.gpu, "max_concurrent": args.max_concurrent,
        "ray_address": args.ray_address, "storage_path": args.storage_path, "name": args.name,
    }
    config_files = args.config_files.split() if args.config_files else None
    result = run_search(args.model, args.dataset, args.search_file, config_files, overrides, flags, resume=args.resume,
                        strict=args.strict)
    keys = [d.key for d in load_search_file(args.search_file).space]
    print(f"search: {result['trials']} trials {result['statuses']} in {result['wall_time_s']} s")
    if result["statuses"].get("unfinished"):
        print("search interrupted: continue it with the same command and --resume (finished trials are kept)")
    print(f"Pareto front ({result['metric']} vs exported bytes):")
    print(format_front(result, keys))
    by_id = {r["trial_id"]: r for r in result["rows"]}
    for b in result["budgets"]:
        best = by_id.get(b["trial_id"])
        what = f"{best['trial_id']} ({result['metric']} {best[result['metric']]:.4f}, {best[SIZE_KEY]} B)" if best else "none"
        print(f"best within {b['budget']:g} x dense bytes (<= {b['max_bytes']} B): {what}")
    print(f"results: {result['pareto_csv']} {result['pareto_png']} {result['budgets_csv']}")
    if result["command"]:
        print(f"chosen: {result['chosen_yaml']} (trial {result['chosen_trial']}); run it with:")
        print(result["command"])
    else:
        print("chosen: none (no trial finished); see the errors in " + result["pareto_csv"])
    return 0
