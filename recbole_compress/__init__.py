"""recbole-compress: compressed embedding tables for RecBole 1.2.1.

``import recbole_compress`` is light (the command line answers ``--help`` at once); the
API below loads on first use. Anything that touches RecBole through this package
(the registry, Config, a run) installs the compatibility patches first
(:mod:`recbole_compress.compat`). Ray is imported only by searches and comparisons on Ray.
"""

from __future__ import annotations

import importlib

__version__ = "0.2.0"

# public name -> module that defines it (imported on first access)
_API = {
    "Config": "recbole_compress.config",
    "UserError": "recbole_compress.errors",
    "get_model": "recbole_compress.registry",
    "get_trainer": "recbole_compress.registry",
    "run_recbole_compress": "recbole_compress.quick_start",
    "load_model": "recbole_compress.quick_start",
    "load": "recbole_compress.serve",
}
__all__ = [*_API, "__version__"]


def __getattr__(name: str):
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'recbole_compress' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_API))
