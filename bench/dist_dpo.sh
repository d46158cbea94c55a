#!/bin/sh
# DPO step throughput on this machine: 2 ranks x 1 thread (torchrun, Gloo on
# loopback) against 1 rank x 2 threads, the same global batch (16 rows: 2 x 8
# against 8 x 2 accumulation), on stories260K (a real 260K-parameter Llama,
# ../shared/data/models/llama2c) with pre-tokenized rows (32-token prompts,
# 32-token completions). Also 1 rank with 2 OpenBLAS threads and 1 ATen
# thread, and 1 rank x 1 thread. Prints each run's steps/s and, for 2 ranks,
# the time in collectives per step. Usage: bench/dist_dpo.sh [build-dir] [steps]
set -eu
B=${1:-build}
STEPS=${2:-8}
D=$(mktemp -d /tmp/prefopt_dist_bench.XXXXXX)
BENCH_DIR=$(dirname "$0")
. "$BENCH_DIR/dist_common.sh"
dist_bench_setup "$B" "$D"
ARGS="train --method dpo --model $D/model --data $D/data.jsonl --max_steps $STEPS --learning_rate 1e-4 --logging_steps 1000 --save_steps 0 --per_device_train_batch_size 8"
run() {  # label, then the command; prints steps/s from the wall time of the whole run
  label=$1
  shift
  t0=$(date +%s.%N)
  "$@" > "$D/log" 2>&1 || { cat "$D/log"; exit 1; }
  t1=$(date +%s.%N)
  echo "$label: $(echo "$STEPS / ($t1 - $t0)" | bc -l | cut -c1-6) steps/s (wall, including start-up)"
}
run "1 rank x 2 threads" env -u WORLD_SIZE OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 \
  "$B/prefopt" $ARGS --gradient_accumulation_steps 2 --threads 2 --output_dir "$D/one"
grep "train: done" "$D/log"
run "1 rank x 2 OpenBLAS threads, 1 ATen thread (prefopt's default)" env -u WORLD_SIZE OMP_NUM_THREADS=2 \
  OPENBLAS_NUM_THREADS=2 "$B/prefopt" $ARGS --gradient_accumulation_steps 2 --output_dir "$D/one_blas2"
grep "train: done" "$D/log"
run "1 rank x 1 thread" env -u WORLD_SIZE OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
  "$B/prefopt" $ARGS --gradient_accumulation_steps 2 --threads 1 --output_dir "$D/one_1"
grep "train: done" "$D/log"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
run "2 ranks x 1 thread" env OMP_NUM_THREADS=1 torchrun --no_python --nnodes 1 --nproc_per_node 2 \
  --rdzv_backend c10d --rdzv_endpoint 127.0.0.1:$PORT --redirects 2 --tee 1 --log_dir "$D/tl" \
  "$B/prefopt" $ARGS --gradient_accumulation_steps 1 --threads 1 --output_dir "$D/two"
cat "$D"/tl/*/attempt_0/0/stderr.log | grep -E "train: done|ranks;"
rm -rf "$D"
