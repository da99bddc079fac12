"""``<Base>_<METHOD>``: any RecBole model with its ID tables compressed by a method.

Methods compose: ``<Base>_<M1>_<M2>`` applies M2 to the tables M1 built (e.g.
``LightGCN_QR_LTH``: lottery-ticket pruning of the quotient-remainder tables).
The outer method's trainer runs the training loop.
"""

from __future__ import annotations

from recbole_compress.embeddings.base import compress


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


def compressed_model_class(base: type, method) -> type:
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
