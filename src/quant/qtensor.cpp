#include "quant/qtensor.h"

#include "util/error.h"

namespace calq {

Tensor QuantizedWeight::dequantize() const {
  const int64_t ng = n_groups();
  if (int64_t(q.size()) != rows * cols || int64_t(g_idx.size()) != cols || zero.size() != scale.size())
    throw ArgError("QuantizedWeight: inconsistent sizes");
  Tensor w = Tensor::empty(DType::F32, {rows, cols});
  float* d = w.f32_mut();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t g = g_idx[size_t(c)];
      if (g < 0 || g >= ng) throw ArgError("QuantizedWeight: g_idx out of range");
      const size_t k = size_t(r * ng + g);
      d[r * cols + c] = scale[k] * (float(q[size_t(r * cols + c)]) - zero[k]);
    }
  return w;
}

}  // namespace calq
