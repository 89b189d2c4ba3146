#include "kernels/attention_cached.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/isa.h"
#include "kernels/simd_kernels.h"
#include "util/error.h"

namespace calq {

namespace {

void check(const CachedAttnDims& d) {
  if (d.heads <= 0 || d.kv_heads <= 0 || d.head_dim <= 0 || d.heads % d.kv_heads != 0 || d.n < 0 || d.pos0 < 0 ||
      d.cap <= 0 || d.window < 0)
    throw ArgError("attention_cached: bad dimensions");
  // The rows must find what they see in the cache: a ring of `cap` slots holds cap positions.
  const int64_t span = d.window > 0 ? std::min<int64_t>(d.window - 1 + d.n, d.pos0 + d.n) : d.pos0 + d.n;
  if (span > d.cap)
    throw ArgError("attention_cached: " + std::to_string(d.n) + " rows at position " + std::to_string(d.pos0) +
                   " need " + std::to_string(span) + " cached positions, the cache holds " + std::to_string(d.cap));
}

int64_t visible(const CachedAttnDims& d, int64_t P) { return d.window > 0 ? std::min<int64_t>(P + 1, d.window) : P + 1; }

// The scalar path (no AVX2): the same steps as simd_impl.h's attn_cached in f32.
void task_scalar(const sk::AttnCachedTask& t) {
  const int hd = t.head_dim;
  const float* kt = t.kt + int64_t(t.kv_head) * hd * t.cap;
  const float* vh = t.v + int64_t(t.kv_head) * t.cap * hd;
  for (int64_t r = t.r0; r < t.r1; ++r) {
    const int64_t P = t.pos0 + r, lo = t.window > 0 ? std::max<int64_t>(0, P - t.window + 1) : 0;
    for (int g = 0; g < t.group; ++g) {
      const int64_t h = int64_t(t.kv_head) * t.group + g;
      const float* q = t.q + r * t.q_ld + h * hd;
      float mx = -INFINITY;
      for (int64_t p = lo; p <= P; ++p) {
        float a = 0.0f;
        for (int e = 0; e < hd; ++e) a += q[e] * kt[e * t.cap + p % t.cap];
        t.scores[p - lo] = a * t.scale;
        mx = std::max(mx, t.scores[p - lo]);
      }
      float sum = 0.0f;
      for (int64_t p = lo; p <= P; ++p) sum += t.scores[p - lo] = std::exp(t.scores[p - lo] - mx);
      float* o = t.out + r * t.out_ld + h * hd;
      for (int e = 0; e < hd; ++e) {
        float a = 0.0f;
        for (int64_t p = lo; p <= P; ++p) a += t.scores[p - lo] * vh[(p % t.cap) * hd + e];
        o[e] = a / sum;
      }
    }
  }
}

}  // namespace

void attention_cached(const float* q, const float* kt, const float* v, float* out, const CachedAttnDims& d) {
  check(d);
  if (d.n == 0) return;
  const int G = d.heads / d.kv_heads;
  const int64_t qld = d.q_ld ? d.q_ld : int64_t(d.heads) * d.head_dim;
  const int64_t old = d.out_ld ? d.out_ld : int64_t(d.heads) * d.head_dim;
  const sk::Kernels* K = sk::kernels_for(active_isa());
  const sk::AttnCachedFn fn = K ? K->attn_cached : task_scalar;
  // Tasks: (kv head, block of rows); one row's G heads share the kv head's keys and values.
  const int64_t rows_per_task = std::max<int64_t>(1, 16 / G);
  const int64_t blocks = (d.n + rows_per_task - 1) / rows_per_task, tasks = d.kv_heads * blocks;
  const double flops = 4.0 * double(d.heads) * double(d.n) * double(visible(d, d.pos0 + d.n - 1)) * d.head_dim;
  const int64_t scratch = visible(d, d.pos0 + d.n - 1) + 64;
#pragma omp parallel for schedule(dynamic) if (tasks > 1 && flops > 1e6 && !omp_in_parallel())
  for (int64_t t = 0; t < tasks; ++t) {
    thread_local std::vector<float> scores;
    if (int64_t(scores.size()) < scratch) scores.resize(size_t(scratch));
    sk::AttnCachedTask a;
    a.q = q;
    a.q_ld = qld;
    a.kt = kt;
    a.v = v;
    a.out = out;
    a.out_ld = old;
    a.cap = d.cap;
    a.pos0 = d.pos0;
    a.r0 = (t % blocks) * rows_per_task;
    a.r1 = std::min(d.n, a.r0 + rows_per_task);
    a.head_dim = d.head_dim;
    a.group = G;
    a.kv_head = int(t / blocks);
    a.window = d.window;
    a.scale = d.scale;
    a.scores = scores.data();
    fn(a);
  }
}

void attention_cached_ref(const float* q, const float* kt, const float* v, float* out, const CachedAttnDims& d) {
  check(d);
  const int G = d.heads / d.kv_heads, hd = d.head_dim;
  const int64_t qld = d.q_ld ? d.q_ld : int64_t(d.heads) * hd;
  const int64_t old = d.out_ld ? d.out_ld : int64_t(d.heads) * hd;
  std::vector<double> s;
  for (int64_t r = 0; r < d.n; ++r) {
    const int64_t P = d.pos0 + r, lo = d.window > 0 ? std::max<int64_t>(0, P - d.window + 1) : 0;
    for (int h = 0; h < d.heads; ++h) {
      const int64_t g = h / G;
      const float* kh = kt + g * hd * d.cap;
      const float* vh = v + g * d.cap * hd;
      s.assign(size_t(P - lo + 1), 0.0);
      double mx = -INFINITY;
      for (int64_t p = lo; p <= P; ++p) {
        double a = 0;
        for (int e = 0; e < hd; ++e) a += double(q[r * qld + h * hd + e]) * kh[e * d.cap + p % d.cap];
        s[size_t(p - lo)] = a * d.scale;
        mx = std::max(mx, s[size_t(p - lo)]);
      }
      double sum = 0;
      for (double& x : s) sum += x = std::exp(x - mx);
      for (int e = 0; e < hd; ++e) {
        double a = 0;
        for (int64_t p = lo; p <= P; ++p) a += s[size_t(p - lo)] * vh[(p % d.cap) * hd + e];
        out[r * old + h * hd + e] = float(a / sum);
      }
    }
  }
}

}  // namespace calq
