#!/usr/bin/env bash
# A two-node Ray cluster on one machine; a comparison spread over both nodes, started from
# another directory; the head node killed mid-run; the same command resumed on a new cluster.
#
#   bash benchmarks/ray_cluster_demo.sh            (docs/ray.md shows a run and its output)
#
# The nodes are started from this project's environment (`uv run --project`), so their
# workers import recbole_compress; each node has its own CPU count (--num-cpus). Only the
# processes this script started are stopped, by their ids (never `ray stop`, which stops
# every Ray on the machine). Environment: PORT (6391), OUT (runs/ray-demo), KILL_AFTER
# (finished cells before the head is killed, 3), EXTRA (config keys of every cell).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PORT=${PORT:-6391}
ADDR=127.0.0.1:$PORT
OUT=${OUT:-$ROOT/runs/ray-demo}
KILL_AFTER=${KILL_AFTER:-3}
TMPDIR_RAY=${TMPDIR_RAY:-/tmp/rbc-ray-$PORT}
EXTRA=${EXTRA:---epochs=8 --stopping_step=3 --threshold_epochs=3 --threshold_pace=0.1}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
# Ray 2.60 starts a head with token authentication when ~/.ray/auth_token exists, but a node
# joining it does not: one setting for every node (and driver) of the cluster
if [ -f ~/.ray/auth_token ] || [ -n "${RAY_AUTH_TOKEN:-}" ]; then export RAY_AUTH_MODE=${RAY_AUTH_MODE:-token}; fi
RAY=(uv run --project "$ROOT" --frozen ray)
mkdir -p "$OUT"
ELSEWHERE=$(mktemp -d)  # the driver runs outside the project directory
COMPARE=(uv run --project "$ROOT" --frozen recbole-compress compare --dataset=ml-100k --backbone=LightGCN
         --budgets=0.2,0.05 --methods=LTH,CERP,QR --out="$OUT/cmp" --ray-address="$ADDR" --cpu=1 $EXTRA)

ray_pids() { ps -eo pid=,args= | awk -v d="$TMPDIR_RAY" -v p=":$PORT" 'index($0, d) || index($0, p) {print $1}' | grep -v "^$$\$" || true; }
children() { for p in "$@"; do ps -o pid= --ppid "$p" || true; done; }

start_cluster() {  # head: 1 CPU; second node: 1 CPU (its own raylet, object store and workers)
  local before
  trap 'stop_pids $(ray_pids)' EXIT  # a failed start leaves nothing running
  "${RAY[@]}" start --head --port="$PORT" --num-cpus=1 --temp-dir="$TMPDIR_RAY" --include-dashboard=false \
    --disable-usage-stats > "$OUT/head.log" 2>&1
  HEAD_PIDS=$(ray_pids)
  before=$(ray_pids)
  "${RAY[@]}" start --address="$ADDR" --num-cpus=1 --disable-usage-stats > "$OUT/node2.log" 2>&1
  NODE2_PIDS=$(comm -13 <(echo "$before" | sort) <(ray_pids | sort))
  echo "head node pids: $(echo $HEAD_PIDS); second node pids: $(echo $NODE2_PIDS)"
  "${RAY[@]}" status --address="$ADDR" 2>/dev/null | sed -n '/Active:/,/Pending:/p'
}

stop_pids() {  # SIGKILL: a crash, not a shutdown
  local all="$* $(children "$@")"
  kill -9 $all 2>/dev/null || true
}

cells_done() { ls "$OUT"/cmp/cells/*/cell.json 2>/dev/null | wc -l; }

echo "== 1. cluster"
start_cluster
echo "== 2. comparison from $ELSEWHERE (background); the head is killed after $KILL_AFTER finished cells"
started=$(date +%s)
(cd "$ELSEWHERE" && "${COMPARE[@]}") > "$OUT/run1.log" 2>&1 &
DRIVER=$!
until [ "$(cells_done)" -ge "$KILL_AFTER" ] || ! kill -0 "$DRIVER" 2>/dev/null; do sleep 5; done
echo "finished cells before the kill: $(cells_done) after $(( $(date +%s) - started )) s"
grep "^\[compare\]" "$OUT/run1.log" || true
echo "== 3. kill -9 the head node (GCS, raylet, agents)"
stop_pids $HEAD_PIDS
for _ in $(seq 1 24); do kill -0 "$DRIVER" 2>/dev/null || break; sleep 5; done
if kill -0 "$DRIVER" 2>/dev/null; then echo "driver still waiting after 120 s: stopped"; kill "$DRIVER"; fi
wait "$DRIVER" 2>/dev/null && echo "driver exit 0" || echo "driver exit $? (head lost)"
tail -n 3 "$OUT/run1.log"
stop_pids $NODE2_PIDS $(ray_pids)  # the second node cannot rejoin a new head
echo "== 4. new cluster, same command: finished cells are kept, the rest run"
start_cluster
resumed=$(date +%s)
(cd "$ELSEWHERE" && "${COMPARE[@]}") > "$OUT/run2.log" 2>&1
echo "resumed run: $(( $(date +%s) - resumed )) s"
grep "^\[compare\]" "$OUT/run2.log"
echo "== 5. where each cell ran (cells.csv)"
cut -d, -f1-7 "$OUT/cmp/cells.csv"
cat "$OUT/cmp/compare.md"
stop_pids $(ray_pids)
rm -rf "$ELSEWHERE"
