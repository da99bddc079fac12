"""Rebuilding a trained model for serving from its artifact alone (no dataset files).

RecBole's model classes are built from the stored settings and a :class:`StandInDataset`
that answers what their constructors ask (``num(field)``, ``inter_matrix`` from the
stored training items). Then, per backbone family:

- matrix factorisation (BPR) and sequence encoders (SASRec, GRU4Rec): the plain RecBole
  model is built with one-row placeholder ID tables (so the dense tables are never
  allocated), those are replaced by their serving forms (embeddings/serving.py: sparse,
  meta tables, codes; never re-densified), and every other tensor is taken from the
  artifact as it is (``assign``: no copy). (torch's meta device would avoid even the
  placeholders, but its first use imports ~180 MB of symbolic-shape machinery.)
- graph propagation (LightGCN): propagation turns any ego table into dense final tables,
  so the model is rebuilt in full, propagated once at load, and only the dense final
  user and item tables are kept (their size is what the served model reports);
- any other general or sequential model: rebuilt in full (tables as trained) and scored
  by its own ``full_sort_predict``; it holds what the trained model holds.
"""

from __future__ import annotations

import json

import torch
from torch import Tensor, nn

from recbole_compress.embeddings.base import EMBEDDING_CLASSES
from recbole_compress.embeddings.serving import DenseMatrix, RowTable
from recbole_compress.embeddings.sparse_codec import decode_masked, unpack_bits
from recbole_compress.errors import UserError

# backbone -> its ID tables (attribute, field); full_sort_predict: user_embedding(user) @ item_embedding.weight.T
MATRIX_FACTORISATION = {"BPR": {"user_embedding": "user", "item_embedding": "item"}}
# forward(item_seq, item_seq_len) @ item_embedding.weight.T
SEQUENCE_ENCODERS = {"SASRec": {"item_embedding": "item"}, "GRU4Rec": {"item_embedding": "item"}}
GRAPH_PROPAGATION = ("LightGCN",)  # forward() -> (final users, final items); then the same dot product


class ServingConfig(dict):
    """The stored settings, read like RecBole's Config (a missing key is None)."""

    def __missing__(self, key):
        return None

    @property
    def final_config_dict(self):
        return self


def serving_config(block: dict) -> ServingConfig:
    from recbole.utils import EvaluatorType, InputType, ModelType

    settings = json.loads(block["settings"])
    for key, kind in (("MODEL_TYPE", ModelType), ("MODEL_INPUT_TYPE", InputType), ("eval_type", EvaluatorType)):
        if isinstance(settings.get(key), str):
            settings[key] = kind[settings[key]]
    settings["device"] = torch.device("cpu")
    settings["jpq_assignment"] = "random"  # codes come from the artifact: no SVD of a training matrix to redo
    return ServingConfig(settings)


class StandInDataset:
    """What RecBole's model constructors ask of a dataset, from the serving block."""

    def __init__(self, config: ServingConfig, block: dict, seen, placeholder_tables: bool = False):
        self.uid_field, self.iid_field = config["USER_ID_FIELD"], config["ITEM_ID_FIELD"]
        self.user_num, self.item_num = int(block["num_users"]), int(block["num_items"])
        self.model, self.sequential = block["model"], block["model_type"] == "sequential"
        self.seen = seen
        self.placeholder_tables = placeholder_tables  # ID tables of one row, replaced after the build

    def num(self, field: str) -> int:
        if field in (self.uid_field, self.iid_field) and self.placeholder_tables:
            return 1
        if field == self.uid_field:
            return self.user_num
        if field == self.iid_field:
            return self.item_num
        raise AttributeError(f"the number of values of field '{field}'")

    def inter_matrix(self, form: str = "coo", value_field=None):
        if value_field is not None:
            raise AttributeError(f"interaction values of '{value_field}'")
        if self.seen is not None:
            matrix = self.seen.coo(self.user_num, self.item_num)
        elif self.sequential:  # sequential models use no graph; JPQ's codes come from the artifact
            import scipy.sparse as sp

            matrix = sp.coo_matrix((max(self.user_num, 1), self.item_num))
        else:
            raise AttributeError("the training interactions")
        return matrix.tocsr() if form == "csr" else matrix


