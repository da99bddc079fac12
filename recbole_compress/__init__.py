"""recbole-compress: compressed embedding tables for RecBole 1.2.1.

Importing the package installs the RecBole compatibility patches
(:mod:`recbole_compress.compat`) and registers the project's models. It never
imports ray: Ray Tune is loaded only by the search entry point.
"""

from recbole_compress import compat as _compat

_compat.apply()

from recbole_compress.errors import UserError  # noqa: E402
from recbole_compress.registry import get_model, get_trainer  # noqa: E402
from recbole_compress.config import Config  # noqa: E402
from recbole_compress.quick_start import run_recbole_compress  # noqa: E402

__version__ = "0.1.0"
__all__ = ["Config", "UserError", "get_model", "get_trainer", "run_recbole_compress", "__version__"]
