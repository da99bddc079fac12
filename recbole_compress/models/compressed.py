"""Moved to :mod:`recbole_compress.registry` (the ``<Base>_<METHOD>`` class factory
lives with the registry that builds those classes); this name stays only while
compare.py imports ``tables_from_config`` from here."""

from recbole_compress.registry import compressed_model_class, method_chain, tables_from_config

__all__ = ["compressed_model_class", "method_chain", "tables_from_config"]
