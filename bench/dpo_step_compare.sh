#!/usr/bin/env bash
# One DPO step in four prefopt settings and the PyTorch peer, each in its own
# process (so peak RSS is per setting), on the shapes of `prefopt bench
# dpo-step` (34M Llama, 8 pairs, 256-token prompts, 32-96-token completions,
# reference included). Prints each JSON line, then a table with ratios
# against setting 1 (today: full fp32, eager attention) and against the peer.
#   bench/dpo_step_compare.sh [BUILD_DIR] [STEPS]
# The same BLAS set-up for everyone: OPENBLAS_CORETYPE (SkylakeX on AVX-512
# machines unless set), OPENBLAS_NUM_THREADS = the cores, 1 ATen thread.
# The numbers are only as quiet as the machine: run it when nothing else does.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
STEPS=${2:-3}
EXE="$BUILD/prefopt"
[ -x "$EXE" ] || { echo "dpo_step_compare.sh: $EXE missing; build first" >&2; exit 2; }
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -q avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX; fi
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-$(nproc)}
OUT=$(mktemp -d /tmp/prefopt_dpo_step_compare.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
run() {  # name, command...
  local name=$1; shift
  echo "== $name: $*" >&2
  "$@" > "$OUT/$name.json"
  cat "$OUT/$name.json"
}
run 1_fp32_eager "$EXE" --quiet bench dpo-step --attention eager --steps "$STEPS"
run 2_chunked_attention "$EXE" --quiet bench dpo-step --attention chunked --steps "$STEPS"
run 3_plus_checkpointing "$EXE" --quiet bench dpo-step --attention chunked --gradient_checkpointing true --steps "$STEPS"
run 4_plus_lora_r16 "$EXE" --quiet bench dpo-step --attention chunked --gradient_checkpointing true --use_peft true --steps "$STEPS"
LENGTHS=$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["completion_lengths"]))' "$OUT/1_fp32_eager.json")
run 5_pytorch_peer /usr/bin/python3 bench/peers/dpo_step_torch.py --steps "$STEPS" --lengths "$LENGTHS"
python3 - "$OUT" <<'PY'
import json, os, sys
d = sys.argv[1]
rows = [(n[:-5], json.load(open(os.path.join(d, n)))) for n in sorted(os.listdir(d))]
base = rows[0][1]
peer = rows[-1][1]
print()
print("| setting | tokens/s | peak RSS MB | RSS vs 1 | RSS vs peer | tokens/s vs 1 | tokens/s vs peer |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name, r in rows:
    print("| %s | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f |" % (
        name, r["tokens_per_second"], r["peak_rss_mb"], r["peak_rss_mb"] / base["peak_rss_mb"],
        r["peak_rss_mb"] / peer["peak_rss_mb"], r["tokens_per_second"] / base["tokens_per_second"],
        r["tokens_per_second"] / peer["tokens_per_second"]))
PY
