#!/usr/bin/env bash
# The GPU recipe, on an offline Linux x86-64 machine with an NVIDIA GPU, CUDA's
# compiler, CMake and Python (no package index). Run from the repository, with
# the bundle made by tools/gpu/prepare.sh in tools/gpu/bundle/.
#
#   bash tools/gpu/run.sh [STEP...]        (default: all)
#
# Steps, each under its own time limit, logged to .gpu/logs/STEP.log:
#   build    venv .gpu/venv with the bundle's wheels; llama-cpp-python built with
#            CUDA for one architecture (sm_90) from the trimmed sdist (~4-6 min)
#   install  that wheel and this package (built against it) into the venv;
#            checks that llama_cpp offloads to the GPU (~1 min)
#   test     pytest on the GPU (all layers offloaded): batch invariance, parity
#            with llama.cpp, SpecBound exactness, for the models present
#   speed    tools/gpu/speed.py: llama-cpp-python vs our plain vs SpecBound
#   modes    tools/gpu/modes.py: invariance, exactness and batch cost per
#            device_columns setting (1, 4, 0 and 1 without ggml-cuda's fusion), on
#            the random test models in tools/gpu/xfer/random/ (tools/gpu/random_models.py)
#            and the registry models present
#   recv     move model parts carried in tools/gpu/xfer/ into the model cache
#            and assemble the files whose parts are all there
#   all      build install test speed
#   summary  print what every step did so far (also printed after each run)
# A failed step can be rerun alone; everything lives in .gpu/ (ignored by git),
# which stays between calls while the machine stays up. The build resumes
# where a timed-out one stopped.
#
# Environment:
#   SPECBOUND_GPU_BUNDLE     the prepared bundle (default: tools/gpu/bundle)
#   SPECBOUND_GPU_WORK       work folder (default: <repo>/.gpu)
#   SPECBOUND_GPU_PYTHON     interpreter for the venv (default: python3)
#   SPECBOUND_GPU_CUDA       1 (default): build with CUDA; 0: CPU only (checks the
#                            trimmed sources on a machine without CUDA)
#   SPECBOUND_GPU_ARCH       CMAKE_CUDA_ARCHITECTURES (default: 90, Hopper)
#   SPECBOUND_GPU_MODELS     a folder of registry GGUFs to use (linked into the cache)
#   SPECBOUND_CACHE          model cache (default: <work>/cache; models in its models/)
#   SPECBOUND_GPU_PYTEST_ARGS  extra pytest arguments for the test step (e.g. "-x")
#   SPECBOUND_GPU_TIMEOUT_BUILD / _INSTALL / _TEST / _SPEED   seconds per step
#                            (defaults 540 / 240 / 480 / 300)
#   SPECBOUND_GPU_CALL_BUDGET  seconds for this whole invocation (default 570, inside
#                            one 600 s device call): each step gets at most what is
#                            left, and a step with under 30 s left is skipped
#   OUT                      if set, the logs and results are copied there
set -euo pipefail

usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "${BASH_SOURCE[0]}"; }
die() { printf 'run.sh: error: %s\n' "$*" >&2; exit 1; }

