"""Search-space files for Ray Tune searches, read without importing ray.

A search file (``properties/tune/*.yaml``) holds three kinds of top-level entries:

    prune_rate: {choice: [0.1, 0.2, 0.3]}      # a searched key: one of the forms below
    learning_rate: {loguniform: [1e-4, 1e-2]}
    search: {num_samples: 8, objective: pareto} # how to search (SearchSettings)
    config: {epochs: 20}                       # fixed settings for every trial

Forms: ``choice: [a, b, ...]``, ``uniform: [low, high]``, ``loguniform: [low, high]``
(0 < low), ``randint: [low, high]`` (integers, ``high`` excluded, as ``tune.randint``).

What a search aims at (``objective``):

- ``pareto`` (default): two objectives, the validation metric up and the exported
  model bytes down (Optuna's multi-objective TPE); the trials spread along the front;
- ``budget``: the validation metric of the trials whose exported model fits ``budget``
  (a fraction of the dense model's bytes); a trial over it ranks below every trial that
  fits, the further over the lower (``budget: 0.25`` alone selects this objective);
- ``validation``: the validation metric alone (the only one ASHA can stop trials by,
  as sizes are known only when a trial exports its model).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path


from recbole_compress.errors import UserError

FORMS = ("choice", "uniform", "loguniform", "randint")
_FORMS_HELP = "{choice: [a, b]}, {uniform: [low, high]}, {loguniform: [low, high]} or {randint: [low, high]}"
SCHEDULERS = ("asha", "fifo")
SEARCH_ALGS = ("optuna", "random")
OBJECTIVES = ("pareto", "budget", "validation")


@dataclass(frozen=True)
class Dist:
    """One searched key: ``form`` (one of FORMS) and its arguments."""

    key: str
    form: str
    args: tuple

    def describe(self) -> str:
        return f"{self.key}: {self.form}{list(self.args)}"


@dataclass
class SearchSettings:
    """The ``search:`` block (command-line flags override it)."""

    num_samples: int = 8
    objective: str | None = None  # pareto | budget | validation (default: budget if a budget is given, else pareto)
    budget: float | None = None  # objective budget: the exported model's bytes at most this fraction of the dense model's
    scheduler: str | None = None  # asha stops trials whose validation metric trails (default: asha for validation, else fifo)
    search_alg: str = "optuna"
    startup_trials: int | None = None  # optuna: random trials before TPE models them (default: Optuna's, 10)
    cpu: float = 1.0  # per trial
    gpu: float = 0.0  # per trial; fractional shares one GPU, e.g. 0.25 = four trials per GPU
    max_concurrent: int = 0  # 0: as many as the resources allow
    grace_period: int = 2  # ASHA: reports a trial always gets before it can be stopped
    reduction_factor: int = 2  # ASHA: keeps the top 1/reduction_factor at each rung
    max_failures: int = 1  # retries of a failing trial before it is recorded as errored
    budgets: list = field(default_factory=lambda: [0.1, 0.25, 0.5, 1.0])  # fractions of the dense model's bytes
    storage_path: str | None = None  # default: ./saved/tune
    name: str | None = None  # experiment folder; default <model>-<dataset>-tune
    ray_address: str | None = None  # join a running cluster ("auto" or host:port); none: start a local one
    seed: int | None = None  # search algorithm seed; default: the config's seed

    def update(self, values: dict, where: str) -> "SearchSettings":
        known = {f.name: f for f in fields(self)}
        for key, value in values.items():
            if value is None:
                continue
            if key not in known:
                raise UserError(f"unknown search setting '{key}' in {where}; known: {', '.join(known)}")
            setattr(self, key, value)
        self._check(where)
        return self

    def finish(self, where: str = "the search settings") -> "SearchSettings":
        """Fill the defaults that depend on other settings, once every source is read."""
        if self.objective is None:
            self.objective = "budget" if self.budget is not None else "pareto"
        if self.scheduler is None:
            self.scheduler = "asha" if self.objective == "validation" else "fifo"
        if self.objective == "budget" and self.budget is None:
            raise UserError(f"objective=budget in {where} needs a budget, e.g. --budget=0.25 (a fraction of the dense model's bytes)")
        if self.objective != "budget" and self.budget is not None:
            raise UserError(f"budget={self.budget} in {where} applies to objective=budget only (objective is {self.objective}); drop one")
        if self.scheduler == "asha" and self.objective != "validation":
            raise UserError(
                f"scheduler=asha in {where} compares trials by the validation metric alone, which objective={self.objective} "
                "does not; use scheduler: fifo (or objective: validation)"
            )
        return self

    def _check(self, where: str) -> None:
        try:
            self.num_samples = int(self.num_samples)
            self.budget = None if self.budget is None else float(self.budget)
            self.startup_trials = None if self.startup_trials is None else int(self.startup_trials)
            self.cpu, self.gpu = float(self.cpu), float(self.gpu)
            self.max_concurrent, self.max_failures = int(self.max_concurrent), int(self.max_failures)
            self.grace_period, self.reduction_factor = int(self.grace_period), int(self.reduction_factor)
            self.budgets = sorted(float(b) for b in self.budgets)
        except (TypeError, ValueError) as err:
            raise UserError(f"a search setting in {where} is not a number ({err}); see properties/tune/lth.yaml") from err
        if self.num_samples < 1:
            raise UserError(f"num_samples={self.num_samples} in {where} must be at least 1, e.g. --num_samples=8")
        if self.objective is not None and self.objective not in OBJECTIVES:
            raise UserError(f"objective={self.objective} in {where} is not one of {', '.join(OBJECTIVES)}")
        if self.budget is not None and not 0.0 < self.budget <= 1.0:
            raise UserError(f"budget={self.budget} in {where} must be in (0, 1], a fraction of the dense model's bytes, e.g. 0.25")
        if self.startup_trials is not None and self.startup_trials < 1:
            raise UserError(f"startup_trials={self.startup_trials} in {where} must be at least 1")
        if self.scheduler is not None and self.scheduler not in SCHEDULERS:
            raise UserError(f"scheduler={self.scheduler} in {where} is not one of {', '.join(SCHEDULERS)}")
        if self.search_alg not in SEARCH_ALGS:
            raise UserError(f"search_alg={self.search_alg} in {where} is not one of {', '.join(SEARCH_ALGS)}")
        if self.cpu <= 0 or self.gpu < 0:
            raise UserError(f"cpu={self.cpu}, gpu={self.gpu} in {where}: cpu must be > 0 and gpu >= 0 per trial")
        if self.gpu > 1 and self.gpu != int(self.gpu):
            raise UserError(f"gpu={self.gpu} in {where}: above 1 a trial needs whole GPUs (e.g. 2); below 1, a share such as 0.25")


@dataclass
class SearchFile:
    path: Path
    space: list[Dist]
    settings: SearchSettings
    fixed: dict


def load_search_file(path) -> SearchFile:
    """Parse and check a search file; every problem is a one-line UserError."""
    from recbole_compress.property_files import load_yaml, resolve_property_file

    path = Path(resolve_property_file(path, "search file"))
    data = load_yaml(path, "search file")
    settings_block = data.pop("search", None) or {}
    fixed = data.pop("config", None) or {}
    if not isinstance(settings_block, dict) or not isinstance(fixed, dict):
        raise UserError(f"search file {path}: 'search' and 'config' must be mappings (key: value)")
    space = [parse_dist(key, spec, path) for key, spec in data.items()]
    if not space:
        raise UserError(f"search file {path} searches no key; add e.g. prune_rate: {{choice: [0.1, 0.2]}}")
    overlap = sorted(set(fixed) & {d.key for d in space})
    if overlap:
        raise UserError(f"search file {path}: {', '.join(overlap)} both searched and fixed under 'config'; keep one")
    settings = SearchSettings().update(settings_block, f"{path} (search:)")
    return SearchFile(path=path, space=space, settings=settings, fixed=fixed)


def parse_dist(key: str, spec, where) -> Dist:
    bad = f"search file {where}: '{key}' must be one of {_FORMS_HELP}"
    if not isinstance(spec, dict) or len(spec) != 1:
        raise UserError(f"{bad} (got {spec!r}); fixed values go under 'config:'")
    form, args = next(iter(spec.items()))
    if form not in FORMS:
        raise UserError(f"{bad} (got unknown form '{form}')")
    if form == "choice":
        if not isinstance(args, list) or not args:
            raise UserError(f"{bad}: choice needs a non-empty list, e.g. {{choice: [0.1, 0.2]}}")
        return Dist(key, form, tuple(args))
    if not isinstance(args, list) or len(args) != 2:
        raise UserError(f"{bad}: {form} needs [low, high], e.g. {{{form}: [1, 4]}}")
    try:  # yaml reads 1e-4 (no dot) as a string
        low, high = (int(a) if form == "randint" and float(a) == int(float(a)) else float(a) for a in args)
    except (TypeError, ValueError):
        raise UserError(f"{bad}: {form} bounds {args} are not numbers") from None
    if form == "randint" and not (isinstance(low, int) and isinstance(high, int)):
        raise UserError(f"{bad}: randint bounds {args} must be integers")
    if not low < high:
        raise UserError(f"{bad}: {form} needs low < high (got {args})")
    if form == "loguniform" and low <= 0:
        raise UserError(f"{bad}: loguniform needs 0 < low (got {args})")
    return Dist(key, form, (low, high))
