"""A comparison's cells as Ray tasks: on a local Ray, or on a cluster (``--ray-address``).

Each cell is one task with ``cpu`` CPUs and ``gpu`` GPUs (a fraction shares a GPU), at
most ``max_concurrent`` at once (0: as the cluster's resources allow). The task trains
the cell in its folder and writes ``cell.json`` itself, so a cell that finished is kept
even when the driver dies (e.g. with the head node); the same command then skips it.
Cells that finished before are found in the driver and never become tasks, so a
comparison whose cells all finished starts no Ray at all. A task whose node dies is
retried by Ray on another node (the cell starts again in the same folder).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from recbole_compress.compare_cells import Cell, CellContext, Outcome, Report, finished, run_cell
from recbole_compress.errors import UserError

NODE_RETRIES = 3  # re-runs of a cell whose worker or node died (not of a cell that raised)


@dataclass
class CellJob:
    """What a task needs (small and picklable)."""

    model: str
    dataset: str
    cell_dir: str
    record: dict
    settings: dict
    config_files: list | None
    cpu: float


def cell_task(job: CellJob) -> Outcome:
    """One cell in a Ray worker: RecBole's logs go into the cell's folder; the GPU
    (if any) is the one Ray assigned."""
    import torch

    from recbole_compress.ray_cluster import assigned_gpus, where

    torch.set_num_threads(max(1, int(job.cpu)))
    visible = assigned_gpus()
    Path(job.cell_dir).mkdir(parents=True, exist_ok=True)
    os.chdir(job.cell_dir)
    ran_on = where()
    settings = {**job.settings, "gpu_id": visible, "use_gpu": bool(visible)}
    try:
        return run_cell(job.model, job.dataset, Path(job.cell_dir), job.record, job.config_files, settings, ran_on)
    except UserError as err:
        return Outcome(error=str(err), ran_on=ran_on)


class RayRunner:
    """Cells as Ray tasks; Ray starts (or is joined) on the first cell to train."""

    def __init__(self, address: str | None = None, cpu: float = 1.0, gpu: float = 0.0, max_concurrent: int = 0):
        if cpu <= 0 or gpu < 0:
            raise UserError(f"--cpu={cpu} --gpu={gpu}: a cell needs cpu > 0 and gpu >= 0")
        if gpu > 1 and gpu != int(gpu):
            raise UserError(f"--gpu={gpu}: above 1 a cell needs whole GPUs (e.g. 2); below 1, a share such as 0.25")
        if max_concurrent < 0:
            raise UserError(f"--max-concurrent={max_concurrent} must be 0 (as resources allow) or more")
        self.address, self.cpu, self.gpu, self.max_concurrent = address, float(cpu), float(gpu), int(max_concurrent)
        self._ray = None

    @property
    def description(self) -> str:
        where = f"the Ray cluster at {self.address}" if self.address else "a local Ray"
        limit = f", at most {self.max_concurrent} at once" if self.max_concurrent else ""
        return f"as Ray tasks on {where} ({self.cpu:g} CPU, {self.gpu:g} GPU per cell{limit})"

    def _start(self):
        if self._ray is None:
            from recbole_compress.ray_cluster import init_ray

            self._ray = init_ray(self.address, threads=self.cpu)
        return self._ray

    def run(self, cells: list[Cell], context: CellContext, report: Report) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        waiting = []
        for cell in cells:
            done = finished(context.cell_dir(cell), cell.record)
            if done is not None:
                outcomes[cell.name] = done
                report(cell, done)
            else:
                waiting.append(cell)
        if not waiting:
            return outcomes
        ray = self._start()
        task = ray.remote(cell_task).options(num_cpus=self.cpu, num_gpus=self.gpu, max_retries=NODE_RETRIES)
        limit = self.max_concurrent or len(waiting)
        running: dict = {}
        while waiting or running:
            while waiting and len(running) < limit:
                cell = waiting.pop(0)
                job = CellJob(cell.model, context.dataset, str(context.cell_dir(cell)), cell.record,
                              {**cell.settings, **context.run_settings}, context.config_files, self.cpu)
                running[task.remote(job)] = cell
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                cell = running.pop(ref)
                outcome = _result(ray, ref)
                outcomes[cell.name] = outcome
                report(cell, outcome)
        return outcomes


def _result(ray, ref) -> Outcome:
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as err:  # a crash inside the cell: its log is in the cell folder
        cause = err.cause if getattr(err, "cause", None) is not None else err
        text = str(cause).strip().splitlines()
        return Outcome(error=f"crashed ({type(cause).__name__}: {text[0][:160] if text else ''})")
    except ray.exceptions.RayError as err:  # worker or node lost after the retries
        return Outcome(error=f"lost ({type(err).__name__}); rerun the same command to run it again")
