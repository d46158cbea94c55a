#!/usr/bin/env bash
# Runs every fuzz target under libFuzzer with AddressSanitizer and UBSan.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      (default: 60 s each, all targets)
#
# Configures build-fuzz (clang, -DPREFOPT_FUZZ_ENGINE=libfuzzer,
# -DPREFOPT_SANITIZE=address,undefined,fuzzer-no-link), builds the fuzz targets
# only, gives each a working corpus build-fuzz/corpus/<target> (the committed
# seeds of fuzz/corpus/<target> plus the first 16 KiB of each shared-data seed
# the CMake target lists), runs it for SECONDS and prints executions and
# crashes per target. Crash inputs: build-fuzz/artifacts/<target>-crash-*;
# logs: build-fuzz/logs/<target>.log. Reproduce: build-fuzz/fuzz/fuzz_<target> FILE.
# Environment: CC / CXX (default clang-15 / clang++-15), JOBS (default 2),
# FUZZ_BUILD (default build-fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
all=(safetensors model_config tokenizer_json gguf jsonl toml math jinja)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")
build=${FUZZ_BUILD:-build-fuzz}
export CC=${CC:-clang-15} CXX=${CXX:-clang++-15}

mkdir -p "$build"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" -DPREFOPT_SANITIZE=address,undefined,fuzzer-no-link \
  -DPREFOPT_FUZZ_ENGINE=libfuzzer -DPREFOPT_BUILD_BENCH=OFF >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log"; exit 1; }
ninja -C "$build" -j"${JOBS:-2}" "${targets[@]/#/fuzz_}"

mkdir -p "$build/logs" "$build/artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
printf '%-16s %12s %10s %8s\n' target executions exec/s crashes
status=0
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  mkdir -p "$corpus"
  while IFS= read -r s; do
    [ -n "$s" ] || continue
    if [ -d "$s" ]; then
      for f in "$s"/*; do [ -f "$f" ] && head -c 16384 "$f" >"$corpus/seed-$(basename "$f")"; done
    elif [ -f "$s" ]; then
      head -c 16384 "$s" >"$corpus/seed-$(basename "$s")"
    fi
  done <"$build/fuzz/seeds-$t.txt"
  log="$build/logs/$t.log"
  rc=0
  "$build/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2560 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$t-" "$corpus" >"$log" 2>&1 || rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  if [ -z "$execs" ]; then  # stopped by a crash: the last status line has the count
    execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#' || true)
  fi
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  crashes=$(grep -cE '^==[0-9]+==ERROR|^SUMMARY: (Address|UndefinedBehavior|libFuzzer)|deadly signal|runtime error:' "$log" || true)
  [ "$rc" -ne 0 ] && status=1 && [ "$crashes" -eq 0 ] && crashes=1
  printf '%-16s %12s %10s %8s\n' "$t" "${execs:-?}" "${rate:-?}" "$crashes"
done
exit $status