def build(model_class: type, config: ServingConfig, dataset: StandInDataset) -> nn.Module:
    """``model_class(config, dataset)``; what the stand-in cannot answer is one line."""
    try:
        return model_class(config, dataset)
    except (AttributeError, KeyError, TypeError, NotImplementedError) as err:
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise UserError(
            f"{dataset.model} cannot be rebuilt without its dataset ({type(err).__name__}: {first}); "
            "load it with recbole_compress.load_model(run folder) and the dataset instead"
        ) from None


def table_parts(artifact: dict, name: str) -> dict[str, Tensor]:
    prefix = f"{name}::"
    return {k[len(prefix):]: v for k, v in artifact["tensors"].items() if k.startswith(prefix)}


def plain_state(artifact: dict) -> dict[str, Tensor]:
    """Every tensor outside the compressed tables under its plain state-dict key: bool
    buffers unpacked, tensors a ticket masked (``prune_target: all``) decoded dense."""
    tensors = artifact["tensors"]
    state = {k: v for k, v in tensors.items() if "::" not in k}
    for key in artifact.get("packed_bool", []):
        shape = torch.Size(tensors[f"{key}::shape"].tolist())
        state[key] = unpack_bits(tensors[f"{key}::bits"], shape.numel()).view(shape)
    for name in artifact.get("masked", []):
        parts = table_parts(artifact, name)
        dense, _ = decode_masked(parts)
        state[name] = dense.reshape(torch.Size(parts["full_shape"].tolist()))
    return state


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def compact_model(base_class: type, tables: dict[str, str], config: ServingConfig, block: dict, seen, artifact: dict) -> nn.Module:
    """The RecBole ``base_class`` with its ID ``tables`` (attribute -> ``user``/``item``) in
    serving form and every other tensor assigned from the artifact."""
    dataset = StandInDataset(config, block, seen, placeholder_tables=True)
    torch.manual_seed(0)  # the build initialises tensors the artifact then replaces
    model = build(base_class, config, dataset)
    state = plain_state(artifact)
    served = {name: EMBEDDING_CLASSES[kind].serving_form(table_parts(artifact, name)) for name, kind in artifact["modules"].items()}
    rows = {"user": dataset.user_num, "item": dataset.item_num}
    for name, field in tables.items():
        if name not in served:  # a dense ID table: held as stored
            weight = state.pop(f"{name}.weight", None)
            if weight is None:
                raise UserError(f"the artifact has no '{name}' table for {dataset.model}; export the model again")
            served[name] = RowTable(DenseMatrix(weight), model.get_submodule(name).padding_idx)
        if served[name].num_embeddings != rows[field]:
            raise UserError(
                f"the artifact's '{name}' has {served[name].num_embeddings} rows but its serving data counts "
                f"{rows[field]} {field}s; the artifact is damaged"
            )
    for name, table in served.items():
        _set_submodule(model, name, table)
    model.n_users, model.n_items = dataset.user_num, dataset.item_num
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        raise UserError(
            f"the artifact does not fit {dataset.model} as its settings build it: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}, other shapes {wrong[:3]}; the artifact is damaged or of another model"
        )
    model.load_state_dict(state, assign=True)
    return model.eval()


def module_tensors(model: nn.Module) -> list[Tensor]:
    """Every tensor a module holds: parameters, buffers and tensors cached as attributes
    (mask multipliers, score caches), so a measured size misses nothing."""
    found = [*model.parameters(), *model.buffers()]
    for module in model.modules():
        for value in vars(module).values():
            found += _tensors_in(value)
    return found


def _tensors_in(value) -> list[Tensor]:
    if isinstance(value, Tensor):
        return [value] if not value.is_sparse else [value._indices(), value._values()]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors_in(v)]
    if isinstance(value, dict) and not isinstance(value, nn.Module):
        return [t for v in value.values() for t in _tensors_in(v)]
    return []

