"""``train_mode`` and the keys of all-position training (properties/model/SeqTrain.yaml).

RecBole's SASRec and GRU4Rec constructors accept only ``loss_type`` BPR or CE, so in
``all_positions`` mode the user's ``loss_type`` (CE, BCE or gBCE) moves to the derived
key ``all_positions_loss`` (read by the trainer, which owns the loss) and the model is
built with CE, whose own loss is then never called. RecBole's negative sampler is off
(``train_neg_sample_args: None``): negatives are drawn per position by
:func:`recbole_compress.seqtrain.sequences.sample_negatives`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from recbole.utils import ModelType

from recbole_compress.errors import UserError
from recbole_compress.seqtrain.sequences import check_window_overlap

TRAIN_MODES = ("prefix", "all_positions")
LOSSES = ("CE", "BCE", "gBCE")
# backbones whose forward is causal over left-aligned sequences and ends with
# gather_indexes(output, item_seq_len - 1): the full output holds every position's prediction
SUPPORTED_BACKBONES = ("SASRec", "GRU4Rec")
PROPERTY_FILE = "SeqTrain.yaml"
DERIVED_LOSS_KEY = "all_positions_loss"


def property_files(model_class, properties: Path) -> list[Path]:
    """Config hook: the defaults of the keys below, for sequential models only."""
    if getattr(model_class, "type", None) == ModelType.SEQUENTIAL:
        return [properties / "model" / PROPERTY_FILE]
    return []


def backbone_name(model_class, model_name: str) -> str:
    """The RecBole model under any compression (``SASRec_JPQ_LTH`` -> ``SASRec``)."""
    return getattr(model_class, "base_model_name", None) or getattr(model_class, "__name__", model_name)


def apply_train_mode(config) -> None:
    """Config hook, run before RecBole's own checks of ``loss_type``: validate
    ``train_mode`` and, in ``all_positions`` mode, move the loss to the trainer."""
    final = config.final_config_dict
    mode = final.get("train_mode") or "prefix"
    if mode not in TRAIN_MODES:
        raise UserError(f"train_mode={mode} is not one of {', '.join(TRAIN_MODES)}; use --train_mode=all_positions or leave it out")
    loss = final.get("loss_type")
    name = config.model
    backbone = backbone_name(config.model_class, name)
    if mode == "prefix":
        # other models have their own BCE (CDAE, TransRec): only these backbones' BCE needs all positions
        if backbone in SUPPORTED_BACKBONES and loss in ("BCE", "gBCE"):
            raise UserError(
                f"loss_type={loss} trains on sampled negatives at every position: add --train_mode=all_positions "
                "(RecBole's prefix training takes CE or BPR)"
            )
        return
    if final.get("MODEL_TYPE") != ModelType.SEQUENTIAL or backbone not in SUPPORTED_BACKBONES:
        hint = " (BERT4Rec already trains on its masked positions; use its own training)" if backbone == "BERT4Rec" else ""
        raise UserError(
            f"train_mode=all_positions supports {', '.join(SUPPORTED_BACKBONES)} and their compressed versions "
            f"(e.g. SASRec_JPQ), not {name}{hint}; use train_mode: prefix for it"
        )
    if loss not in LOSSES:
        raise UserError(f"loss_type={loss} is not an all_positions loss; use one of {', '.join(LOSSES)}")
    if config.external_config_dict.get("train_neg_sample_args") is not None:
        raise UserError(
            "train_neg_sample_args is RecBole's prefix sampler and does not run with train_mode=all_positions; "
            "remove it and set --neg_samples=K (negatives per position, for BCE and gBCE)"
        )
    if not final.get("single_spec", True):
        raise UserError("train_mode=all_positions runs on one process; drop the distributed settings (nproc/world_size)")
    AllPositionsSettings.check(final)
    final[DERIVED_LOSS_KEY] = loss
    final["loss_type"] = "CE"  # what RecBole's constructor accepts; the trainer owns the loss
    final["train_neg_sample_args"] = None


@dataclass(frozen=True)
class AllPositionsSettings:
    """The checked keys of all-position training."""

    loss: str
    neg_samples: int
    gbce_t: float
    batch_size: int
    length_bucketing: bool
    window_overlap: int = 0

    @staticmethod
    def check(values) -> None:
        _positive_int(values, "neg_samples")
        _positive_int(values, "train_batch_size")
        check_window_overlap(values.get("window_overlap") or 0, values.get("MAX_ITEM_LIST_LENGTH"))
        t = values.get("gbce_t")
        try:
            t = float(0.75 if t is None else t)
        except (TypeError, ValueError):
            t = float("nan")
        if not 0.0 <= t <= 1.0:
            raise UserError(f"gbce_t={values.get('gbce_t')} is outside [0, 1] (gSASRec's calibration t); use e.g. --gbce_t=0.75")

    @classmethod
    def from_config(cls, config) -> "AllPositionsSettings | None":
        """The settings, or None in ``prefix`` mode."""
        if (config["train_mode"] or "prefix") != "all_positions":
            return None
        loss = config[DERIVED_LOSS_KEY]
        if loss is None:  # a Config built without recbole_compress's hook
            raise UserError("train_mode=all_positions needs recbole_compress's Config (recbole_compress.Config)")
        values = config.final_config_dict
        cls.check(values)
        return cls(
            loss=str(loss),
            neg_samples=int(values.get("neg_samples") or 1),
            gbce_t=float(0.75 if values.get("gbce_t") is None else values["gbce_t"]),
            batch_size=int(values["train_batch_size"]),
            length_bucketing=bool(values.get("length_bucketing", True)),
            window_overlap=int(values.get("window_overlap") or 0),
        )

    def describe(self) -> str:
        if self.loss == "CE":
            return "CE (full softmax)"
        extra = f", t={self.gbce_t}" if self.loss == "gBCE" else ""
        return f"{self.loss} with {self.neg_samples} uniform negative(s) per position{extra}"


def _positive_int(values, key: str) -> None:
    value = values.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{key}={value} must be a whole number >= 1; e.g. --{key}=1")
