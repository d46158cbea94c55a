#!/bin/sh
# The gradients' all-reduce overlapped with backward (ddp_overlap) against
# after backward, DPO on stories260K (as bench/dist_dpo.sh: pre-tokenized
# rows of 32 + 32 + 32 tokens, global batch 16 = 2 ranks x 8), 2 ranks x 1
# thread started by `prefopt train --nproc_per_node 2`. Two bucket caps: the
# default 25 MiB (the 1 MB of gradients are one bucket, so there is nothing
# to overlap with) and 0.25 MiB (several buckets). Each configuration runs
# REPS times, interleaved. Prints per run the step time, the time in
# collectives and the exposed gradient all-reduce (finish(): after the last
# backward pass until every bucket is summed), both per step.
# Usage: bench/dist_overlap.sh [build-dir] [steps] [reps]
set -eu
B=${1:-build}
STEPS=${2:-16}
REPS=${3:-2}
D=$(mktemp -d /tmp/prefopt_dist_overlap.XXXXXX)
BENCH_DIR=$(dirname "$0")
. "$BENCH_DIR/dist_common.sh"
dist_bench_setup "$B" "$D"
ARGS="train --method dpo --model $D/model --data $D/data.jsonl --max_steps $STEPS --learning_rate 1e-4 --logging_steps 1000 --save_steps 0 --per_device_train_batch_size 8 --gradient_accumulation_steps 1 --threads 1"
r=0
while [ $r -lt "$REPS" ]; do
  for cap in 25 0.25; do
    for ov in false true; do
      env -u WORLD_SIZE -u RANK OMP_NUM_THREADS=1 "$B/prefopt" $ARGS --nproc_per_node 2 --ddp_overlap $ov \
        --ddp_bucket_cap_mb $cap --output_dir "$D/out" > "$D/log" 2>&1 || { cat "$D/log"; exit 1; }
      printf 'cap %s MiB, overlap %-5s: %s | %s\n' "$cap" "$ov" \
        "$(grep -o 'gradients in [0-9]* bucket(s)' "$D/log" | head -1)" \
        "$(grep -o 'train: 2 ranks;.*' "$D/log")"
    done
  done
  r=$((r + 1))
done
grep "train: done" "$D/log"
rm -rf "$D"
