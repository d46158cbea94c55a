#!/usr/bin/env bash
# Idempotent set-up: installs every Debian package prefopt needs to build,
# test and run. Safe to run again; does nothing when all are present.
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build pkg-config git
  libtorch-dev libopenblas0-pthread libopenblas-dev
  nlohmann-json3-dev libtomlplusplus-dev libcli11-dev libfmt-dev libpcre2-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  bubblewrap libseccomp-dev python3
  pybind11-dev libutf8proc-dev
  clang libfuzzer-15-dev
  python3-jinja2 python3-torch chromium
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "prefopt set-up: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >&2
fi

# llama.cpp for the GGUF interop test (ctest -L interop): node-llama-cpp 3.21.1 and its
# prebuilt CPU binary, installed into BUILD_DIR/interop_node (default build/). Skipped
# quietly when it is there already, when npm is missing or when there is no network;
# the test then tries once itself and otherwise skips with a message.
NODE_DIR="${PREFOPT_NODE_DIR:-$(cd "$(dirname "$0")/.." && pwd)/${BUILD_DIR:-build}/interop_node}"
if command -v npm >/dev/null 2>&1 && [ ! -f "$NODE_DIR/node_modules/@node-llama-cpp/linux-x64/package.json" ]; then
  mkdir -p "$NODE_DIR"
  [ -f "$NODE_DIR/package.json" ] || echo '{"name":"prefopt-interop","private":true}' > "$NODE_DIR/package.json"
  echo "prefopt set-up: installing node-llama-cpp@3.21.1 into $NODE_DIR" >&2
  (cd "$NODE_DIR" && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true timeout 900 npm install --no-save --no-audit --no-fund \
     --omit=optional --fetch-retries=4 node-llama-cpp@3.21.1 @node-llama-cpp/linux-x64@3.21.1 >&2) ||
    echo "prefopt set-up: npm install failed (no network?); the interop test will be skipped" >&2
fi
