// Vectorised helpers shared by the fast kernels: bf16 conversion and a vector exp.
// Every function has a scalar fallback (used when the build has no AVX-512) that computes the
// same thing; the bf16 conversion rounds to nearest even exactly like calq::f32_to_bf16.
#pragma once
#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace calq {

// dst[i] = bf16(src[i]) (round to nearest even), n elements. Multi-threaded when n is large.
void f32_to_bf16_n(const float* src, uint16_t* dst, int64_t n);

#if defined(__AVX512F__)
// exp(x) for 16 floats: 2^n · p(r) with n = round(x·log2 e), |r| <= ln2/2, a degree-6 minimax
// polynomial (about 2 ulp) and scalef for the exponent, so -inf -> 0 and large x -> inf.
inline __m512 exp512(__m512 x) {
  const __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
  const __m512 ln2_hi = _mm512_set1_ps(0.693359375f), ln2_lo = _mm512_set1_ps(-2.12194440e-4f);
  x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));  // below this the result is 0 anyway (also maps -inf)
  x = _mm512_min_ps(x, _mm512_set1_ps(89.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, ln2_hi, x);
  r = _mm512_fnmadd_ps(n, ln2_lo, r);
  __m512 p = _mm512_set1_ps(1.98756912e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.39819994e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.33345205e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.16657962e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.66666657e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

// Round-to-nearest-even f32 -> bf16 of 16 lanes (NaN-free inputs), as calq::f32_to_bf16.
inline __m256i cvt_bf16_512(__m512 x) {
#if defined(__AVX512BF16__)
  return (__m256i)_mm512_cvtneps_pbh(x);
#else
  __m512i u = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  u = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
  return _mm512_cvtepi32_epi16(_mm512_srli_epi32(u, 16));
#endif
}
#endif

}  // namespace calq
