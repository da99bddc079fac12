"""Moved to :mod:`recbole_compress.run` (kept while the trainers move over)."""

from recbole_compress.run import (  # noqa: F401
    atomic_torch_save,
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    config_fingerprint,
    run_dir,
    to_jsonable,
)

_atomic_write = atomic_write
