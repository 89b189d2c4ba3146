// Internal: the float-vector vocabulary of calq's runtime-dispatched kernels (simd_kernels.h), for
// AVX-512 (16 lanes). Include ONLY inside an anonymous namespace of a translation unit compiled
// for AVX-512 with `#pragma GCC target` (simd_avx512.cpp): every function has internal linkage, so
// no AVX-512 code can be picked by the linker for a caller on another CPU. simd_avx2.h has the
// same functions for 8 lanes; the kernels (simd_impl.h) are written once against them.
// (No include guard: a translation unit includes exactly one of the two, once.)

struct VF {
  __m512 v;
};
constexpr int kW = 16;  // lanes
using VMask = __mmask16;

inline VMask vmask(int64_t n) { return n >= 16 ? VMask(0xffff) : VMask((1u << n) - 1); }
inline VF vzero() { return {_mm512_setzero_ps()}; }
inline VF vset1(float x) { return {_mm512_set1_ps(x)}; }
inline VF vload(const float* p) { return {_mm512_loadu_ps(p)}; }
inline VF vloadn(const float* p, int64_t n) { return {_mm512_maskz_loadu_ps(vmask(n), p)}; }  // lanes >= n: 0
inline void vstore(float* p, VF a) { _mm512_storeu_ps(p, a.v); }
inline void vstoren(float* p, VF a, int64_t n) { _mm512_mask_storeu_ps(p, vmask(n), a.v); }
inline VF vadd(VF a, VF b) { return {_mm512_add_ps(a.v, b.v)}; }
inline VF vsub(VF a, VF b) { return {_mm512_sub_ps(a.v, b.v)}; }
inline VF vmul(VF a, VF b) { return {_mm512_mul_ps(a.v, b.v)}; }
inline VF vdiv(VF a, VF b) { return {_mm512_div_ps(a.v, b.v)}; }
inline VF vmax(VF a, VF b) { return {_mm512_max_ps(a.v, b.v)}; }
inline VF vmin(VF a, VF b) { return {_mm512_min_ps(a.v, b.v)}; }
inline VF vfma(VF a, VF b, VF c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }   // a·b + c
inline VF vfnma(VF a, VF b, VF c) { return {_mm512_fnmadd_ps(a.v, b.v, c.v)}; } // c − a·b
inline float vsum(VF a) { return _mm512_reduce_add_ps(a.v); }
inline float vhmax(VF a) { return _mm512_reduce_max_ps(a.v); }
inline VF vround(VF a) { return {_mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
// a · 2^n for integral n (|n| < 128 after the caller's clamp).
inline VF vscale2(VF a, VF n) { return {_mm512_scalef_ps(a.v, n.v)}; }
// Round-to-nearest-even f32 -> bf16 (NaN-free), as calq::f32_to_bf16: 16 lanes to 16 uint16.
inline void vstore_bf16(uint16_t* p, VF a) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), (__m256i)_mm512_cvtneps_pbh(a.v)); }
inline void vstoren_bf16(uint16_t* p, VF a, int64_t n) { _mm256_mask_storeu_epi16(p, vmask(n), (__m256i)_mm512_cvtneps_pbh(a.v)); }
// exp(x): 2^n · p(r), n = round(x·log2 e), |r| <= ln2/2, a degree-6 minimax polynomial (about 2
// ulp; the same as vec.h exp512), so -inf -> 0 and large x -> inf.
inline VF vexp(VF x) {
  x = vmin(vset1(89.0f), vmax(vset1(-104.0f), x));  // operands in this order: NaN stays NaN
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
  return vscale2(p, n);
}
// Lanes i with lo <= i < hi (lo, hi may lie outside [0, 16)).
inline VMask vrange(int64_t lo, int64_t hi) {
  const int64_t a = lo < 0 ? 0 : lo > 16 ? 16 : lo, b = hi < 0 ? 0 : hi > 16 ? 16 : hi;
  return VMask(vmask(b) & ~vmask(a));
}
inline VF vmaskz(VMask m, VF a) { return {_mm512_maskz_mov_ps(m, a.v)}; }            // lanes outside m: 0
inline VF vmax_mask(VF acc, VMask m, VF a) { return {_mm512_mask_max_ps(acc.v, m, acc.v, a.v)}; }  // max in m
inline VF vsqrt(VF a) { return {_mm512_sqrt_ps(a.v)}; }
// bf16(a) widened back to f32 (round to nearest even, as calq::f32_to_bf16; NaN-free).
inline VF vround_bf16(VF a) {
  return {_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(a.v)), 16))};
}
