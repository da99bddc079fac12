"""What every trainer this project hands out adds to RecBole's: per-epoch times,
weights-only checkpoints loaded only from the run's own folder, and resuming a killed run."""

from __future__ import annotations

from recbole_compress.trainers.checkpoints import CheckpointMixin
from recbole_compress.trainers.resume import EpochResumeMixin
from recbole_compress.trainers.stats import RunStatsMixin


class ProjectTrainerMixin(EpochResumeMixin, RunStatsMixin, CheckpointMixin):
    """Mixed onto RecBole's trainer for every model (methods add their own mixin on top)."""