SCRIPT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
ROOT="$(cd "$(dirname "$SCRIPT")/../.." && pwd)"
BUNDLE="${SPECBOUND_GPU_BUNDLE:-$ROOT/tools/gpu/bundle}"
WORK="${SPECBOUND_GPU_WORK:-$ROOT/.gpu}"
BASE_PYTHON="${SPECBOUND_GPU_PYTHON:-python3}"
CUDA="${SPECBOUND_GPU_CUDA:-1}"
ARCH="${SPECBOUND_GPU_ARCH:-90}"
export SPECBOUND_CACHE="${SPECBOUND_CACHE:-$WORK/cache}"
VENV="$WORK/venv"
PY="$VENV/bin/python"
LOGS="$WORK/logs"
STATUS="$WORK/status"
VERSION="$(sed -n 's/.*"llama-cpp-python==\([^"]*\)".*/\1/p' "$ROOT/pyproject.toml" | head -n 1)"
NAME="llama_cpp_python-$VERSION"
NCPU="$(nproc 2>/dev/null || echo 4)"
CALL_BUDGET="${SPECBOUND_GPU_CALL_BUDGET:-570}"
# Nothing may reach for a package index: pip fails at once instead of retrying
# a network that is not there (also the model fetcher's pip, in the tests).
export PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
export PYTHONUNBUFFERED=1
# llama.cpp's flags are set for its build alone; flags from the environment
# must not leak into it or into our own package's build.
unset CMAKE_ARGS

# pip for the venv: its own, or (a venv made without pip, where the Python
# has no ensurepip) the base interpreter's pip pointed at it with --python.
vpip() {
  if "$PY" -m pip --version >/dev/null 2>&1; then
    "$PY" -m pip "$@"
  else
    "$BASE_PYTHON" -m pip --python "$PY" "$@"
  fi
}
pip_offline() { vpip install --no-index --find-links "$BUNDLE/wheels" --find-links "$WORK/wheels" "$@"; }

# --------------------------------------------------------------------------
# The llama.cpp flags. CPU side as in tools/setup.sh (GGML_NATIVE=OFF, no AMX,
# each x86 extension on only when this CPU has it: tools/x86_flags.sh, shared
# with setup.sh); CUDA for one architecture
# only, which is what keeps the build within minutes; nothing but the
# libraries (no tools, examples, tests, server, mtmd, OpenSSL).
# shellcheck source=tools/x86_flags.sh disable=SC1091
source "$ROOT/tools/x86_flags.sh"
cmake_args() {
  local args
  args="$(x86_cmake_args)"
  if [[ "$CUDA" == 1 ]]; then
    args+=" -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=$ARCH"
  else
    args+=" -DGGML_CUDA=OFF"
  fi
  args+=" -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF"
  args+=" -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_OPENSSL=OFF"
  printf '%s\n' "$args"
}

# --------------------------------------------------------------------------
step_build() {
  echo "== preflight"
  [[ -f "$BUNDLE/$NAME.tar.gz" && -d "$BUNDLE/wheels" ]] \
    || die "no bundle at $BUNDLE (run tools/gpu/prepare.sh on a networked machine and carry tools/gpu/bundle)"
  command -v "$BASE_PYTHON" >/dev/null || die "'$BASE_PYTHON' not found (set SPECBOUND_GPU_PYTHON)"
  local pyver
  pyver="$("$BASE_PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
  echo "python: $(command -v "$BASE_PYTHON") ($pyver)"
  local cmake_ver
  cmake_ver="$(cmake --version 2>/dev/null | sed -n 's/^cmake version \([0-9]*\.[0-9]*\).*/\1/p')"
  [[ -n "$cmake_ver" ]] || die "cmake not found"
  "$BASE_PYTHON" -c "import sys; sys.exit(tuple(map(int, '$cmake_ver'.split('.'))) < (3, 21))" \
    || die "cmake $cmake_ver is too old: llama-cpp-python needs >= 3.21"
  echo "cmake: $cmake_ver, $(command -v ninja >/dev/null && echo ninja || echo 'no ninja (make)'), $NCPU cores"
  if [[ "$CUDA" == 1 ]]; then
    # CUDA's usual home, when its bin folder is not on PATH
    if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
      export PATH="/usr/local/cuda/bin:$PATH"
    fi
    command -v nvcc >/dev/null || die "nvcc not found on PATH (CUDA's bin folder, e.g. /usr/local/cuda/bin)"
    echo "nvcc: $(nvcc --version | tail -n 1)"
    nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader 2>/dev/null \
      | sed 's/^/gpu: /' || echo "gpu: nvidia-smi gave nothing"
  fi

  echo "== venv $VENV"
  if [[ ! -x "$PY" ]]; then
    if ! "$BASE_PYTHON" -m venv "$VENV"; then
      echo "venv with pip failed (no ensurepip?); making one without pip"
      rm -rf "$VENV"
      "$BASE_PYTHON" -m venv --without-pip "$VENV"
      "$BASE_PYTHON" -m pip --version >/dev/null || die "'$BASE_PYTHON' has neither ensurepip nor pip"
    fi
    # Reuse what the machine's Python already has (numpy, pytest, ... in its
    # own site-packages, even when that Python is itself a venv): a .pth line
    # puts those folders after the venv's own on sys.path, so pip counts them
    # as installed and takes from the bundle only what is missing.
    "$BASE_PYTHON" -c 'import site, sysconfig
paths = site.getsitepackages() + [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
print("\n".join(dict.fromkeys(paths)))' > "$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/_specbound_gpu_base.pth"
  fi
  # Binary wheels must match this Python. numpy is the one that cannot be done
  # without: fail clearly if neither the machine nor the bundle has it.
  local tag="cp${pyver/./}"
  if ! compgen -G "$BUNDLE/wheels/*-$tag-*.whl" >/dev/null; then
    echo "warning: the bundle has no binary wheels for $tag; only what this Python already has can fill the gaps"
  fi
  if ! "$PY" -c 'import numpy' 2>/dev/null && ! compgen -G "$BUNDLE/wheels/numpy-*-$tag-*.whl" >/dev/null; then
    die "Python $pyver has no numpy and the bundle has no numpy wheel for $tag; re-run prepare.sh with SPECBOUND_GPU_PYTHONS=\"$pyver\""
  fi
  echo "== requirements (tools/gpu/requirements.txt) from the bundle"
  pip_offline -r "$ROOT/tools/gpu/requirements.txt"

  echo "== llama-cpp-python $VERSION wheel"
  # Unpacked once into a fixed place, with a fixed CMake build folder: a build
  # that ran out of time resumes instead of starting again.
  if [[ ! -f "$WORK/src/$NAME/CMakeLists.txt" ]]; then
    rm -rf "$WORK/src"
    mkdir -p "$WORK/src"
    tar -xzf "$BUNDLE/$NAME.tar.gz" -C "$WORK/src"
  fi
  local args
  args="$(cmake_args)"
  echo "CMAKE_ARGS: $args"
  # a build folder configured with other flags starts over
  if [[ "$(cat "$WORK/build/llama.flags" 2>/dev/null)" != "$args" ]]; then
    rm -rf "$WORK/build/llama"
    mkdir -p "$WORK/build"
    printf '%s\n' "$args" > "$WORK/build/llama.flags"
  fi
  rm -rf "$WORK/wheels"
  mkdir -p "$WORK/wheels"
  local t0=$SECONDS
  CMAKE_ARGS="$args" CMAKE_BUILD_PARALLEL_LEVEL="$NCPU" \
    vpip wheel --no-index --no-deps --no-build-isolation -v \
      --config-settings="build-dir=$WORK/build/llama" \
      --wheel-dir "$WORK/wheels" "$WORK/src/$NAME"
  compgen -G "$WORK/wheels/llama_cpp_python-$VERSION-*.whl" >/dev/null || die "no wheel was built"
  echo "built $(basename "$WORK"/wheels/llama_cpp_python-*.whl) in $(( SECONDS - t0 )) s"
}

step_install() {
  if [[ ! -x "$PY" ]] || ! compgen -G "$WORK/wheels/llama_cpp_python-$VERSION-*.whl" >/dev/null; then
    die "no built wheel: run the build step first"
  fi
  echo "== llama-cpp-python (the wheel built here)"
  pip_offline --force-reinstall --no-deps "$WORK"/wheels/llama_cpp_python-"$VERSION"-*.whl
  echo "== specbound-cpp, built against it"
  # --only-binary: pip may take llama-cpp-python only as the wheel above,
  # never try to build the sdist with default flags.
  CMAKE_BUILD_PARALLEL_LEVEL="$NCPU" \
    pip_offline --no-build-isolation --only-binary llama-cpp-python \
      --config-settings="build-dir=$WORK/build/specbound" "$ROOT"
  echo "== check"
  (cd / && "$PY" - "$CUDA" <<'EOF'
import sys
import llama_cpp
import specbound_cpp
gpu = bool(llama_cpp.llama_supports_gpu_offload())
print("llama_cpp", llama_cpp.__version__, "from", llama_cpp.__file__)
print("specbound_cpp from", specbound_cpp.__file__)
print("llama_supports_gpu_offload:", gpu)
if sys.argv[1] == "1" and not gpu:
    sys.exit("llama-cpp-python was built without GPU offload")
EOF
  )
}

# Registry models present in the cache (hashed once, then trusted by sidecar).
models_present() {
  "$PY" - <<'EOF'
from specbound_cpp.models import MODELS, is_cached
print(" ".join(n for n in MODELS if is_cached(n, verify=True)))
EOF
}

link_models() {
  mkdir -p "$SPECBOUND_CACHE/models"
  [[ -n "${SPECBOUND_GPU_MODELS:-}" ]] || return 0
  local f
  for f in "$SPECBOUND_GPU_MODELS"/*.gguf; do
    [[ -f "$f" && ! -e "$SPECBOUND_CACHE/models/$(basename "$f")" ]] || continue
    ln -s "$(cd "$(dirname "$f")" && pwd)/$(basename "$f")" "$SPECBOUND_CACHE/models/"
  done
}

step_test() {
  [[ -x "$PY" ]] || die "no venv: run the build and install steps first"
  link_models
  local present missing=() name expr
  present=" $(models_present) "
  echo "models in $SPECBOUND_CACHE/models:${present% }"
  # Tests are parametrized by model name; those whose model is absent are
  # deselected (they would fail trying to download it). qwen3-random is
  # written from smollm2's tokenizer, and one test uses smollm2 by itself.
  for name in smollm2-135m qwen2.5-coder-0.5b qwen2.5-coder-1.5b gemma3-270m; do
    [[ "$present" == *" $name "* ]] || missing+=("$name")
  done
  if [[ "$present" != *" smollm2-135m "* ]]; then missing+=(qwen3-random continuation_across_calls); fi
  expr=""
  if (( ${#missing[@]} )); then
    expr="$(printf ' or %s' "${missing[@]}")"
    expr="not (${expr# or })"
    echo "deselected (model not here): ${missing[*]}"
  fi
  preload_libstdcxx
  # every layer on the GPU, in our sessions and in the llama.cpp references
  local rc=0 extra=()
  read -r -a extra <<< "${SPECBOUND_GPU_PYTEST_ARGS:-}"
  SPECBOUND_TEST_N_GPU_LAYERS=-1 "$PY" -m pytest ${extra[@]+"${extra[@]}"} -q -rfE -p no:cacheprovider --durations=10 \
    --junitxml="$LOGS/test-junit.xml" ${expr:+-k "$expr"} \
    "$ROOT/tests/test_batch_invariance.py" "$ROOT/tests/test_parity_llamacpp.py" "$ROOT/tests/test_specbound.py" \
    "$ROOT/tests/test_exit_translators.py" \
    || rc=$?
  if (( rc == 5 )); then
    echo "no test ran: no model is here (see tools/gpu/README.md, 'Models')"
  fi
  return "$rc"
}

# The CUDA build on the device image (CUDA 13.0, its /opt/gcc) exports 3424 of
# libstdc++'s own symbols from libggml-cuda.so. Under pytest, libllama's
# std::regex (the tokenizer, at model load) then bound to that copy and crashed
# (SIGSEGV in std::__detail::_BracketMatcher, measured 2026-11-26); a standalone
# process did not. Preloading the system libstdc++ binds every library to one copy.
preload_libstdcxx() {
  local lib so std
  lib="$("$PY" -c 'import llama_cpp, pathlib; print(pathlib.Path(llama_cpp.__file__).parent / "lib")' 2>/dev/null)" || return 0
  so="$(find "$lib" -maxdepth 1 -name 'libggml-cuda.so*' -type f 2>/dev/null | head -n 1)"
  [[ -n "$so" ]] || return 0
  # whole outputs, no early exit: under pipefail, grep -q (or awk's exit) closing
  # the pipe kills nm with SIGPIPE and the test reads as false (seen 2026-11-27)
  local syms
  syms="$(nm -D --defined-only "$so" 2>/dev/null || true)"
  grep -qE ' T _ZN?K?St' <<< "$syms" || return 0
  std="$( (ldconfig -p 2>/dev/null || true) | awk '/libstdc\+\+\.so\.6 .*x86-64/ && !std { std = $NF } END { print std }')"
  [[ -n "$std" ]] || std=/lib/x86_64-linux-gnu/libstdc++.so.6
  [[ -e "$std" ]] || return 0
  export LD_PRELOAD="$std${LD_PRELOAD:+:$LD_PRELOAD}"
  echo "libggml-cuda.so exports libstdc++ symbols: LD_PRELOAD=$std"
}

step_modes() {
  [[ -x "$PY" ]] || die "no venv: run the build and install steps first"
  link_models
  preload_libstdcxx
  local models=() f
  # the random models are written here from smollm2's tokenizer when they were
  # not carried (saves a 47 MiB upload)
  if ! compgen -G "$ROOT/tools/gpu/xfer/random/*.gguf" >/dev/null && [[ -f "$SPECBOUND_CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf" ]]; then
    "$PY" "$ROOT/tools/gpu/random_models.py" "$ROOT/tools/gpu/xfer/random" || echo "random models: not written"
  fi
  for f in "$ROOT"/tools/gpu/xfer/random/*.gguf "$SPECBOUND_CACHE"/models/*.gguf; do
    [[ -f "$f" ]] && models+=("$f")
  done
  (( ${#models[@]} )) || die "no model: run tools/gpu/random_models.py tools/gpu/xfer/random here and carry it"
  "$PY" "$ROOT/tools/gpu/modes.py" "${models[@]}" --columns "${SPECBOUND_GPU_COLUMNS:-1,4,0}" --nofusion 1
}

step_speed() {
  [[ -x "$PY" ]] || die "no venv: run the build and install steps first"
  link_models
  preload_libstdcxx
  "$PY" "$ROOT/tools/gpu/speed.py" --json "$LOGS/speed.json" --markdown "$LOGS/speed.md"
}

# Parts made by prepare.sh --models: tools/gpu/xfer/NNN/<file>.partIII-of-NNN
# plus <file>.sha256 ("sha256  size  file"). Parts wait in .gpu/parts until
# all of a file's are here, then become the file in the model cache.
step_recv() {
  mkdir -p "$WORK/parts" "$SPECBOUND_CACHE/models" "$SPECBOUND_CACHE/profiles"
  local f moved=0
  # calibrated profiles (and their exit translators) carried in tools/gpu/profiles/
  for f in "$ROOT"/tools/gpu/profiles/*; do
    [[ -f "$f" ]] || continue
    cp -f "$f" "$SPECBOUND_CACHE/profiles/"
    echo "profile: $(basename "$f")"
  done
  for f in "$ROOT"/tools/gpu/xfer/*/*; do
    [[ -f "$f" ]] || continue
    mv -f "$f" "$WORK/parts/"
    moved=$(( moved + 1 ))
  done
  echo "received $moved files"
  local sums sha size base n have out
  for sums in "$WORK"/parts/*.sha256; do
    [[ -f "$sums" ]] || continue
    read -r sha size base < "$sums"
    n="$(find "$WORK/parts" -maxdepth 1 -name "$base.part*-of-*" | head -n 1 | sed 's/.*-of-//')"
    have="$(find "$WORK/parts" -maxdepth 1 -name "$base.part*-of-$n" | wc -l)"
    if [[ -z "$n" ]] || (( have < 10#$n )); then
      echo "$base: ${have:-0} of ${n:-?} parts"
      continue
    fi
    out="$SPECBOUND_CACHE/models/$base"
    # the part names sort in order (zero-padded)
    find "$WORK/parts" -maxdepth 1 -name "$base.part*-of-$n" | sort | xargs cat > "$out.tmp"
    if [[ "$(stat -c %s "$out.tmp")" != "$size" || "$(sha256sum "$out.tmp" | cut -d' ' -f1)" != "$sha" ]]; then
      rm -f "$out.tmp"
      die "$base: the assembled parts do not match its sha256; upload them again"
    fi
    mv -f "$out.tmp" "$out"
    rm -f "$WORK/parts/$base".part*-of-* "$sums"
    echo "$base: complete ($size bytes, sha256 ok) in $SPECBOUND_CACHE/models"
  done
}

# --------------------------------------------------------------------------
summary() {
  echo
  echo "== summary ($WORK)"
  local s
  for s in build install test speed modes recv; do
    [[ -f "$STATUS/$s" ]] && printf '  %-8s %s\n' "$s" "$(cat "$STATUS/$s")"
  done
  if [[ -f "$LOGS/test.log" ]]; then
    printf '  tests:    %s\n' "$(grep -E '[0-9]+ (passed|failed|errors?|deselected|skipped)|no tests ran|collected' "$LOGS/test.log" | tail -n 1)"
  fi
  [[ -f "$LOGS/speed.md" ]] && { echo; cat "$LOGS/speed.md"; }
  if [[ -n "${OUT:-}" && -d "${OUT:-}" ]]; then
    # at most 8 files come back from the machine: the logs and the results
    local f
    for f in build.log install.log test.log speed.log speed.json modes.log test-junit.xml; do
      [[ -f "$LOGS/$f" ]] && cp "$LOGS/$f" "$OUT/"
    done
    for s in build install test speed modes recv; do
      [[ -f "$STATUS/$s" ]] && printf '%-8s %s\n' "$s" "$(cat "$STATUS/$s")"
    done > "$OUT/summary.txt"
  fi
  return 0
}

# Run one step in its own process under `timeout`, logging to LOGS/STEP.log;
# record "ok", "FAILED" or "TIMED OUT" with the seconds it took.
run_step() {
  local step="$1" limit rc=0 t0=$SECONDS
  case "$step" in
    build) limit="${SPECBOUND_GPU_TIMEOUT_BUILD:-540}" ;;
    install) limit="${SPECBOUND_GPU_TIMEOUT_INSTALL:-240}" ;;
    test) limit="${SPECBOUND_GPU_TIMEOUT_TEST:-480}" ;;
    modes) limit="${SPECBOUND_GPU_TIMEOUT_MODES:-240}" ;;
    speed) limit="${SPECBOUND_GPU_TIMEOUT_SPEED:-300}" ;;
    recv) limit=300 ;;
  esac
  t0=$SECONDS
  mkdir -p "$LOGS" "$STATUS"
  # no more than what is left of this invocation's budget
  local left=$(( CALL_BUDGET - SECONDS - 15 ))
  if (( left < 30 )); then
    echo "SKIPPED: no time left in this call (rerun: bash tools/gpu/run.sh $step)" > "$STATUS/$step"
    echo
    echo "==> $step: $(cat "$STATUS/$step")"
    return 3
  fi
  (( limit <= left )) || limit=$left
  echo
  echo "==> $step (limit ${limit}s, log $LOGS/$step.log)"
  # build and install are long and noisy: log only; tests and speed also to the console
  if [[ "$step" == build || "$step" == install ]]; then
    timeout -k 15 "$limit" bash "$SCRIPT" __step "$step" > "$LOGS/$step.log" 2>&1 || rc=$?
  else
    set -o pipefail
    timeout -k 15 "$limit" bash "$SCRIPT" __step "$step" 2>&1 | tee "$LOGS/$step.log" || rc=$?
  fi
  local took=$(( SECONDS - t0 )) at
  at="at $(date -u +%H:%M:%S) UTC"  # statuses stay from earlier calls: say when
  if (( rc == 0 )); then
    echo "ok, ${took}s, $at" > "$STATUS/$step"
  elif (( rc == 124 || rc == 137 )); then
    echo "TIMED OUT after ${took}s (limit ${limit}s; rerun: bash tools/gpu/run.sh $step), $at" > "$STATUS/$step"
  else
    echo "FAILED (exit $rc) after ${took}s (log: $LOGS/$step.log), $at" > "$STATUS/$step"
  fi
  echo "    $step: $(cat "$STATUS/$step")"
  if (( rc != 0 )) && [[ "$step" == build || "$step" == install ]]; then
    echo "    last lines of the log:"
    tail -n 40 "$LOGS/$step.log" | sed 's/^/    | /'
  fi
  return "$rc"
}

# --------------------------------------------------------------------------
if [[ "${1:-}" == __step ]]; then
  # the inside of run_step: one step, in this process
  mkdir -p "$LOGS"
  case "$2" in
    build) step_build ;; install) step_install ;; test) step_test ;;
    speed) step_speed ;; recv) step_recv ;; modes) step_modes ;; *) die "unknown step $2" ;;
  esac
  exit 0
fi

steps=()
for arg in "${@:-all}"; do
  case "$arg" in
    all) steps+=(build install test speed) ;;
    build|install|test|speed|recv|modes) steps+=("$arg") ;;
    summary) ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown step: $arg" ;;
  esac
done
[[ -n "$VERSION" ]] || die "no llama-cpp-python==<version> pin found in pyproject.toml"
cd "$ROOT"
failed=0
for s in ${steps[@]+"${steps[@]}"}; do
  if ! run_step "$s"; then
    failed=1
    # later steps need the earlier ones, except that a failed test run still
    # leaves a working install to measure
    [[ "$s" == test ]] || break
  fi
done
summary
exit "$failed"
