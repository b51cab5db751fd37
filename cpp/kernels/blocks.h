// ggml's quantized block layouts, as stored in GGUF files and produced by
// ggml's activation quantizers. Declared here (ggml does not install its
// ggml-common.h); the kernels' lookup checks each size against ggml_type_size().
#pragma once

#include <cstdint>

namespace sb::kernels {

using half = uint16_t;  // IEEE fp16 bits

constexpr int kQK = 32;    // elements per block of the legacy types
constexpr int kQK_K = 256; // elements per super-block of the K-quants

struct BlockQ4_0 { half d; uint8_t qs[kQK / 2]; };                     // w = d*(q - 8), q in [0, 15]
struct BlockQ4_1 { half d, m; uint8_t qs[kQK / 2]; };               // w = d*q + m, q in [0, 15]
struct BlockQ5_0 { half d; uint8_t qh[4]; uint8_t qs[kQK / 2]; };    // w = d*(q - 16), 5-bit q
struct BlockQ5_1 { half d, m; uint8_t qh[4]; uint8_t qs[kQK / 2]; }; // w = d*q + m, 5-bit q
struct BlockQ8_0 { half d; int8_t qs[kQK]; };                        // w = d*q
struct BlockQ8_1 { half d, s; int8_t qs[kQK]; };                     // s = d * sum(q)
struct BlockIQ4_NL { half d; uint8_t qs[kQK / 2]; };                 // w = d*table[q], q in [0, 15]
struct BlockQ2_K { uint8_t scales[kQK_K / 16]; uint8_t qs[kQK_K / 4]; half d, dmin; };
struct BlockQ3_K { uint8_t hmask[kQK_K / 8]; uint8_t qs[kQK_K / 4]; uint8_t scales[12]; half d; };
struct BlockQ4_K { half d, dmin; uint8_t scales[12]; uint8_t qs[kQK_K / 2]; };
struct BlockQ5_K { half d, dmin; uint8_t scales[12]; uint8_t qh[kQK_K / 8]; uint8_t qs[kQK_K / 2]; };
struct BlockQ6_K { uint8_t ql[kQK_K / 2]; uint8_t qh[kQK_K / 4]; int8_t scales[kQK_K / 16]; half d; };
struct BlockIQ4_XS { half d; uint16_t scales_h; uint8_t scales_l[kQK_K / 64]; uint8_t qs[kQK_K / 2]; };
struct BlockQ8_K { float d; int8_t qs[kQK_K]; int16_t bsums[kQK_K / 16]; };

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36 &&
              sizeof(BlockIQ4_NL) == 18 && sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 &&
              sizeof(BlockQ4_K) == 144 && sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210 &&
              sizeof(BlockIQ4_XS) == 136 && sizeof(BlockQ8_K) == 292, "ggml block layout");

} // namespace sb::kernels
