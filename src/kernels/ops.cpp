#include "kernels/ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace calq {

void rms_norm_ref(const float* x, int64_t rows, int64_t n, const float* w, float eps, float* y) {
#pragma omp parallel for schedule(static) if (rows * n > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += double(xr[i]) * xr[i];
    const float inv = float(1.0 / std::sqrt(ss / double(n) + eps));
    for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * inv * w[i];
  }
}

void layer_norm_ref(const float* x, int64_t rows, int64_t n, const float* w, const float* b, float eps, float* y) {
#pragma omp parallel for schedule(static) if (rows * n > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    double mean = 0, var = 0;
    for (int64_t i = 0; i < n; ++i) mean += xr[i];
    mean /= double(n);
    for (int64_t i = 0; i < n; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= double(n);
    const float inv = float(1.0 / std::sqrt(var + eps)), m = float(mean);
    for (int64_t i = 0; i < n; ++i) yr[i] = (xr[i] - m) * inv * w[i] + (b ? b[i] : 0.0f);
  }
}

float activate(float x, ActKind a) {
  switch (a) {
    case ActKind::SiLU: return x / (1.0f + std::exp(-x));
    case ActKind::ReLU: return x > 0 ? x : 0.0f;
    case ActKind::GELU: return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
    case ActKind::GELUTanh:
      return 0.5f * x * (1.0f + std::tanh(0.7978845608028654f * (x + 0.044715f * x * x * x)));
  }
  return x;
}

void gated_act_ref(float* g, const float* u, int64_t n, ActKind a) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) g[i] = activate(g[i], a) * u[i];
}

void act_inplace_ref(float* x, int64_t n, ActKind a) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) x[i] = activate(x[i], a);
}

std::vector<double> rope_inv_freq(double theta, int dim) {
  std::vector<double> f(size_t(dim / 2));
  for (int i = 0; i < dim / 2; ++i) f[size_t(i)] = 1.0 / std::pow(theta, double(2 * i) / double(dim));
  return f;
}

RopeTable make_rope_table(const std::vector<double>& inv_freq, int positions, double position_scale) {
  RopeTable t;
  t.positions = positions;
  t.half = int(inv_freq.size());
  t.cos.resize(size_t(positions) * t.half);
  t.sin.resize(size_t(positions) * t.half);
  for (int p = 0; p < positions; ++p)
    for (int i = 0; i < t.half; ++i) {
      const double ang = double(p) * position_scale * inv_freq[size_t(i)];
      t.cos[size_t(p) * t.half + i] = float(std::cos(ang));
      t.sin[size_t(p) * t.half + i] = float(std::sin(ang));
    }
  return t;
}

void apply_rope_ref(float* x, int64_t rows, int heads, int dim, const int32_t* pos, const RopeTable& t,
                    bool interleaved, int64_t ld) {
  const int half = dim / 2;
  if (ld == 0) ld = int64_t(heads) * dim;
#pragma omp parallel for schedule(static) if (rows * heads * dim > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    const float* c = t.cos.data() + size_t(pos[r]) * t.half;
    const float* s = t.sin.data() + size_t(pos[r]) * t.half;
    for (int h = 0; h < heads; ++h) {
      float* v = x + r * ld + int64_t(h) * dim;
      for (int i = 0; i < half; ++i) {
        const int a = interleaved ? 2 * i : i, b = interleaved ? 2 * i + 1 : i + half;
        const float x1 = v[a], x2 = v[b];
        v[a] = x1 * c[i] - x2 * s[i];
        v[b] = x2 * c[i] + x1 * s[i];
      }
    }
  }
}

void attention_ref(const float* q, const float* k, const float* v, float* out, const AttnDims& d) {
  const int64_t T = d.seq, qs = d.qld(), ks = d.kld(), vs = d.vld(), os = d.outld();
  const int group = d.heads / d.kv_heads;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < d.batch; ++b)
    for (int h = 0; h < d.heads; ++h) {
      std::vector<float> p(static_cast<size_t>(T));
      const int kh = h / group;
      for (int64_t i = 0; i < T; ++i) {
        const float* qi = q + (b * T + i) * qs + int64_t(h) * d.head_dim;
        const int64_t j0 = d.window > 0 ? std::max<int64_t>(0, i - d.window + 1) : 0;
        float mx = -INFINITY;
        for (int64_t j = j0; j <= i; ++j) {
          const float* kj = k + (b * T + j) * ks + int64_t(kh) * d.head_dim;
          float s = 0;
          for (int e = 0; e < d.head_dim; ++e) s += qi[e] * kj[e];
          p[size_t(j)] = s * d.scale;
          mx = std::max(mx, p[size_t(j)]);
        }
        double sum = 0;
        for (int64_t j = j0; j <= i; ++j) sum += (p[size_t(j)] = std::exp(p[size_t(j)] - mx));
        float* o = out + (b * T + i) * os + int64_t(h) * d.head_dim;
        for (int e = 0; e < d.head_dim; ++e) o[e] = 0;
        for (int64_t j = j0; j <= i; ++j) {
          const float w = float(p[size_t(j)] / sum);
          const float* vj = v + (b * T + j) * vs + int64_t(kh) * d.head_dim;
          for (int e = 0; e < d.head_dim; ++e) o[e] += w * vj[e];
        }
      }
    }
}

}  // namespace calq
