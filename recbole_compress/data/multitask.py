"""Multi-task (click -> conversion) data on RecBole's dataset machinery.

RecBole 1.2.1's context-aware pipeline reads one label field. Here the atomic
``.inter`` keeps several label fields (config ``task_label_fields``, e.g.
``[click, purchase]``) next to its token/float feature fields; RecBole's
``Dataset`` loads, remaps and splits it as usual (``benchmark_filename`` or
``eval_args``), user/item feature files are joined in, and
:class:`MultiTaskDataLoader` batches the rows for the multi-task trainer.
"""

from __future__ import annotations

import torch
from recbole.utils import FeatureType

from recbole_compress.errors import UserError

# the funnel metrics need a click stage and one conversion stage after it
FUNNEL_TASKS = ("click", "conversion")
TASK_METRICS = ("ctr_auc", "ctr_logloss", "cvr_auc", "ctcvr_auc")
CTR_LOSSES = ("bce", "focal")
FEATURE_INTERACTIONS = ("none", "dot")


class TaskSettings:
    """``task_label_fields``, ``task_weights``, ``valid_metric``, the click loss (``ctr_loss``,
    ``focal_alpha``, ``focal_gamma``) and ``feature_interaction``, checked before any data is read."""

    def __init__(self, config):
        fields = config["task_label_fields"]
        if isinstance(fields, str):
            fields = [fields]
        if not fields:
            raise UserError(
                "task_label_fields is not set; name the click label then the conversion label, "
                "e.g. --task_label_fields=\"[click,purchase]\""
            )
        fields = [str(f) for f in fields]
        if len(fields) == 1:
            raise UserError(
                f"task_label_fields={fields} names one task only; multi-task models need the click label "
                "then the conversion label, e.g. [click,purchase] (for one label use a RecBole context model)"
            )
        if len(fields) != len(FUNNEL_TASKS):
            raise UserError(
                f"task_label_fields={fields} names {len(fields)} tasks; give exactly 2: the click label "
                "then the conversion label (CTR -> CVR funnel)"
            )
        if len(set(fields)) != len(fields):
            raise UserError(f"task_label_fields={fields} repeats a field; give two different label fields")
        self.fields = fields
        self.click, self.conversion = fields
        weights = config["task_weights"]
        weights = [1.0] * len(fields) if weights is None else [float(w) for w in weights]
        if len(weights) != len(fields) or any(w < 0 for w in weights) or not any(weights):
            raise UserError(
                f"task_weights={config['task_weights']} must be {len(fields)} non-negative numbers, not all 0, "
                "one per task_label_fields entry, e.g. [1.0,1.0]"
            )
        self.weights = weights
        metric = str(config["valid_metric"]).lower()
        if metric not in TASK_METRICS:
            raise UserError(
                f"valid_metric={config['valid_metric']} is not a multi-task metric; use one of {', '.join(TASK_METRICS)}"
            )
        self.valid_metric = metric
        self.valid_bigger = not metric.endswith("logloss")
        self.ctr_loss = str(config["ctr_loss"] or "bce").lower()
        if self.ctr_loss not in CTR_LOSSES:
            raise UserError(f"ctr_loss={config['ctr_loss']} is not one of {', '.join(CTR_LOSSES)}; e.g. --ctr_loss=focal")
        self.focal_alpha = _number(config, "focal_alpha", 0.25)
        if not 0.0 <= self.focal_alpha <= 1.0:
            raise UserError(f"focal_alpha={self.focal_alpha} must be in [0, 1] (the positives' weight), e.g. 0.75")
        self.focal_gamma = _number(config, "focal_gamma", 2.0)
        if self.focal_gamma < 0:
            raise UserError(f"focal_gamma={self.focal_gamma} must be at least 0 (0 = weighted BCE), e.g. 2")
        self.feature_interaction = str(config["feature_interaction"] or "none").lower()
        if self.feature_interaction not in FEATURE_INTERACTIONS:
            raise UserError(
                f"feature_interaction={config['feature_interaction']} is not one of {', '.join(FEATURE_INTERACTIONS)} "
                "(none: concatenated field vectors; dot: their pairwise dot products too, DLRM-style)"
            )

    @property
    def task_metrics(self) -> list[str]:
        """Each task's own validation metric (what its lottery-ticket rounds early-stop on)."""
        return ["ctr_auc", "cvr_auc"]


def _number(config, key: str, default: float) -> float:
    value = config[key]
    if value is None:
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UserError(f"{key}={value} is not a number") from None


def check_labels(dataset, fields) -> None:
    """Every label field is in the data, loaded as a float field, and 0/1 only."""
    for field in fields:
        if field not in dataset.field2type:
            present = ", ".join(sorted(dataset.field2type))
            raise UserError(
                f"task label field '{field}' is not in dataset '{dataset.dataset_name}' (fields: {present}); "
                "fix task_label_fields or the dataset's load_col"
            )
        if dataset.field2type[field] != FeatureType.FLOAT:
            raise UserError(
                f"task label field '{field}' is a {dataset.field2type[field].value} field; a label must be "
                f"'{field}:float' with values 0/1 in the .inter header"
            )
        values = torch.as_tensor(dataset.inter_feat[field])
        bad = values[(values != 0) & (values != 1)]
        if bad.numel():
            raise UserError(
                f"task label field '{field}' is not binary: {bad.numel()} rows hold values other than 0/1 "
                f"(e.g. {bad[0].item():g}); a label must be 0 or 1 (missing values are not allowed)"
            )


class MultiTaskDataLoader:
    """Batches of one split as RecBole ``Interaction`` objects, user/item features joined.

    The joined rows are built once (small tabular data); a training loader
    reshuffles every epoch from torch's seeded generator, as RecBole's loaders do.
    """

    def __init__(self, config, dataset, batch_size: int, shuffle: bool):
        self._dataset = dataset
        self.config = config
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.rows = dataset.join(dataset.inter_feat[torch.arange(len(dataset))])

    @property
    def dataset(self):
        return self._dataset

    def __len__(self) -> int:
        return (len(self.rows) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        n = len(self.rows)
        order = torch.randperm(n) if self.shuffle else torch.arange(n)
        device = self.config["device"]
        for start in range(0, n, self.batch_size):
            yield self.rows[order[start : start + self.batch_size]].to(device)

    def labels(self, field: str) -> torch.Tensor:
        return self.rows[field]


def multitask_data_preparation(config, dataset):
    """RecBole's ``data_preparation`` for multi-task models: (train, valid, test) loaders."""
    tasks = TaskSettings(config)
    check_labels(dataset, tasks.fields)
    built = dataset.build()
    if len(built) != 3:
        raise UserError(
            f"dataset '{config['dataset']}' gives {len(built)} splits; multi-task training needs train, valid "
            "and test (benchmark_filename: [train, valid, test], or eval_args.split RS with three ratios)"
        )
    train, valid, test = built
    for name, part in (("train", train), ("valid", valid), ("test", test)):
        if len(part) == 0:
            raise UserError(f"the {name} split of dataset '{config['dataset']}' is empty; check its split settings")
    return (
        MultiTaskDataLoader(config, train, config["train_batch_size"], shuffle=True),
        MultiTaskDataLoader(config, valid, config["eval_batch_size"], shuffle=False),
        MultiTaskDataLoader(config, test, config["eval_batch_size"], shuffle=False),
    )
