"""recbole_compress models. Importing this package registers every model and
compression method with :mod:`recbole_compress.registry`."""

from recbole_compress.models.lth import BPR_LTH, LTH, LightGCN_LTH

__all__ = ["BPR_LTH", "LightGCN_LTH", "LTH"]
