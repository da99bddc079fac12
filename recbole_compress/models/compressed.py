"""``<Base>_<METHOD>``: any RecBole model with its ID tables compressed by a method."""

from __future__ import annotations

from recbole_compress.embeddings.base import compress


def tables_from_config(config) -> list[str] | None:
    """``compress_tables``: names of the tables to compress; default (None) = the
    model's user/item ID tables."""
    tables = config["compress_tables"]
    if tables in (None, "auto", []):
        return None
    return [tables] if isinstance(tables, str) else list(tables)


def compressed_model_class(base: type, method) -> type:
    """Subclass of ``base`` whose ``__init__`` swaps its ID tables for ``method``'s
    compressed embedding. Everything else is ``base``'s own code."""

    def __init__(self, config, dataset):
        base.__init__(self, config, dataset)
        compress(self, lambda dense, name: method.make_embedding(dense, config, name, dataset), tables_from_config(config))
        if method.prepare_model is not None:
            method.prepare_model(self, config)

    name = f"{base.__name__}_{method.name}"
    return type(
        name,
        (base,),
        {
            "__init__": __init__,
            "__module__": __name__,
            "__doc__": f"RecBole's {base.__name__} with its ID tables compressed by {method.name}. {method.doc}",
            "base_model_name": base.__name__,
            "compression_method": method,
        },
    )
