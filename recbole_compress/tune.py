"""Ray Tune searches over any config key, on Ray's public API (``tune.Tuner``,
``ResultGrid``, ``ExperimentAnalysis``).

RecBole 1.2.1's own Ray path uses the removed ``tune.run``, reports test metrics once
and lets ``Config._init_device`` overwrite the GPU Ray assigns. Here every trial is
``run_recbole_compress`` with the sampled keys, in its own output folder, reporting the
validation metric after every evaluation (so ASHA can stop it early) and, at the end,
validation/test metrics, exported bytes and non-zero parameters. What the search
optimises is the search file's ``objective`` (:mod:`recbole_compress.tune_space`): the
front itself (validation metric up, bytes down, Optuna's multi-objective sampler), the
validation metric under a byte budget, or the validation metric alone. The search ends
in a Pareto front (validation metric vs bytes, with its hypervolume) as CSV and PNG, the
best trial per size budget, and a ready-to-run yaml of the chosen configuration, all in
the experiment folder.

This module imports ray; ``import recbole_compress`` does not import this module.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from recbole_compress.errors import UserError
from recbole_compress.pareto import SIZE_KEY
from recbole_compress.ray_cluster import assigned_gpus
from recbole_compress.tune_results import OBJECTIVE, SCORE, format_front, trial_rows, write_results
from recbole_compress.tune_space import Dist, SearchSettings, load_search_file

OVER_BUDGET = 1000.0  # a trial over the budget scores -OVER_BUDGET x (bytes / budget bytes) (mode max)


def import_ray(local: bool = True):
    """``(ray, ray.tune)`` (see :func:`recbole_compress.ray_cluster.import_ray`)."""
    from recbole_compress.ray_cluster import import_ray as load

    return load(joining=not local)


@dataclass
class TrialJob:
    """What every trial needs (small and picklable: it travels to the workers)."""

    model: str
    dataset: str
    base: dict  # fixed overrides: search file's config:, then the command line
    config_files: list = field(default_factory=list)
    trials_dir: str = ""
    cpu: float = 1.0
    objective: str = "validation"
    budget: float | None = None
    bigger: bool = True


def run_trial(params: dict, job: TrialJob) -> None:
    """The function trainable: one ``run_recbole_compress`` with the sampled ``params``."""
    from ray import tune
    import torch

    torch.set_num_threads(max(1, int(job.cpu)))
    trial_id = tune.get_context().get_trial_id()
    # Ray sets CUDA_VISIBLE_DEVICES to this trial's GPU(s); RecBole's _init_device
    # overwrites it from gpu_id, so hand it the same ids (or none: CPU)
    overrides = trial_settings(job, params, trial_id, assigned_gpus())
    os.chdir(overrides["output_dir"])  # RecBole's log/ and log_tensorboard/ land beside the trial's results
    reports = 0

    def report(epoch_idx, valid_score):
        nonlocal reports
        reports += 1  # counts across lottery-ticket rounds (each round restarts epoch_idx)
        tune.report({SCORE: float(valid_score), "evaluation": reports, "final": False, **provisional(job, valid_score)})

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
    final.update(objective_value(job, final[SCORE], final[SIZE_KEY], final["dense_model_bytes"]))
    tune.report(final)


def provisional(job: TrialJob, valid_score: float) -> dict:
    """What a report before the end carries for the searcher: every metric it reads must
    be present; the size is known only once the model is exported (the multi-objective
    searcher reads the final report only; the budget one reads the score meanwhile)."""
    if job.objective == "pareto":
        return {SIZE_KEY: None}
    if job.objective == "budget":
        return {OBJECTIVE: float(valid_score)}
    return {}


def objective_value(job: TrialJob, valid_score: float, size: int, dense_size: int) -> dict:
    """objective=budget: the validation score when the model fits ``budget`` x the dense
    bytes, else a penalty below (mode min: above) every score, smaller the further over."""
    if job.objective != "budget":
        return {}
    limit = job.budget * dense_size
    if size <= limit:
        return {OBJECTIVE: float(valid_score), "fits_budget": True}
    penalty = OVER_BUDGET * size / max(limit, 1.0)
    return {OBJECTIVE: -penalty if job.bigger else penalty, "fits_budget": False}


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
    settings: SearchSettings = spec.settings.update(flags or {}, "the command line").finish(f"{spec.path} and the command line")
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
    job = TrialJob(model, dataset, base, config_files, str(exp_dir / "trials"), settings.cpu,
                   settings.objective, settings.budget, bigger)

    exists = tune.Tuner.can_restore(str(exp_dir))
    if resume and not exists:
        raise UserError(f"no search to resume at {exp_dir}; run it first without --resume (same --storage_path and name)")
    if exists and not resume:
        raise UserError(f"a search already exists at {exp_dir}; pass --resume to continue it, or another --name/--storage_path")
    from recbole_compress.ray_cluster import init_ray

    init_ray(settings.ray_address, threads=settings.cpu)
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, job=job), {"cpu": settings.cpu, "gpu": settings.gpu}
    )
    started = time.time()
    if resume:  # finished trials are kept; unfinished and errored ones run again
        tuner = tune.Tuner.restore(str(exp_dir), trainable=trainable, resume_unfinished=True, resume_errored=True)
    else:
        metric_of_tuner = {"validation": SCORE, "budget": OBJECTIVE, "pareto": None}[settings.objective]
        tuner = tune.Tuner(
            trainable,
            param_space=ray_space(spec.space, tune),
            tune_config=tune.TuneConfig(
                metric=metric_of_tuner,  # pareto: two metrics, given to the searcher only
                mode=mode if metric_of_tuner else None,
                num_samples=settings.num_samples,
                search_alg=_search_alg(settings, mode, int(settings.seed if settings.seed is not None else config["seed"])),
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
    rows = trial_rows(grid, [d.key for d in spec.space], metric, exp_dir, min_reports_to_stop)
    return write_results(exp_dir, rows, model, dataset, metric, bigger, settings, config_files, base, wall, spec)


def _search_alg(settings, mode, seed):
    """Optuna's TPE (multi-objective for objective=pareto) or random sampling."""
    if settings.search_alg == "optuna":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = None
        if settings.startup_trials is not None or settings.objective == "pareto":
            startup = settings.startup_trials if settings.startup_trials is not None else 10  # Optuna's default
            sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)  # TPE is multi-objective too
        if settings.objective == "pareto":
            return OptunaSearch(metric=[SCORE, SIZE_KEY], mode=[mode, "min"], sampler=sampler)
        metric = OBJECTIVE if settings.objective == "budget" else SCORE
        return OptunaSearch(metric=metric, mode=mode, sampler=sampler, seed=None if sampler else seed)
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


