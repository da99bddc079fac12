#!/usr/bin/env bash
# GPU readiness on a machine with a CUDA GPU, in one short run:
#   1. tests/test_gpu.py (train, export, serve and PQTopK on cuda) and tests/test_device.py;
#   2. one short Yelp2018 LightGCN_LTH round (dense round + one pruning round) on the GPU,
#      printing the epoch times of each round.
#
#   bash benchmarks/gpu_check.sh [RAW_YELP2018_DIR]
#
# RAW_YELP2018_DIR holds the LightGCN-format Yelp2018 files (train.txt, test.txt); it is
# converted once into dataset/yelp2018 (`recbole-compress convert lightgcn RAW dataset/yelp2018`).
# Default: ../shared/datasets/yelp2018 when that folder exists. EPOCHS (default 3) caps each round.
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=${EPOCHS:-3}
OUT=benchmarks/out/gpu-check
uv run python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || {
  echo "error: torch sees no CUDA device; run this on a machine with a GPU (nvidia-smi must list it)" >&2; exit 2; }
uv run python -c "import torch; print('device:', torch.cuda.get_device_name(0), '| torch', torch.__version__)"

echo "== 1. GPU test module"
uv run pytest -q -p no:cacheprovider tests/test_gpu.py tests/test_device.py

echo "== 2. Yelp2018 LightGCN_LTH, one pruning round, <= $EPOCHS epochs per round"
if [ ! -f dataset/yelp2018/yelp2018.train.inter ]; then
  RAW=${1:-../shared/datasets/yelp2018}
  [ -f "$RAW/train.txt" ] || {
    echo "error: no dataset/yelp2018 and no raw Yelp2018 at $RAW; pass the folder with train.txt and test.txt" >&2; exit 2; }
  uv run recbole-compress convert lightgcn "$RAW" dataset/yelp2018
fi
mkdir -p "$OUT"
uv run recbole-compress run --model=LightGCN_LTH --dataset=yelp2018 --data_path=dataset \
  --use_gpu=True --gpu_id=0 --prune_rounds=1 --prune_rate=0.5 --epochs="$EPOCHS" --eval_step="$EPOCHS" \
  --stopping_step=10 --show_progress=False --state=WARNING --output_dir="$OUT/yelp2018-LightGCN_LTH"
uv run python - "$OUT/yelp2018-LightGCN_LTH/summary.json" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))
print(f"device {summary['device']}; mean epoch {summary['epoch_time_s']} s over {summary['epochs']} epochs")
print("| round | remaining | epochs | epoch time (s) | valid recall@20 |")
print("|---|---|---|---|---|")
for row in summary["lth"]["rounds_table"]:
    print(f"| {row['round']} | {row['remaining']:.2f} | {row['epochs']} | {row['epoch_time_s']} | {row.get('valid_recall@20', '')} |")
PY
