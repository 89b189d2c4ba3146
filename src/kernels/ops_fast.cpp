// AVX-512 versions of the row kernels in ops.h (norms, activations, RoPE). Each computes the same
// formula as its *_ref in ops.cpp; the differences are f32 instead of double accumulation in the
// norms (16 partial sums, ~1e-7 relative) and exp512 (vec.h, ~2 ulp) instead of std::exp.
// Without AVX-512 they call the references.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 bug 105593 (AVX-512 intrinsics)
#include <cmath>

#include "kernels/ops.h"
#include "kernels/vec.h"

namespace calq {

#if defined(__AVX512F__)
namespace {

constexpr int64_t kParallelMin = 1 << 16;  // elements below which a kernel stays on one thread

__mmask16 tail(int64_t n) { return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1); }

float sum_squares(const float* x, int64_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 u = _mm512_loadu_ps(x + i), v = _mm512_loadu_ps(x + i + 16);
    a0 = _mm512_fmadd_ps(u, u, a0);
    a1 = _mm512_fmadd_ps(v, v, a1);
  }
  for (; i < n; i += 16) {
    const __m512 u = _mm512_maskz_loadu_ps(tail(n - i), x + i);
    a0 = _mm512_fmadd_ps(u, u, a0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

// act(x) for 16 lanes; GELU (erf) has no vector form here and is handled by the caller.
inline __m512 act512(__m512 x, ActKind a) {
  const __m512 one = _mm512_set1_ps(1.0f);
  switch (a) {
    case ActKind::SiLU: return _mm512_div_ps(x, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), x))));
    case ActKind::ReLU: return _mm512_max_ps(x, _mm512_setzero_ps());
    case ActKind::GELUTanh: {
      // 0.5·x·(1 + tanh z) = x · sigmoid(2z) = x / (1 + exp(-2z)): no cancellation near tanh = -1.
      const __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
      const __m512 z = _mm512_mul_ps(_mm512_set1_ps(0.7978845608028654f), _mm512_fmadd_ps(_mm512_set1_ps(0.044715f), x3, x));
      return _mm512_div_ps(x, _mm512_add_ps(one, exp512(_mm512_mul_ps(_mm512_set1_ps(-2.0f), z))));
    }
    case ActKind::GELU: break;
  }
  return x;
}

}  // namespace

void rms_norm(const float* x, int64_t rows, int64_t n, const float* w, float eps, float* y) {
#pragma omp parallel for schedule(static) if (rows * n > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    const __m512 inv = _mm512_set1_ps(float(1.0 / std::sqrt(double(sum_squares(xr, n)) / double(n) + eps)));
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 m = tail(n - i);
      const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, xr + i), inv);  // (x * inv) * w, as the reference
      _mm512_mask_storeu_ps(yr + i, m, _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, w + i)));
    }
  }
}

void layer_norm(const float* x, int64_t rows, int64_t n, const float* w, const float* b, float eps, float* y) {
#pragma omp parallel for schedule(static) if (rows * n > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    __m512 s = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(tail(n - i), xr + i));
    const float mean = _mm512_reduce_add_ps(s) / float(n);
    const __m512 vm = _mm512_set1_ps(mean);
    __m512 q = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 m = tail(n - i);
      const __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, xr + i), vm);
      q = _mm512_fmadd_ps(d, d, q);
    }
    const __m512 inv = _mm512_set1_ps(float(1.0 / std::sqrt(double(_mm512_reduce_add_ps(q)) / double(n) + eps)));
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 m = tail(n - i);
      __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, xr + i), vm), inv),
                               _mm512_maskz_loadu_ps(m, w + i));
      if (b) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, b + i));
      _mm512_mask_storeu_ps(yr + i, m, v);
    }
  }
}

void gated_act(float* g, const float* u, int64_t n, ActKind a) {
  if (a == ActKind::GELU) return gated_act_ref(g, u, n, a);
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail(n - i);
    const __m512 v = _mm512_mul_ps(act512(_mm512_maskz_loadu_ps(m, g + i), a), _mm512_maskz_loadu_ps(m, u + i));
    _mm512_mask_storeu_ps(g + i, m, v);
  }
}

void act_inplace(float* x, int64_t n, ActKind a) {
  if (a == ActKind::GELU) return act_inplace_ref(x, n, a);
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail(n - i);
    _mm512_mask_storeu_ps(x + i, m, act512(_mm512_maskz_loadu_ps(m, x + i), a));
  }
}

void apply_rope(float* x, int64_t rows, int heads, int dim, const int32_t* pos, const RopeTable& t, bool interleaved,
                int64_t ld) {
  if (interleaved) return apply_rope_ref(x, rows, heads, dim, pos, t, interleaved, ld);  // Cohere only
  const int half = dim / 2;
  if (ld == 0) ld = int64_t(heads) * dim;
#pragma omp parallel for schedule(static) if (rows * heads * dim > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* c = t.cos.data() + size_t(pos[r]) * t.half;
    const float* s = t.sin.data() + size_t(pos[r]) * t.half;
    for (int h = 0; h < heads; ++h) {
      float* v = x + r * ld + int64_t(h) * dim;
      for (int i = 0; i < half; i += 16) {  // pairs (i, i + half): HF rotate_half
        const __mmask16 m = tail(half - i);
        const __m512 x1 = _mm512_maskz_loadu_ps(m, v + i), x2 = _mm512_maskz_loadu_ps(m, v + half + i);
        const __m512 cv = _mm512_maskz_loadu_ps(m, c + i), sv = _mm512_maskz_loadu_ps(m, s + i);
        _mm512_mask_storeu_ps(v + i, m, _mm512_sub_ps(_mm512_mul_ps(x1, cv), _mm512_mul_ps(x2, sv)));
        _mm512_mask_storeu_ps(v + half + i, m, _mm512_add_ps(_mm512_mul_ps(x2, cv), _mm512_mul_ps(x1, sv)));
      }
    }
  }
}

#else  // no AVX-512: the references

void rms_norm(const float* x, int64_t rows, int64_t n, const float* w, float eps, float* y) {
  rms_norm_ref(x, rows, n, w, eps, y);
}
void layer_norm(const float* x, int64_t rows, int64_t n, const float* w, const float* b, float eps, float* y) {
  layer_norm_ref(x, rows, n, w, b, eps, y);
}
void gated_act(float* g, const float* u, int64_t n, ActKind a) { gated_act_ref(g, u, n, a); }
void act_inplace(float* x, int64_t n, ActKind a) { act_inplace_ref(x, n, a); }
void apply_rope(float* x, int64_t rows, int heads, int dim, const int32_t* pos, const RopeTable& t, bool interleaved,
                int64_t ld) {
  apply_rope_ref(x, rows, heads, dim, pos, t, interleaved, ld);
}
#endif

}  // namespace calq
