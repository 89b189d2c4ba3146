// The affine quantizer every method shares: b-bit unsigned codes q in [0, 2^b - 1] and
//   x ≈ scale * (q - zero)
// per block of values (one tensor, one output channel, or a group of G input columns of one
// output channel), plus the per-token / per-tensor activation fake-quantizers of W8A8.
//
// Two range conventions are mirrored exactly, because exports must reproduce the reference codes:
//  * RangeRule::Gptq — IST-DASLab gptq `quant.py` Quantizer.find_params (= AutoGPTQ):
//      range [min(x, 0), max(x, 0)]; an all-zero block uses [-1, 1];
//      asym: scale = (max - min) / maxq, zero = round(-min / scale);
//      sym:  max = max(|min|, max), min = -max when min < 0, scale = (max - min) / maxq,
//            zero = (maxq + 1) / 2.
//  * RangeRule::Awq — llm-awq / AutoAWQ `pseudo_quantize_tensor` (and SmoothQuant `fake_quant.py`):
//      asym (zero_point): range [min, max] (0 not forced in), scale = max(max - min, 1e-5) / maxq,
//            zero = clamp(-round(min / scale), 0, maxq);
//      sym (absmax): scale = max(absmax, 1e-5) / (2^(b-1) - 1), zero = 2^(b-1)
//            (codes q - zero in [-2^(b-1), 2^(b-1) - 1]; SmoothQuant's quantize_*_absmax).
// Codes: q = clamp(round(x / scale) + zero, 0, maxq), round = half to even (torch.round).
// Dequantization is scale * (q - zero) in float32, the exact expression of
// QuantizedWeight::dequantize(), so a fake-quantized weight equals the dequantized codes bitwise.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>

#include "quant/qtensor.h"
#include "util/json.h"

namespace calq {

enum class RangeRule { Gptq, Awq };
enum class BlockShape { PerTensor, PerChannel, PerGroup };

const char* range_rule_name(RangeRule r);
const char* block_shape_name(BlockShape b);

struct QuantScheme {
  int bits = 4;
  bool sym = false;
  BlockShape block = BlockShape::PerGroup;
  int group_size = 128;      // input columns per group (PerGroup only)
  RangeRule rule = RangeRule::Gptq;
  // Round every scale to the nearest fp16 before computing codes: GPTQ/AWQ/GGUF files store fp16
  // scales, so the fake-quant weight is then exactly what a deployed checkpoint dequantizes to.
  bool f16_scales = true;

  // A weight scheme in the GPTQ/AWQ convention: group_size -1 means one group per output channel.
  static QuantScheme weights(int bits, bool sym, int group_size, RangeRule rule, bool f16_scales);

  int maxq() const { return (1 << bits) - 1; }
  // Throws ArgError naming the setting: bits outside [2, 8], group_size < 1 for PerGroup.
  void validate() const;
  // QuantizedWeight::group_size: G for PerGroup, -1 otherwise.
  int stored_group_size() const { return block == BlockShape::PerGroup ? group_size : -1; }
  // Groups per row for `cols` input columns: ceil(cols / G) (the last group may be partial,
  // as in AutoGPTQ: g_idx = c / G), 1 for per-channel and per-tensor.
  int64_t n_groups(int64_t cols) const;
  std::string describe() const;  // e.g. "4-bit asym g128 (gptq range, fp16 scales)"
  Json to_json() const;
};

struct AffineParams {
  float scale = 1.0f;
  float zero = 0.0f;
};

// Parameters for the values x[0], x[stride], ... (n values) under bits/sym/rule (see above).
// A NaN among them gives a NaN scale and zero (std::min/max alone would skip it and return a finite
// range), so that QuantizedWeight::validate() refuses the result: find_params runs inside parallel
// loops, where it must not throw. The entry points below refuse non-finite input up front.
AffineParams find_params(const float* x, int64_t n, int64_t stride, const QuantScheme& s);
// The same from a precomputed range (xmin <= xmax over the block).
AffineParams params_from_range(float xmin, float xmax, const QuantScheme& s);

// round(x / scale) + zero, clamped to [0, maxq]; nearbyint rounds half to even like torch.round.
// The clamp is written so that NaN lands on 0: converting NaN to uint8_t is undefined behaviour.
inline uint8_t quantize_code(float x, const AffineParams& p, int maxq) {
  float q = std::nearbyint(x / p.scale) + p.zero;
  q = q > 0.0f ? q : 0.0f;
  q = q < float(maxq) ? q : float(maxq);
  return uint8_t(q);
}
// THE dequantization: scale * (q - zero), float32.
inline float dequantize_code(uint8_t q, const AffineParams& p) { return p.scale * (float(q) - p.zero); }
inline float fake_quant_value(float x, const AffineParams& p, int maxq) {
  return dequantize_code(quantize_code(x, p, maxq), p);
}

// Throws NonFiniteError "<what> holds NaN at [r, c]" when x [rows, cols] holds a NaN or ±inf: how
// every quantizer refuses non-finite input (its layer driver puts the module name in front).
void require_finite(const float* x, int64_t rows, int64_t cols, const std::string& what);

// Round to nearest (RTN) of W [rows, cols] row-major (NonFiniteError for a non-finite weight).
// The scalar reference...
QuantizedWeight quantize_rtn_ref(const float* w, int64_t rows, int64_t cols, const QuantScheme& s);
// ...and the fast path (rows in parallel); identical results.
QuantizedWeight quantize_rtn(const float* w, int64_t rows, int64_t cols, const QuantScheme& s);
// An empty QuantizedWeight of the right shape for `s` (codes 0, g_idx = c / G).
QuantizedWeight make_quantized_weight(int64_t rows, int64_t cols, const QuantScheme& s);

// ---- activation fake-quantization (SmoothQuant fake_quant.py), symmetric absmax -------------
// Each refuses a non-finite input with NonFiniteError (Linear names the module).
// Per token (row): s = max(absmax(row), 1e-5) / (2^(b-1) - 1); x = round(x / s) * s.
void fake_quant_per_token_ref(float* x, int64_t rows, int64_t cols, int bits);
void fake_quant_per_token(float* x, int64_t rows, int64_t cols, int bits);  // rows in parallel
// Per tensor, dynamic: one s from the absmax of all n values.
void fake_quant_per_tensor_dynamic(float* x, int64_t n, int bits);
// Per channel (column), dynamic: one s per column from its absmax over the `rows` rows.
void fake_quant_per_channel_ref(float* x, int64_t rows, int64_t cols, int bits);
void fake_quant_per_channel(float* x, int64_t rows, int64_t cols, int bits);  // columns in parallel
// Per tensor, static: a calibrated scale; codes saturate to [-2^(b-1), 2^(b-1) - 1] like int8.
void fake_quant_per_tensor_static(float* x, int64_t n, float scale, int bits);
// The static scale for a calibrated absmax: max(absmax, 1e-5) / (2^(b-1) - 1).
float static_scale_for_absmax(float absmax, int bits);

// Validates bits in [2, 8] (ArgError "<what>: bits must be in 2..8, got N").
void check_bits(int bits, const std::string& what);

}  // namespace calq
