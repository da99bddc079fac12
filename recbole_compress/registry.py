"""Model and trainer lookup: recbole_compress first, then RecBole (the RecBole-GNN pattern).

Three kinds of names resolve:
- models registered here with :func:`register_model` (e.g. ``BPR_LTH``);
- ``<Base>_<METHOD>`` for any RecBole (or registered) base model and any
  registered compression method, built on demand by :func:`compressed_model_class`
  (e.g. ``SASRec_LTH``); methods compose: ``<Base>_<M1>_<M2>`` applies M2 to the
  tables M1 built (``LightGCN_QR_LTH``), and the outer method's trainer runs;
- any RecBole model name (``LightGCN``, ``SASRec``), unchanged.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from recbole.utils import get_model as recbole_get_model
from recbole.utils import get_trainer as recbole_get_trainer
from recbole.utils import ModelType

from recbole_compress import compat
from recbole_compress.embeddings.base import compress
from recbole_compress.errors import UserError

# every use of RecBole through this package goes through the registry: patch RecBole first
compat.apply()

_MODELS: dict[str, type] = {}
_METHODS: dict[str, "CompressionMethod"] = {}
_GENERATED: dict[str, type] = {}
# modules whose import registers models and methods
_MODEL_MODULES = ("recbole_compress.models",)


@dataclass(frozen=True)
class CompressionMethod:
    """How one method compresses a model: which embedding replaces a table, and
    which trainer mixin (if any) runs its training loop."""

    name: str
    make_embedding: Callable  # (dense nn.Embedding, config, table_name, dataset) -> CompressedEmbedding
    trainer_mixin: type | None = None
    prepare_model: Callable | None = None  # (model, config) -> None, after the tables are swapped
    check_config: Callable | None = None  # (config) -> None; raises UserError before any data is loaded
    composes: bool = False  # make_embedding also accepts a table another method compressed
    doc: str = ""
    # Budget planning (recbole_compress.budgets) asks each method, before any training,
    # about its tables at a setting of its own (a kept count, a memory_budget count, a
    # (code length, centroids) pair). ``tables``: records with .name, .rows ([PAD]
    # included), .dim; ``settings``: a PlanSettings. None: that setting cannot be built.
    untrained_tables: Callable | None = None  # (tables, setting, settings) -> [CompressedEmbedding] | None
    exported_table_bytes: Callable | None = None  # (tables, setting, settings) -> int | None (a bound if pruned)
    composed_table_bytes: Callable | None = None  # composing methods: (inner method's tables, setting, settings) -> int

class PlanSettings(dict):
    """Config-like settings for the planning hooks: a key that is not set reads as
    None (as in RecBole's Config)."""

    def __missing__(self, key):
        return None


def register_model(cls: type) -> type:
    """Class decorator: make ``cls`` resolvable by its ``__name__``."""
    _MODELS[cls.__name__] = cls
    return cls


def register_method(method: CompressionMethod) -> CompressionMethod:
    _METHODS[method.name] = method
    return method


# -- <Base>_<METHOD> classes -----------------------------------------------------------------------

def tables_from_config(config) -> list[str] | None:
    """``compress_tables``: names of the tables to compress; default (None) = the
    model's user/item ID tables."""
    tables = config["compress_tables"]
    if tables in (None, "auto", []):
        return None
    return [tables] if isinstance(tables, str) else list(tables)


def method_chain(model_class) -> tuple:
    """The compression methods of ``model_class``, innermost first (empty for a plain model)."""
    return tuple(getattr(model_class, "compression_chain", ()))


def compressed_model_class(base: type, method: CompressionMethod) -> type:
    """Subclass of ``base`` whose ``__init__`` swaps its ID tables for ``method``'s
    compressed embedding. Everything else is ``base``'s own code."""

    def __init__(self, config, dataset):
        base.__init__(self, config, dataset)
        compress(
            self,
            lambda dense, name: method.make_embedding(dense, config, name, dataset),
            tables_from_config(config),
            composes=method.name if method.composes else None,
        )
        if method.prepare_model is not None:
            method.prepare_model(self, config)

    name = f"{base.__name__}_{method.name}"
    # the RecBole model underneath every method (its settings and trainer apply)
    root = getattr(base, "base_model_name", base.__name__)
    return type(
        name,
        (base,),
        {
            "__init__": __init__,
            "__module__": __name__,
            "__doc__": f"RecBole's {root} with its ID tables compressed by {method.name}. {method.doc}",
            "base_model_name": root,
            "compression_method": method,
            "compression_chain": method_chain(base) + (method,),
        },
    )


# -- lookup ------------------------------------------------------------------------------------------

def _load_registry() -> None:
    for module in _MODEL_MODULES:
        importlib.import_module(module)


def compression_methods() -> dict[str, CompressionMethod]:
    _load_registry()
    return dict(_METHODS)


def registered_models() -> list[str]:
    _load_registry()
    return sorted(_MODELS)


def _recbole_model(name: str) -> type | None:
    try:
        return recbole_get_model(name)
    except (ValueError, AttributeError, ImportError):
        return None


def _generated_model(name: str) -> type | None:
    """``<Base>_<METHOD>``: the base model with its ID tables compressed by METHOD."""
    base_name, sep, method_name = name.rpartition("_")
    if not sep or method_name not in _METHODS:
        return None
    # the base may itself be generated: <Base>_<M1>_<M2> composes M2 on top of M1
    base = _MODELS.get(base_name) or _recbole_model(base_name) or _generated_model(base_name)
    if base is None:
        return None
    if name not in _GENERATED:
        _GENERATED[name] = compressed_model_class(base, _METHODS[method_name])
    return _GENERATED[name]


def get_model(model_name: str) -> type:
    """Return the model class for ``model_name``: ours, generated, then RecBole's."""
    _load_registry()
    model = _MODELS.get(model_name) or _generated_model(model_name) or _recbole_model(model_name)
    if model is None:
        methods = ", ".join(sorted(_METHODS)) or "none"
        raise UserError(
            f"unknown model '{model_name}': not a recbole_compress model ({', '.join(sorted(_MODELS))}), "
            f"not a RecBole model, and not <RecBoleModel>_<METHOD>[_<METHOD>] with METHOD in [{methods}]; "
            "check the spelling (names are case-sensitive, e.g. LightGCN_LTH)"
        )
    return model


def get_trainer(model_type, model_name: str) -> type:
    """Trainer for ``model_name``: the model's own ``trainer_class`` if it names one, else
    RecBole's trainer with this project's (epoch times, weights-only checkpoints) and the
    method's trainer mixin on top."""
    from recbole_compress.trainers.base import ProjectTrainerMixin

    model = get_model(model_name)
    own = getattr(model, "trainer_class", None)
    if own is not None:
        return own
    method = getattr(model, "compression_method", None)
    base_name = getattr(model, "base_model_name", model_name)
    base_trainer = recbole_get_trainer(model_type, base_name)
    # every sequential trainer can train at all positions (a no-op unless train_mode: all_positions)
    if model_type == ModelType.SEQUENTIAL:
        from recbole_compress.seqtrain.trainer import AllPositionsTrainerMixin

        base_trainer = _mixed_trainer(AllPositionsTrainerMixin, base_trainer)
    trainer = _mixed_trainer(ProjectTrainerMixin, base_trainer)
    if method is not None and method.trainer_mixin is not None:
        trainer = _mixed_trainer(method.trainer_mixin, trainer)
    return trainer


_MIXED: dict[tuple[type, type], type] = {}


def _mixed_trainer(mixin: type, base: type) -> type:
    """``base`` with ``mixin``'s overrides on top (cached, so the class is stable)."""
    key = (mixin, base)
    if key not in _MIXED:
        name = mixin.__name__.removesuffix("Mixin").removesuffix("Trainer") + base.__name__
        _MIXED[key] = type(name, (mixin, base), {"__module__": mixin.__module__})
    return _MIXED[key]
