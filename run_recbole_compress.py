"""Entry point: ``uv run run_recbole_compress.py --model=LightGCN_LTH --dataset=ml-100k``."""

import sys

from recbole_compress.cli import main

if __name__ == "__main__":
    sys.exit(main())
