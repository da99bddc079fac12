"""Entry point of the design card: ``python run_recbole_compress.py --model=LightGCN_LTH --dataset=ml-100k``
is ``recbole-compress run ...`` (``--tune=FILE`` and ``--list-models`` still work)."""

import sys

from recbole_compress.cli import legacy_main

if __name__ == "__main__":
    sys.exit(legacy_main())
