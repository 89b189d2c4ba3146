// Integer packings of the GPTQ and AWQ checkpoint formats, and their conversion from/to
// QuantizedWeight (W[o][c] = scale[o][g] * (q[o][c] - zero[o][g]), g = g_idx[c]).
//
// GPTQ (AutoGPTQ / GPTQModel QuantLinear.pack, loaded by transformers/optimum and vLLM):
//   qweight I32 [in·bits/32, out]  codes packed along the input dimension
//   qzeros  I32 [G, out·bits/32]   zero points packed along the output dimension
//   scales  F16 [G, out]
//   g_idx   I32 [in]               group of each input column (act-order permutes it)
// Both packings are one little-endian bit stream per column/row: value k occupies bits
// [k·bits, (k+1)·bits) of consecutive 32-bit words. For 2/4/8 bits that is 32/bits values per word;
// for 3 bits it is AutoGPTQ's cross-word layout (32 values in 3 words: v10 and v21 straddle words).
// Zero points: checkpoint_format "gptq" (v1) stores (zero − 1) mod 2^bits, decoded as
// ((stored + 1) mod 2^bits); "gptq_v2" (GPTQModel) stores zero as is.
//
// AWQ GEMM (AutoAWQ WQLinear_GEMM, transformers/vLLM awq "gemm"), 4-bit only:
//   qweight I32 [in, out/8]   word w of row c holds columns 8w..8w+7, nibble i = column 8w + order[i]
//   qzeros  I32 [G, out/8]    same interleave, zero stored as is
//   scales  F16 [G, out]      order = {0, 2, 4, 6, 1, 3, 5, 7}; group of column c is c / group_size
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "quant/qtensor.h"
#include "tensor/tensor.h"

namespace calq {

// ---- primitives -------------------------------------------------------------------------------
// Packs n values (each < 2^bits) into ceil(n·bits/32) words of a little-endian bit stream.
std::vector<uint32_t> pack_bits(const uint32_t* values, int64_t n, int bits);
// Reads value k (bits wide) from such a stream.
inline uint32_t unpack_bits_at(const uint32_t* words, int64_t k, int bits) {
  const uint64_t bit = uint64_t(k) * uint64_t(bits);
  const uint64_t w = bit / 32, s = bit % 32;
  uint64_t v = words[w] >> s;
  if (s + uint64_t(bits) > 32) v |= uint64_t(words[w + 1]) << (32 - s);
  return uint32_t(v & ((1u << bits) - 1));
}

constexpr int kAwqOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};
// Packs 8 4-bit values (columns 8w..8w+7 in natural order) into one AWQ word, and back.
uint32_t awq_pack_word(const uint32_t v[8]);
void awq_unpack_word(uint32_t word, uint32_t v[8]);

// ---- whole tensors ----------------------------------------------------------------------------
enum class GptqZeroFormat { V1, V2 };  // v1: stored = zero − 1 (checkpoint_format "gptq"); v2: as is

struct GptqTensors {
  Tensor qweight, qzeros, scales, g_idx;  // I32, I32, F16, I32
};
struct PackStats {
  int64_t scales_rounded = 0;   // scales that were not fp16 values (the round trip is then not exact)
  int64_t zero_is_zero = 0;     // asymmetric groups with zero point 0 (see docs/formats.md, v1 caveat)
};

// Throws UnsupportedError when the shape or bits cannot be packed (naming `what`), ArgError on a
// QuantizedWeight that breaks its rules (QuantizedWeight::validate).
GptqTensors gptq_pack(const QuantizedWeight& w, GptqZeroFormat fmt, const std::string& what, PackStats* stats = nullptr);
// Validates shapes/dtypes against each other (FormatError naming `what`) and decodes. `g_idx` may be
// undefined: then g = c / group_size (group_size -1: one group).
QuantizedWeight gptq_unpack(const Tensor& qweight, const Tensor& qzeros, const Tensor& scales, const Tensor& g_idx,
                            int bits, int group_size, bool sym, GptqZeroFormat fmt, const std::string& what);

struct AwqTensors {
  Tensor qweight, qzeros, scales;  // I32, I32, F16
};
AwqTensors awq_pack(const QuantizedWeight& w, const std::string& what, PackStats* stats = nullptr);
QuantizedWeight awq_unpack(const Tensor& qweight, const Tensor& qzeros, const Tensor& scales, int group_size,
                           const std::string& what);

}  // namespace calq
