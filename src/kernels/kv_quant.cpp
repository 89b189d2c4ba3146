#include "kernels/kv_quant.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace calq {

void KvQuant::validate(int head_dim) const {
  if (bits != 16 && (bits < 2 || bits > 8))
    throw ArgError("KV-cache bits must be 2..8 (or 16 = off), got " + std::to_string(bits));
  if (group < 0) throw ArgError("KV-cache group size must be >= 0 (0 = the whole head), got " + std::to_string(group));
  if (head_dim > 0 && group > 0 && head_dim % group != 0)
    throw ArgError("KV-cache group size " + std::to_string(group) + " does not divide head_dim " +
                   std::to_string(head_dim));
}

std::string KvQuant::describe() const {
  if (!enabled()) return "";
  std::string s = "kv" + std::to_string(bits);
  if (group > 0) s += " g" + std::to_string(group);
  return s + (sym ? " sym" : " asym");
}

namespace {

// One group of n values, in place (pseudo_quantize_tensor of one row of the reshaped tensor).
void quant_group(float* x, int n, int bits, bool sym) {
  if (sym) {
    float amax = 0.0f;
    for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float qmax = float((1 << (bits - 1)) - 1), qmin = -float(1 << (bits - 1));
    const float s = std::max(amax, 1e-5f) / qmax;
    for (int i = 0; i < n; ++i) x[i] = std::clamp(std::nearbyint(x[i] / s), qmin, qmax) * s;
    return;
  }
  float lo = x[0], hi = x[0];
  for (int i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  const float qmax = float((1 << bits) - 1);
  const float s = std::max(hi - lo, 1e-5f) / qmax;
  const float z = std::clamp(-std::nearbyint(lo / s), 0.0f, qmax);
  for (int i = 0; i < n; ++i) x[i] = (std::clamp(std::nearbyint(x[i] / s) + z, 0.0f, qmax) - z) * s;
}

void quant_row(float* row, int heads, int head_dim, const KvQuant& q) {
  const int g = q.group > 0 ? q.group : head_dim;
  for (int h = 0; h < heads; ++h)
    for (int c = 0; c < head_dim; c += g) quant_group(row + int64_t(h) * head_dim + c, g, q.bits, q.sym);
}

}  // namespace

void kv_fake_quant_ref(float* x, int64_t rows, int heads, int head_dim, int64_t ld, const KvQuant& q) {
  q.validate(head_dim);
  if (!q.enabled()) return;
  if (ld == 0) ld = int64_t(heads) * head_dim;
  for (int64_t r = 0; r < rows; ++r) quant_row(x + r * ld, heads, head_dim, q);
}

void kv_fake_quant(float* x, int64_t rows, int heads, int head_dim, int64_t ld, const KvQuant& q) {
  q.validate(head_dim);
  if (!q.enabled()) return;
  if (ld == 0) ld = int64_t(heads) * head_dim;
#pragma omp parallel for schedule(static) if (rows * heads * head_dim > 65536)
  for (int64_t r = 0; r < rows; ++r) quant_row(x + r * ld, heads, head_dim, q);
}

}  // namespace calq
