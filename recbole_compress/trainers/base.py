"""What every trainer this project hands out adds to RecBole's: per-epoch times, and
weights-only checkpoints loaded only from the run's own folder."""

from __future__ import annotations

from recbole_compress.trainers.checkpoints import CheckpointMixin
from recbole_compress.trainers.stats import RunStatsMixin


class ProjectTrainerMixin(RunStatsMixin, CheckpointMixin):
    """Mixed onto RecBole's trainer for every model (methods add their own mixin on top)."""
