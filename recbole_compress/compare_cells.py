"""The cells of a comparison and the two ways to run them: one after another in this
process, or as Ray tasks (:mod:`recbole_compress.compare_ray`).

A cell is one training run (the dense backbone, or one method at one budget, for one
seed) in its own folder ``cells/<name>``. ``cell.json``, written last and by whoever
ran the cell, marks it finished with exactly its settings, so a comparison resumes on any
machine that sees the folder, whichever process or node trained the cells.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from recbole_compress.errors import UserError
from recbole_compress.run import atomic_write_json, to_jsonable

CELL_FILE = "cell.json"
DENSE = "dense"


@dataclass
class Cell:
    """One run of a comparison: ``settings`` are what it computes with (they, and the
    model, decide whether a finished cell can be reused)."""

    method: str  # "dense" or a method of budgets.PLANNERS
    budget: float  # 1.0 for the dense cell
    seed: int | None  # None: the config's seed (no --seeds)
    model: str
    settings: dict
    plan: object = None  # budgets.Plan for a method cell

    @property
    def name(self) -> str:
        base = DENSE if self.method == DENSE else f"{self.method.replace('+', '_')}-b{self.budget:g}"
        return base if self.seed is None else f"{base}-seed{self.seed}"

    @property
    def record(self) -> dict:
        return {"model": self.model, "settings": self.settings}

    def label(self) -> str:
        where = "dense" if self.method == DENSE else f"{self.method} @ {self.budget:g}"
        return where if self.seed is None else f"{where} seed {self.seed}"


@dataclass
class Outcome:
    """What running (or finding) a cell gave: its summary, or why there is none."""

    summary: dict | None = None
    error: str | None = None
    reused: bool = False
    ran_on: dict = field(default_factory=dict)


# What RecBole's Config fills into a given train_neg_sample_args (Config._set_default_parameters).
# It did so in the caller's dict before config.Config copied it, so records written then
# may hold these keys and newer ones not: both read the same (see canonical).
TRAIN_NEG_DEFAULTS = {"distribution": "uniform", "sample_num": 1, "alpha": 1.0, "dynamic": False, "candidate_num": 0}


def canonical(obj):
    """``obj`` as plain JSON with RecBole's defaults in every nested ``train_neg_sample_args``:
    the form in which settings are compared, so a run recorded with or without them is the
    same run."""
    obj = to_jsonable(obj)  # a copy
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            negatives = item.get("train_neg_sample_args")
            if isinstance(negatives, dict):
                for key, value in TRAIN_NEG_DEFAULTS.items():
                    negatives.setdefault(key, value)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return obj


def finished(cell_dir: Path, record: dict) -> Outcome | None:
    """The outcome of a cell that already ran with exactly ``record``'s settings."""
    path = Path(cell_dir) / CELL_FILE
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
        if canonical(saved.get("record")) != canonical(record):
            return None
        summary = json.loads((Path(cell_dir) / "summary.json").read_text())
    except (OSError, ValueError, AttributeError):
        return None  # damaged or half-copied: run the cell again
    return Outcome(summary=summary, reused=True, ran_on=saved.get("ran_on") or {})


def run_cell(model: str, dataset: str, cell_dir: Path, record: dict, config_file_list, settings: dict,
             ran_on: dict | None = None) -> Outcome:
    """Train one cell unless it already finished. ``settings`` may add keys that do not
    change the result (data_path, gpu_id) to ``record``'s."""
    from recbole_compress.quick_start import run_recbole_compress

    frozen = to_jsonable(record)  # what was asked for, taken before anything runs
    done = finished(cell_dir, frozen)
    if done is not None:
        return done
    result = run_recbole_compress(model, dataset, config_file_list, {**settings, "output_dir": str(cell_dir)})
    # last: marks the cell finished (and where it ran)
    atomic_write_json(Path(cell_dir) / CELL_FILE, {"record": frozen, "ran_on": ran_on or {}})
    return Outcome(summary=result["summary"], ran_on=ran_on or {})


# -- runners: each takes a batch of cells and returns {cell name: Outcome} ------------------------

Report = Callable[[Cell, Outcome], None]


@dataclass
class CellContext:
    """What every cell of one comparison shares."""

    dataset: str
    out: Path
    config_files: list | None
    run_settings: dict  # added to every cell's settings when it runs (data_path, ...)

    def cell_dir(self, cell: Cell) -> Path:
        return self.out / "cells" / cell.name


class SequentialRunner:
    """Today's path: the cells one after another in this process."""

    description = "sequentially in this process"

    def run(self, cells: list[Cell], context: CellContext, report: Report) -> dict[str, Outcome]:
        from recbole_compress.ray_cluster import where

        outcomes = {}
        for cell in cells:
            try:
                outcome = run_cell(cell.model, context.dataset, context.cell_dir(cell), cell.record,
                                   context.config_files, {**cell.settings, **context.run_settings}, where())
            except UserError as err:
                outcome = Outcome(error=str(err))
            outcomes[cell.name] = outcome
            report(cell, outcome)
        return outcomes


class ReportRunner:
    """--report: trains nothing; a cell that has not finished has no summary."""

    description = "report only: nothing is trained"

    def run(self, cells: list[Cell], context: CellContext, report: Report) -> dict[str, Outcome]:
        outcomes = {}
        for cell in cells:
            outcome = finished(context.cell_dir(cell), cell.record) or Outcome(error=NOT_RUN)
            outcomes[cell.name] = outcome
            report(cell, outcome)
        return outcomes


NOT_RUN = "not run yet"
