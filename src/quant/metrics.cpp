#include "quant/metrics.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/gemm.h"
#include "util/error.h"

namespace calq {

double relative_output_error(const Tensor& x, const Tensor& w_ref, const Tensor& w_q, int64_t max_rows) {
  const int64_t n = x.dim(0), in = x.dim(1), out = w_ref.dim(0);
  if (w_ref.dim(1) != in || w_q.shape() != w_ref.shape()) throw ArgError("relative_output_error: shape mismatch");
  const int64_t step = std::max<int64_t>(1, (n + max_rows - 1) / max_rows);
  const int64_t m = (n + step - 1) / step;
  std::vector<float> xs(static_cast<size_t>(m * in)), d(static_cast<size_t>(out * in));
  for (int64_t r = 0; r < m; ++r) std::memcpy(&xs[size_t(r * in)], x.f32() + r * step * in, size_t(in) * 4);
  const float* a = w_ref.f32();
  const float* b = w_q.f32();
  for (int64_t k = 0; k < out * in; ++k) d[size_t(k)] = a[k] - b[k];
  std::vector<float> y(static_cast<size_t>(m * out));
  auto sq = [&](const float* w) {
    sgemm(true, m, out, in, 1.0f, xs.data(), in, w, in, 0.0f, y.data(), out);
    double s = 0;
    for (float v : y) s += double(v) * v;
    return s;
  };
  const double err = sq(d.data()), ref = sq(a);
  return ref > 0 ? err / ref : 0.0;
}

double relative_weight_error(const Tensor& w, const Tensor& dq) {
  double e = 0, ref = 0;
  for (int64_t k = 0; k < w.numel(); ++k) {
    e += double(w.f32()[k] - dq.f32()[k]) * double(w.f32()[k] - dq.f32()[k]);
    ref += double(w.f32()[k]) * w.f32()[k];
  }
  return ref > 0 ? e / ref : 0.0;
}

}  // namespace calq
