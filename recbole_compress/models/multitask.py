"""Multi-task CTR/CVR models: ``SharedBottom``, ``ESMM``, ``MMoE`` and ``LT4Rec``.

All four read the same input, built from every field but the task labels: an
embedding per token / token_seq field (token_seq mean-pooled) and the float fields,
either concatenated (``feature_interaction: none``) or, as LT4Rec's authors do
(DLRM-style, ``dot``), the pairwise dot products of the field vectors followed by the
flattened vectors. Task 0 is the click (CTR), task 1 the conversion after a click
(CVR); pCTCVR = pCTR * pCVR for every model. The CTR loss is binary cross-entropy
or the focal loss (``ctr_loss``); CVR is BCE on the clicked exposures.

- ``SharedBottom``: one MLP shared by both tasks, one output layer per task.
- ``ESMM`` (Ma et al., SIGIR 2018): embeddings shared, one MLP per task; the CVR
  tower is trained only through pCTCVR on all exposures (entire space).
- ``MMoE`` (Ma et al., KDD 2018): ``mmoe_num_experts`` expert MLPs, a softmax gate per task.
- ``LT4Rec`` (arXiv 2008.09872): one MLP whose weight matrices carry one mask per
  task (found by per-task iterative magnitude pruning, :class:`LT4RecTrainer`);
  a task's forward pass uses only its own mask. Weights inside both masks are
  shared, the others private to one task, weights outside every mask pruned.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from recbole.model.abstract_recommender import AbstractRecommender
from recbole.utils import FeatureType, InputType, ModelType
from torch import Tensor, nn

from recbole_compress.data.multitask import (
    FEATURE_INTERACTIONS,
    TaskSettings,
    check_labels,
    multitask_data_preparation,
)
from recbole_compress.embeddings.masked import add_mask, mask_of, original_of
from recbole_compress.errors import UserError
from recbole_compress.registry import register_model
from recbole_compress.trainers.multitask import LT4RecSettings, LT4RecTrainer, MultiTaskTrainer


class FeatureInput(nn.Module):
    """The network input from every feature field (token: embedded; token_seq: embedded
    and mean-pooled over its non-padding tokens; float: as it is).

    ``interaction="none"``: the field vectors and the raw float values concatenated.
    ``interaction="dot"`` (DLRM, LT4Rec's authors' ``_build_cross_interaction``): a float
    field becomes its value times a learned vector, so every field is a d-vector;
    the input is the dot products of every pair of field vectors (i <= j: the distinct
    entries of the authors' F x F Gram matrix, its diagonal included) followed by the
    flattened field vectors."""

    def __init__(self, dataset, embedding_size: int, exclude, interaction: str = "none"):
        super().__init__()
        if interaction not in FEATURE_INTERACTIONS:
            raise UserError(f"feature_interaction={interaction} is not one of {', '.join(FEATURE_INTERACTIONS)}")
        exclude = set(exclude)
        fields = [f for f in dataset.field2type if f not in exclude]
        self.token_fields = [f for f in fields if dataset.field2type[f] == FeatureType.TOKEN]
        self.seq_fields = [f for f in fields if dataset.field2type[f] == FeatureType.TOKEN_SEQ]
        self.float_fields = [f for f in fields if dataset.field2type[f] == FeatureType.FLOAT]
        unsupported = [f for f in fields if dataset.field2type[f] == FeatureType.FLOAT_SEQ]
        if unsupported:
            raise UserError(
                f"float_seq feature field(s) {unsupported} are not supported by the multi-task models; "
                "leave them out with load_col / unload_col"
            )
        if not (self.token_fields or self.seq_fields or self.float_fields):
            raise UserError(f"dataset '{dataset.dataset_name}' has no feature field besides the task labels")
        self.interaction = interaction
        self.embeddings = nn.ModuleDict(
            {f: nn.Embedding(dataset.num(f), embedding_size, padding_idx=0) for f in self.token_fields + self.seq_fields}
        )
        n_vectors = len(self.embeddings)
        if interaction == "dot":
            if self.float_fields:  # one learned vector per float field, scaled by the value
                self.float_vectors = nn.Parameter(torch.empty(len(self.float_fields), embedding_size))
                nn.init.xavier_normal_(self.float_vectors)
            n_vectors += len(self.float_fields)
            rows, cols = torch.triu_indices(n_vectors, n_vectors)
            self.register_buffer("pair_rows", rows, persistent=False)
            self.register_buffer("pair_cols", cols, persistent=False)
            self.output_dim = embedding_size * n_vectors + len(rows)
        else:
            self.output_dim = embedding_size * n_vectors + len(self.float_fields)

    def field_vectors(self, interaction) -> list[Tensor]:
        """One [batch, d] vector per token and token_seq field."""
        parts = [self.embeddings[f](interaction[f]) for f in self.token_fields]
        for f in self.seq_fields:
            ids = interaction[f]
            present = (ids > 0).unsqueeze(-1).float()
            parts.append((self.embeddings[f](ids) * present).sum(1) / present.sum(1).clamp(min=1.0))
        return parts

    def forward(self, interaction) -> Tensor:
        parts = self.field_vectors(interaction)
        floats = torch.stack([interaction[f].float() for f in self.float_fields], dim=1) if self.float_fields else None
        if self.interaction == "none":
            return torch.cat(parts + ([floats] if floats is not None else []), dim=1)
        vectors = torch.stack(parts, dim=1) if parts else None
        if floats is not None:
            scaled = floats.unsqueeze(-1) * self.float_vectors  # [batch, n_float, d]
            vectors = scaled if vectors is None else torch.cat([vectors, scaled], dim=1)
        gram = vectors @ vectors.transpose(1, 2)  # [batch, F, F]
        return torch.cat([gram[:, self.pair_rows, self.pair_cols], vectors.flatten(1)], dim=1)


def focal_loss(logits: Tensor, labels: Tensor, alpha: float, gamma: float) -> Tensor:
    """Binary focal loss (Lin et al. 2017) as LT4Rec's authors' ``FocalLoss``: positives
    weighted ``alpha * (1 - p)^gamma``, negatives ``(1 - alpha) * p^gamma``; mean over rows."""
    p = torch.sigmoid(logits)
    positive = -alpha * (1 - p).pow(gamma) * F.logsigmoid(logits)
    negative = -(1 - alpha) * p.pow(gamma) * F.logsigmoid(-logits)
    return torch.where(labels > 0.5, positive, negative).mean()


def mlp(in_dim: int, sizes, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for size in sizes:
        layers += [nn.Linear(in_dim, int(size)), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_dim = int(size)
    return nn.Sequential(*layers)


def tower(in_dim: int, sizes, dropout: float) -> nn.Sequential:
    """A task's output head: optional hidden layers, then one logit."""
    body = mlp(in_dim, sizes, dropout)
    out_dim = int(sizes[-1]) if sizes else in_dim
    return nn.Sequential(*body, nn.Linear(out_dim, 1))


def _xavier(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.xavier_normal_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.xavier_normal_(module.weight)
        with torch.no_grad():
            module.weight[0].zero_()


class MultiTaskRecommender(AbstractRecommender):
    """Base of the multi-task models: input, losses and predictions of the funnel.

    Subclasses implement :meth:`task_logits` (the click logit and the conversion
    logit, or only those of ``tasks``)."""

    type = ModelType.CONTEXT
    input_type = InputType.POINTWISE
    trainer_class = MultiTaskTrainer
    extra_property_files = ("MultiTask",)
    check_config = staticmethod(TaskSettings)
    prepare_data = staticmethod(multitask_data_preparation)

    def __init__(self, config, dataset):
        super().__init__()
        self.tasks = TaskSettings(config)
        check_labels(dataset, self.tasks.fields)
        self.device = config["device"]
        self.features = FeatureInput(dataset, int(config["embedding_size"]), exclude=self.tasks.fields,
                                     interaction=self.tasks.feature_interaction)
        self.hidden_sizes = [int(s) for s in config["mlp_hidden_sizes"]]
        if not self.hidden_sizes:
            raise UserError("mlp_hidden_sizes is empty; give the MLP's layer sizes, e.g. [512,256,128]")
        self.tower_sizes = [int(s) for s in (config["tower_hidden_sizes"] or [])]
        self.dropout = float(config["dropout_prob"] or 0.0)

    def task_logits(self, interaction, tasks=None) -> dict[int, Tensor]:
        raise NotImplementedError

    def labels(self, interaction) -> tuple[Tensor, Tensor]:
        return interaction[self.tasks.click].float(), interaction[self.tasks.conversion].float()

    def ctr_loss(self, logits: Tensor, click: Tensor) -> Tensor:
        """The click task's loss on all exposures: BCE, or the focal loss (``ctr_loss: focal``)."""
        if self.tasks.ctr_loss == "focal":
            return focal_loss(logits, click, self.tasks.focal_alpha, self.tasks.focal_gamma)
        return F.binary_cross_entropy_with_logits(logits, click)

    def task_losses(self, interaction, tasks=None) -> dict[int, Tensor]:
        """Loss of each task: CTR (:meth:`ctr_loss`) on all exposures, CVR = BCE on the clicked ones."""
        tasks = [0, 1] if tasks is None else list(tasks)
        logits = self.task_logits(interaction, tasks)
        click, conversion = self.labels(interaction)
        losses = {}
        if 0 in tasks:
            losses[0] = self.ctr_loss(logits[0], click)
        if 1 in tasks:
            clicked = click > 0.5
            if clicked.any():
                losses[1] = F.binary_cross_entropy_with_logits(logits[1][clicked], conversion[clicked])
            else:  # no click in this batch: nothing to learn for CVR, keep the graph
                losses[1] = logits[1].sum() * 0.0
        return losses

    def calculate_loss(self, interaction) -> Tensor:
        losses = self.task_losses(interaction)
        return sum(w * losses[t] for t, w in enumerate(self.tasks.weights))

    def predict_funnel(self, interaction) -> tuple[Tensor, Tensor]:
        """(pCTR, pCVR) per row; pCTCVR is their product."""
        logits = self.task_logits(interaction)
        return torch.sigmoid(logits[0]), torch.sigmoid(logits[1])

    def predict(self, interaction) -> Tensor:
        p_ctr, p_cvr = self.predict_funnel(interaction)
        return p_ctr * p_cvr

    def shared_mlp_usage(self) -> dict:
        """Weights of the hidden MLP(s) (biases excluded) a deployed model keeps."""
        total = sum(m.weight.numel() for m in self._hidden_linears())
        return {"mlp_weights": total, "mlp_weights_used": total, "mlp_used_fraction": 1.0}

    def _hidden_linears(self) -> list[nn.Linear]:
        raise NotImplementedError


@register_model
class SharedBottom(MultiTaskRecommender):
    """One MLP shared by both tasks, a small output layer per task."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.bottom = mlp(self.features.output_dim, self.hidden_sizes, self.dropout)
        self.towers = nn.ModuleList(tower(self.hidden_sizes[-1], self.tower_sizes, self.dropout) for _ in range(2))
        self.apply(_xavier)

    def task_logits(self, interaction, tasks=None):
        shared = self.bottom(self.features(interaction))
        return {t: self.towers[t](shared).squeeze(-1) for t in (tasks if tasks is not None else (0, 1))}

    def _hidden_linears(self):
        return [m for m in self.bottom if isinstance(m, nn.Linear)]


@register_model
class ESMM(MultiTaskRecommender):
    """Entire-space multi-task model: pCTCVR = pCTR * pCVR learnt on all exposures."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.nets = nn.ModuleList(
            nn.Sequential(mlp(self.features.output_dim, self.hidden_sizes, self.dropout),
                          tower(self.hidden_sizes[-1], self.tower_sizes, self.dropout))
            for _ in range(2)
        )
        self.apply(_xavier)

    def task_logits(self, interaction, tasks=None):
        x = self.features(interaction)
        return {t: self.nets[t](x).squeeze(-1) for t in (tasks if tasks is not None else (0, 1))}

    def task_losses(self, interaction, tasks=None):
        """CTR (:meth:`ctr_loss`) on pCTR; CTCVR = BCE(pCTR * pCVR, click * conversion), both on all exposures."""
        logits = self.task_logits(interaction)
        click, conversion = self.labels(interaction)
        p_ctr = torch.sigmoid(logits[0])
        p_ctcvr = (p_ctr * torch.sigmoid(logits[1])).clamp(1e-7, 1 - 1e-7)
        losses = {
            0: self.ctr_loss(logits[0], click),
            1: F.binary_cross_entropy(p_ctcvr, click * conversion),
        }
        return {t: losses[t] for t in (tasks if tasks is not None else (0, 1))}

    def _hidden_linears(self):
        return [m for net in self.nets for m in net[0] if isinstance(m, nn.Linear)]


@register_model
class MMoE(MultiTaskRecommender):
    """Multi-gate mixture of experts: each task mixes the experts with its own softmax gate."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        n_experts = int(config["mmoe_num_experts"] or 0)
        if n_experts < 1:
            raise UserError(f"mmoe_num_experts={n_experts} must be at least 1, e.g. --mmoe_num_experts=4")
        in_dim = self.features.output_dim
        self.experts = nn.ModuleList(mlp(in_dim, self.hidden_sizes, self.dropout) for _ in range(n_experts))
        self.gates = nn.ModuleList(nn.Linear(in_dim, n_experts) for _ in range(2))
        self.towers = nn.ModuleList(tower(self.hidden_sizes[-1], self.tower_sizes, self.dropout) for _ in range(2))
        self.apply(_xavier)

    def task_logits(self, interaction, tasks=None):
        x = self.features(interaction)
        experts = torch.stack([e(x) for e in self.experts], dim=1)  # [batch, experts, hidden]
        out = {}
        for t in tasks if tasks is not None else (0, 1):
            gate = torch.softmax(self.gates[t](x), dim=-1).unsqueeze(-1)
            out[t] = self.towers[t]((gate * experts).sum(1)).squeeze(-1)
        return out

    def _hidden_linears(self):
        return [m for e in self.experts for m in e if isinstance(m, nn.Linear)]


class SparseSharedMLP(nn.Module):
    """An MLP whose weight matrices hold one boolean mask per task.

    ``forward(x, task)`` multiplies each weight by that task's mask, so the
    gradient of a weight outside it is exactly zero. The union of the task
    masks is a :class:`TensorMask` parametrisation of each weight: weights in no
    task's mask are pruned (zero, not stored in the export)."""

    def __init__(self, in_dim: int, sizes, n_tasks: int, dropout: float):
        super().__init__()
        self.linears = nn.ModuleList()
        for size in sizes:
            self.linears.append(nn.Linear(in_dim, int(size)))
            in_dim = int(size)
        for i, layer in enumerate(self.linears):
            self.register_buffer(f"task_mask_{i}", torch.ones((n_tasks, *layer.weight.shape), dtype=torch.bool))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.n_tasks = n_tasks

    def add_union_masks(self) -> None:
        for layer in self.linears:
            add_mask(layer, "weight")

    def task_masks(self, layer_idx: int) -> Tensor:
        return getattr(self, f"task_mask_{layer_idx}")

    def forward(self, x: Tensor, task: int) -> Tensor:
        for i, layer in enumerate(self.linears):
            weight = layer.weight * self.task_masks(i)[task].to(layer.weight.dtype)
            x = self.dropout(F.relu(F.linear(x, weight, layer.bias)))
        return x

    def originals(self) -> list[Tensor]:
        """The trainable weight tensors (behind the union parametrisation)."""
        return [original_of(layer, "weight") for layer in self.linears]

    def union_masks(self) -> list[Tensor]:
        return [mask_of(layer, "weight").mask for layer in self.linears]

    @torch.no_grad()
    def set_task_masks(self, masks: list[list[Tensor]]) -> None:
        """``masks[task][layer]``: each task's mask; the union becomes the pruning mask."""
        for i, union in enumerate(self.union_masks()):
            stacked = torch.stack([m[i].to(torch.bool) for m in masks])
            self.task_masks(i).copy_(stacked)
            union.copy_(stacked.any(0))
            self.originals()[i].mul_(union)

    @torch.no_grad()
    def reset_task_masks(self) -> None:
        for i in range(len(self.linears)):
            self.task_masks(i).fill_(True)

    def usage(self) -> dict:
        """Per layer: weights, each task's, the union (used), the intersection (shared), overlap = shared / used."""
        layers = []
        for i, layer in enumerate(self.linears):
            masks = self.task_masks(i) & self.union_masks()[i]
            union, inter = masks.any(0), masks.all(0)
            layers.append({
                "layer": i,
                "shape": list(layer.weight.shape),
                "weights": layer.weight.numel(),
                "per_task": [int(m.sum()) for m in masks],
                "used": int(union.sum()),
                "shared": int(inter.sum()),
                "overlap": float(inter.sum() / union.sum().clamp(min=1)),
            })
        total = sum(r["weights"] for r in layers)
        used = sum(r["used"] for r in layers)
        return {
            "mlp_weights": total,
            "mlp_weights_used": used,
            "mlp_used_fraction": used / total,
            "mlp_weights_per_task": [sum(r["per_task"][t] for r in layers) for t in range(self.n_tasks)],
            "mlp_weights_shared": sum(r["shared"] for r in layers),
            "layers": layers,
        }


@register_model
class LT4Rec(MultiTaskRecommender):
    """Lottery-ticket sparse sharing: per-task masks on one shared MLP."""

    trainer_class = LT4RecTrainer
    check_config = staticmethod(lambda config: (TaskSettings(config), LT4RecSettings(config)))

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.shared = SparseSharedMLP(self.features.output_dim, self.hidden_sizes, 2, self.dropout)
        self.towers = nn.ModuleList(tower(self.hidden_sizes[-1], self.tower_sizes, self.dropout) for _ in range(2))
        self.apply(_xavier)
        self.shared.add_union_masks()  # after init: the parametrisation keeps the initial values

    def task_logits(self, interaction, tasks=None):
        x = self.features(interaction)
        return {t: self.towers[t](self.shared(x, t)).squeeze(-1) for t in (tasks if tasks is not None else (0, 1))}

    def shared_mlp_usage(self) -> dict:
        return self.shared.usage()
