# shellcheck shell=bash
# ggml's x86 instruction-set flags for this CPU, sourced by tools/setup.sh and
# tools/gpu/run.sh (one map, so the CPU wheel and the CUDA wheel get the same
# CPU kernels).
#
# GGML_NATIVE=OFF (the native build picks AMX kernels that segfault, see
# docs/build.md) and each instruction set below switched on only when this CPU has
# it: Intel Sapphire Rapids has AVX-VNNI, AMD Zen 4 has AVX-512 VNNI but not
# AVX-VNNI, and a kernel built for an extension the CPU lacks dies with
# "illegal instruction". AMX is never switched on.
#   ggml option      /proc/cpuinfo flags it needs
X86_FLAG_MAP="
GGML_AVX         avx
GGML_AVX2        avx2
GGML_FMA         fma
GGML_F16C        f16c
GGML_BMI2        bmi2
GGML_AVX_VNNI    avx_vnni
GGML_AVX512      avx512f,avx512cd,avx512vl,avx512dq,avx512bw
GGML_AVX512_VBMI avx512vbmi
GGML_AVX512_VNNI avx512_vnni
GGML_AVX512_BF16 avx512_bf16
"

# "-DGGML_NATIVE=OFF -DGGML_AVX=ON ..." for this CPU
x86_cmake_args() {
  local cpu_flags opt needs f ok args="-DGGML_NATIVE=OFF"
  cpu_flags=" $(grep -m 1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
  while read -r opt needs; do
    [[ -n "$opt" ]] || continue
    ok=1
    for f in ${needs//,/ }; do [[ "$cpu_flags" == *" $f "* ]] || ok=0; done
    if (( ok )); then args+=" -D$opt=ON"; else args+=" -D$opt=OFF"; fi
  done <<< "$X86_FLAG_MAP"
  printf '%s\n' "$args"
}
