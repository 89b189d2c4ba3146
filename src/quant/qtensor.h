// The result of quantizing one weight matrix, independent of any file format: integer codes
// per element, and per-group scale and zero point along the input dimension. Every method
// (RTN, GPTQ, AWQ) produces one; every exporter (fake-quant, GPTQ, AWQ, GGUF) consumes one.
//
// Dequantization (the one definition everybody shares):
//   W[r][c] ≈ scale[r][g] * (q[r][c] - zero[r][g]),   g = g_idx[c]
// Symmetric formats store zero = 2^(bits-1) (the GPTQ/AutoGPTQ convention for sym=True) so the
// same formula holds. Codes are unsigned in [0, 2^bits - 1].
#pragma once
#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace calq {

struct QuantizedWeight {
  int bits = 4;
  int group_size = -1;  // -1: one group per row (per-output-channel)
  bool sym = false;
  int64_t rows = 0, cols = 0;   // [out, in]
  std::vector<uint8_t> q;       // rows*cols codes, row-major
  std::vector<float> scale;     // rows*n_groups
  std::vector<float> zero;      // rows*n_groups, integral values in [0, 2^bits - 1]
  std::vector<int32_t> g_idx;   // cols: group of each input column (act-order may permute)

  int64_t n_groups() const { return rows ? int64_t(scale.size()) / rows : 0; }
  // float32 [rows, cols] = scale * (q - zero).
  Tensor dequantize() const;
};

}  // namespace calq
