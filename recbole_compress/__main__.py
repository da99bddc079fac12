"""``python -m recbole_compress``: the ``recbole-compress`` command."""

import sys

from recbole_compress.cli import main

sys.exit(main())
