"""Per-epoch training time and the validation curve, kept for summary.json and the benchmarks."""

from __future__ import annotations

import time


class RunStatsMixin:
    """Records the wall time of every training epoch and every validation; changes nothing else."""

    def _train_epoch(self, train_data, epoch_idx, *args, **kwargs):
        started = time.perf_counter()
        result = super()._train_epoch(train_data, epoch_idx, *args, **kwargs)
        if not hasattr(self, "epoch_times"):
            self.epoch_times = []
        self.epoch_times.append(time.perf_counter() - started)
        return result

    def _valid_epoch(self, valid_data, *args, **kwargs):
        """``valid_curve``: after each validation, the epochs trained so far, the score and
        the cumulative training and validation seconds (time to the best epoch = their sum there)."""
        started = time.perf_counter()
        score, result = super()._valid_epoch(valid_data, *args, **kwargs)
        if not hasattr(self, "valid_curve"):
            self.valid_curve, self._valid_seconds = [], 0.0
        self._valid_seconds += time.perf_counter() - started
        self.valid_curve.append(
            {
                "epochs": self.epochs_run,
                "valid_score": round(float(score), 6),
                "train_time_s": round(sum(getattr(self, "epoch_times", [])), 3),
                "valid_time_s": round(self._valid_seconds, 3),
            }
        )
        return score, result

    @property
    def epochs_run(self) -> int:
        return len(getattr(self, "epoch_times", []))

    @property
    def mean_epoch_time(self) -> float | None:
        times = getattr(self, "epoch_times", [])
        return round(sum(times) / len(times), 4) if times else None
