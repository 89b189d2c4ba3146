#include "quant/qtensor.h"

#include <cmath>

#include "util/error.h"

namespace calq {

int64_t QuantizedWeight::groups_for(int64_t cols, int group_size) {
  if (group_size <= 0) return 1;
  return (cols + group_size - 1) / group_size;
}

std::string QuantizedWeight::problem() const {
  if (bits < 2 || bits > 8) return "bits " + std::to_string(bits) + " outside 2..8";
  if (rows <= 0 || cols <= 0) return "empty shape [" + std::to_string(rows) + ", " + std::to_string(cols) + "]";
  if (group_size == 0 || group_size < -1) return "group_size " + std::to_string(group_size) + " (expected -1 or >= 1)";
  const int64_t ng = n_groups();
  if (int64_t(q.size()) != rows * cols) return "codes do not match [out, in]";
  if (int64_t(scale.size()) != rows * ng || zero.size() != scale.size())
    return "scale/zero are not [out, " + std::to_string(ng) + "] (group_size " + std::to_string(group_size) + " over " +
           std::to_string(cols) + " columns)";
  if (int64_t(g_idx.size()) != cols) return "g_idx is not [in]";
  const int maxq = (1 << bits) - 1;
  for (uint8_t c : q)
    if (c > maxq) return "code " + std::to_string(c) + " exceeds 2^bits - 1";
  const float sym_zero = float(1 << (bits - 1));
  for (size_t i = 0; i < scale.size(); ++i) {
    if (!std::isfinite(scale[i]) || scale[i] == 0.0f) return "scale is zero or not finite";
    const float z = zero[i];
    if (!(z >= 0.0f && z <= float(maxq)) || z != std::floor(z)) return "zero point not an integer in [0, 2^bits - 1]";
    if (sym && z != sym_zero) return "sym=true requires every zero point to be " + std::to_string(1 << (bits - 1));
  }
  for (int32_t g : g_idx)
    if (g < 0 || g >= ng) return "g_idx entry " + std::to_string(g) + " out of range";
  return "";
}

void QuantizedWeight::validate(const std::string& what) const {
  const std::string bad = problem();
  if (!bad.empty()) throw ArgError(what + ": " + bad);
}

Tensor QuantizedWeight::dequantize() const {
  validate("QuantizedWeight");
  const int64_t ng = n_groups();
  Tensor w = Tensor::empty(DType::F32, {rows, cols});
  float* d = w.f32_mut();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t g = g_idx[size_t(c)];
      const size_t k = size_t(r * ng + g);
      d[r * cols + c] = scale[k] * (float(q[size_t(r * cols + c)]) - zero[k]);
    }
  return w;
}

}  // namespace calq
