"""Per-epoch training time, kept for summary.json and the benchmarks."""

from __future__ import annotations

import time


class RunStatsMixin:
    """Records the wall time of every training epoch; changes nothing else."""

    def _train_epoch(self, train_data, epoch_idx, *args, **kwargs):
        started = time.perf_counter()
        result = super()._train_epoch(train_data, epoch_idx, *args, **kwargs)
        if not hasattr(self, "epoch_times"):
            self.epoch_times = []
        self.epoch_times.append(time.perf_counter() - started)
        return result

    @property
    def epochs_run(self) -> int:
        return len(getattr(self, "epoch_times", []))

    @property
    def mean_epoch_time(self) -> float | None:
        times = getattr(self, "epoch_times", [])
        return round(sum(times) / len(times), 4) if times else None
