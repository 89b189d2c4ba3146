// Internal: the float-vector vocabulary of calq's runtime-dispatched kernels for AVX2 + FMA
// (8 lanes); the same functions as simd_avx512.h (read its header). Include ONLY inside an
// anonymous namespace of a translation unit compiled with `#pragma GCC target("avx2,fma,f16c")`
// (simd_avx2.cpp).

struct VF {
  __m256 v;
};
constexpr int kW = 8;  // lanes
using VMask = __m256i;

inline VMask vmask(int64_t n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n < 8 ? n : 8)), idx);
}
inline VF vzero() { return {_mm256_setzero_ps()}; }
inline VF vset1(float x) { return {_mm256_set1_ps(x)}; }
inline VF vload(const float* p) { return {_mm256_loadu_ps(p)}; }
inline VF vloadn(const float* p, int64_t n) { return {_mm256_maskload_ps(p, vmask(n))}; }  // lanes >= n: 0
inline void vstore(float* p, VF a) { _mm256_storeu_ps(p, a.v); }
inline void vstoren(float* p, VF a, int64_t n) { _mm256_maskstore_ps(p, vmask(n), a.v); }
inline VF vadd(VF a, VF b) { return {_mm256_add_ps(a.v, b.v)}; }
inline VF vsub(VF a, VF b) { return {_mm256_sub_ps(a.v, b.v)}; }
inline VF vmul(VF a, VF b) { return {_mm256_mul_ps(a.v, b.v)}; }
inline VF vdiv(VF a, VF b) { return {_mm256_div_ps(a.v, b.v)}; }
inline VF vmax(VF a, VF b) { return {_mm256_max_ps(a.v, b.v)}; }
inline VF vmin(VF a, VF b) { return {_mm256_min_ps(a.v, b.v)}; }
inline VF vfma(VF a, VF b, VF c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }   // a·b + c
inline VF vfnma(VF a, VF b, VF c) { return {_mm256_fnmadd_ps(a.v, b.v, c.v)}; } // c − a·b
inline float vsum(VF a) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}
inline float vhmax(VF a) {
  const __m128 s = _mm_max_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  const __m128 t = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(t, _mm_movehdup_ps(t)));
}
inline VF vround(VF a) { return {_mm256_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
// a · 2^n for integral n in [-126, 127] (the callers clamp): n added to the exponent of 1.0f.
inline VF vscale2(VF a, VF n) {
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n.v), _mm256_set1_epi32(127)), 23);
  return {_mm256_mul_ps(a.v, _mm256_castsi256_ps(e))};
}
// Round-to-nearest-even f32 -> bf16 (NaN-free), as calq::f32_to_bf16.
inline __m128i vcvt_bf16(VF a) {
  __m256i u = _mm256_castps_si256(a.v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  u = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
  return _mm_packus_epi32(_mm256_castsi256_si128(u), _mm256_extracti128_si256(u, 1));
}
inline void vstore_bf16(uint16_t* p, VF a) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), vcvt_bf16(a)); }
inline void vstoren_bf16(uint16_t* p, VF a, int64_t n) {
  alignas(16) uint16_t t[8];
  _mm_store_si128(reinterpret_cast<__m128i*>(t), vcvt_bf16(a));
  for (int64_t i = 0; i < n && i < 8; ++i) p[i] = t[i];
}
// exp(x) as simd_avx512.h's vexp (the same polynomial); x below ln(2^-126) gives 0 (AVX2 has no
// scalef, the exponent is built by hand and stays normal), above 88.7 inf.
inline VF vexp(VF x) {
  const __m256 tiny = _mm256_cmp_ps(x.v, _mm256_set1_ps(-87.33654f), _CMP_LT_OQ);
  x = vmin(vset1(88.72284f), vmax(vset1(-87.33654f), x));  // operands in this order: NaN stays NaN
  const VF n = vround(vmul(x, vset1(1.44269504088896341f)));
  VF r = vfnma(n, vset1(0.693359375f), x);
  r = vfnma(n, vset1(-2.12194440e-4f), r);
  VF p = vset1(1.98756912e-4f);
  p = vfma(p, r, vset1(1.39819994e-3f));
  p = vfma(p, r, vset1(8.33345205e-3f));
  p = vfma(p, r, vset1(4.16657962e-2f));
  p = vfma(p, r, vset1(1.66666657e-1f));
  p = vfma(p, r, vset1(0.5f));
  p = vfma(p, vmul(r, r), vadd(r, vset1(1.0f)));
  return {_mm256_andnot_ps(tiny, vscale2(p, n).v)};
}
// Lanes i with lo <= i < hi (lo, hi may lie outside [0, 8)).
inline VMask vrange(int64_t lo, int64_t hi) {
  const int a = int(lo < -1 ? -1 : lo > 8 ? 8 : lo), b = int(hi < 0 ? 0 : hi > 8 ? 8 : hi);
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(a), idx), _mm256_cmpgt_epi32(_mm256_set1_epi32(b), idx));
}
inline VF vmaskz(VMask m, VF a) { return {_mm256_and_ps(_mm256_castsi256_ps(m), a.v)}; }  // lanes outside m: 0
inline VF vmax_mask(VF acc, VMask m, VF a) {  // max in the lanes of m
  return {_mm256_blendv_ps(acc.v, _mm256_max_ps(acc.v, a.v), _mm256_castsi256_ps(m))};
}
inline VF vsqrt(VF a) { return {_mm256_sqrt_ps(a.v)}; }
// bf16(a) widened back to f32 (round to nearest even, as calq::f32_to_bf16; NaN-free).
inline VF vround_bf16(VF a) {
  __m256i u = _mm256_castps_si256(a.v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  u = _mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff)));
  return {_mm256_castsi256_ps(_mm256_and_si256(u, _mm256_set1_epi32(int(0xffff0000u))))};
}
