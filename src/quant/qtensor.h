// The result of quantizing one weight matrix, independent of any file format: integer codes
// per element, and per-group scale and zero point along the input dimension. Every method
// (RTN, GPTQ, AWQ) produces one; every exporter (fake-quant, GPTQ, AWQ, GGUF) consumes one.
//
// Dequantization (the one definition everybody shares):
//   W[r][c] ≈ scale[r][g] * (q[r][c] - zero[r][g]),   g = g_idx[c]
// Symmetric formats store zero = 2^(bits-1) (the GPTQ/AutoGPTQ convention for sym=True) so the
// same formula holds. Codes are unsigned in [0, 2^bits - 1].
//
// The type owns its rules (validate()): the state files (quant/qstate.h), the packings of
// formats/packing.h and dequantize() all check a weight through it, and n_groups() is the one
// group count.
#pragma once
#include <cstdint>
#include <string>
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

  // Groups per row of `cols` input columns: ceil(cols / group_size) (the last group may be
  // partial, AutoGPTQ's g_idx = c / G convention), 1 for group_size -1.
  static int64_t groups_for(int64_t cols, int group_size);
  int64_t n_groups() const { return groups_for(cols, group_size); }

  // The invariants: bits in 2..8, a non-empty [rows, cols], group_size -1 or >= 1, rows*cols codes
  // <= 2^bits - 1, rows*n_groups() scales (finite, non-zero) and zero points (integers in
  // [0, 2^bits - 1]; 2^(bits-1) everywhere when sym), cols g_idx entries in [0, n_groups()).
  // problem() returns "" or the first violation; validate() throws ArgError "<what>: <problem>".
  std::string problem() const;
  void validate(const std::string& what) const;

  // float32 [rows, cols] = scale * (q - zero). Validates first (ArgError).
  Tensor dequantize() const;
};

}  // namespace calq
