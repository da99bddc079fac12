"""The trainer side of ``train_mode: all_positions``.

:class:`AllPositionsTrainerMixin` sits under every sequential model's trainer (and
under any compression method's mixin), and does nothing in ``prefix`` mode. In
``all_positions`` mode each training epoch iterates its own loader of windows
instead of RecBole's prefix rows, and ``model.calculate_loss`` is the all-position
loss for the epoch's duration. A method's trainer that passes its own
``loss_func`` built on ``model.calculate_loss`` (CERP's regulariser in stage 1)
therefore composes unchanged; round loops (LTH) call ``fit`` as usual.
"""

from __future__ import annotations

from contextlib import contextmanager

from recbole.utils import set_color

from recbole_compress.seqtrain.losses import make_loss
from recbole_compress.seqtrain.sequences import AllPositionsLoader, training_sequences, windows
from recbole_compress.seqtrain.settings import AllPositionsSettings


class AllPositionsTrainerMixin:
    """All-position training epochs when ``train_mode: all_positions``; else RecBole's."""

    def __init__(self, config, model):
        super().__init__(config, model)
        self.all_positions = AllPositionsSettings.from_config(config)
        self._all_positions_loader = None

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        if self.all_positions is None:
            return super()._train_epoch(train_data, epoch_idx, loss_func=loss_func, show_progress=show_progress)
        loader = self.all_positions_loader(train_data)
        with self._all_positions_loss():
            return super()._train_epoch(loader, epoch_idx, loss_func=loss_func, show_progress=show_progress)

    def all_positions_loader(self, train_data) -> AllPositionsLoader:
        """The windows of ``train_data``'s training split (built once)."""
        if self._all_positions_loader is None:
            model, settings = self.model, self.all_positions
            sequences = training_sequences(train_data._dataset, model.ITEM_SEQ, model.ITEM_SEQ_LEN)
            cut = windows(sequences, int(model.max_seq_length), settings.window_overlap)
            fields = {
                "user": model.USER_ID,
                "item_seq": model.ITEM_SEQ,
                "item_seq_len": model.ITEM_SEQ_LEN,
                "pos_item": model.POS_ITEM_ID,
                "neg_item": model.NEG_ITEM_ID,
            }
            negatives = settings.neg_samples if settings.loss != "CE" else 0
            self._all_positions_loader = AllPositionsLoader(
                cut, fields, settings.batch_size, int(model.n_items), negatives, settings.length_bucketing
            )
            self.logger.info(
                set_color("all-positions training", "yellow")
                + f": {len(sequences.users)} user sequences -> {len(cut)} windows of up to {model.max_seq_length} "
                f"transitions (overlap {settings.window_overlap}), {cut.positions()} trained positions "
                f"(RecBole's prefix rows: {len(train_data._dataset)}), "
                f"{len(self._all_positions_loader)} batches of {settings.batch_size}; loss {settings.describe()}"
            )
        return self._all_positions_loader

    @contextmanager
    def _all_positions_loss(self):
        model = self.model
        model.calculate_loss = make_loss(model, self.all_positions)  # shadows the method for this epoch
        try:
            yield
        finally:
            del model.calculate_loss
