#!/usr/bin/env bash
# The two README commands:
#   ./prefopt.sh demo [ARGS...]   set up, build, run the main job (prefopt demo)
#   ./prefopt.sh test [ARGS...]   set up, build, run the whole test suite (ctest)
# Any other first argument runs that prefopt subcommand after set-up and build.
# PREFOPT_BUILD_DIR picks the build directory (default: build). The program is
# $PREFOPT_BUILD_DIR/prefopt: the prefopt target's RUNTIME_OUTPUT_DIRECTORY
# (src/cli/CMakeLists.txt) says so, and the tests take the same path from CMake.
set -euo pipefail
cd "$(dirname "$0")"
BUILD=${PREFOPT_BUILD_DIR:-build}
bash scripts/setup.sh
jobs=$(nproc)
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
fi
cmake --build "$BUILD" -j "$jobs" >&2
cmd=${1:-demo}
shift || true
case "$cmd" in
  test) cd "$BUILD" && exec ctest --output-on-failure -j "$jobs" --timeout 1200 "$@" ;;
  *)
    exe="$BUILD/prefopt"
    if [ ! -x "$exe" ]; then
      echo "prefopt.sh: error: the build finished but $exe is missing" >&2
      echo "  HINT: remove $BUILD and run ./prefopt.sh again" >&2
      exit 3
    fi
    exec "$exe" "$cmd" "$@" ;;
esac