def main(args, overrides: dict) -> int:
    """``recbole-compress tune SEARCH_FILE ...`` (``cli`` parses; this runs and prints)."""
    flags = {
        "num_samples": args.num_samples, "scheduler": args.scheduler, "search_alg": args.search_alg,
        "cpu": args.cpu, "gpu": args.gpu, "max_concurrent": args.max_concurrent,
        "ray_address": args.ray_address, "storage_path": args.storage_path, "name": args.name,
        "objective": args.objective, "budget": args.budget,
    }
    config_files = args.config_files.split() if args.config_files else None
    result = run_search(args.model, args.dataset, args.search_file, config_files, overrides, flags, resume=args.resume,
                        strict=args.strict)
    keys = [d.key for d in load_search_file(args.search_file).space]
    print(f"search: {result['trials']} trials {result['statuses']} in {result['wall_time_s']} s; objective "
          + (f"budget ({result['budget']:g} x dense bytes)" if result["objective"] == "budget" else result["objective"]))
    if result["statuses"].get("unfinished"):
        print("search interrupted: continue it with the same command and --resume (finished trials are kept)")
    volume = "" if result["hypervolume"] is None else f", hypervolume {result['hypervolume']:.4f}"
    print(f"Pareto front ({result['metric']} vs exported bytes): {result['front_points']} points{volume}")
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
