#!/usr/bin/env bash
# The two README commands:
#   ./prefopt.sh demo [ARGS...]   set up, build, run the main job (prefopt demo)
#   ./prefopt.sh test             set up, build, run the whole test suite (ctest)
# Any other first argument runs that prefopt subcommand after set-up and build.
set -euo pipefail
cd "$(dirname "$0")"
BUILD=${PREFOPT_BUILD_DIR:-build}
bash scripts/setup.sh
jobs=$(nproc)
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
fi
cmake --build "$BUILD" -j "$jobs" >&2
cmd=${1:-demo}
shift || true
case "$cmd" in
  test) cd "$BUILD" && exec ctest --output-on-failure -j "$jobs" --timeout 1200 "$@" ;;
  *) exec "$BUILD/prefopt" "$cmd" "$@" ;;
esac
