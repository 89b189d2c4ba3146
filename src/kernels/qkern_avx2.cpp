// AVX2 + FMA + F16C micro-kernels of the quantized GEMMs (qkern.h), for x86-64-v3 CPUs without
// AVX-512 (and, forced with set_max_isa(Isa::Avx2), for testing that path on any machine).
// Compiled for that ISA whatever the build's -march; internal linkage only (see qkern_avx512.cpp).
//
// No bf16 products on AVX2: the bf16 semantics (x and, in the GEMM, w rounded to bf16; products
// exact; f32 accumulation) run as f32 FMAs on bf16-rounded values.
// GEMM: f32 panel of 32 outputs × 128 inputs (16 KiB), 6 × 16 register tile (12 ymm accumulators).
// GEMV: codes to f32 in registers (shift, mask, convert; 4-bit codes masked in place, gemv4),
// factored per group as on AVX-512.
// W4A8 (int8 activations): vpmaddubsw on the 4-bit codes, decode and prefill (the same tiles).
// W8A8: AVX2 has no u8×s8 dot product without saturation (vpmaddubsw saturates at 2^15), so
// activations are widened to int16 once per row block and vpmaddwd multiplies int16 pairs: exact.
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/gemm.h"  // HalfType
#include "kernels/qkern.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,bmi2"))), apply_to = function)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,bmi2")
#pragma GCC optimize("fp-contract=off")
#endif

namespace calq::qk {
namespace {

constexpr int MR = 6;
constexpr int64_t kPanelChunks = 16;  // 128 inputs × 32 outputs × 4 bytes = 16 KiB

inline __m256 load_scales8(const QW& w, int64_t tile, int64_t g, int h) {
  const size_t idx = size_t((tile * w.groups + g) * 16 + 8 * h);
  if (w.scale_f16) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w.scales) + idx)));
  return _mm256_loadu_ps(static_cast<const float*>(w.scales) + idx);
}
inline __m256 load_zeros8(const QW& w, int64_t tile, int64_t g, int h) {
  if (!w.zeros) return _mm256_set1_ps(w.zero_value);
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w.zeros + (tile * w.groups + g) * 16 + 8 * h)));
}
inline int64_t chunk_bytes(int storage) { return storage == 8 ? 128 : 64; }

// Codes of pair p for outputs 8h..8h+7 of a chunk: 16 words, output j at words 2j (input 2p) and
// 2j + 1 (input 2p + 1).
template <int S>
inline __m256i pair_codes8(const uint8_t* cp, const uint8_t* hb, int p, int h) {
  if constexpr (S == 8) {
    return _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(cp + 32 * p + 16 * h)));
  } else {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cp + 32 * h));
    __m256i q = _mm256_and_si256(_mm256_srli_epi16(v, 4 * p), _mm256_set1_epi16(0x000f));
    if constexpr (S == 5) {  // high bits 16h..16h+15 of pair p: one bit per word
      uint16_t m;
      std::memcpy(&m, hb + 4 * p + 2 * h, 2);
      const __m256i sel = _mm256_setr_epi16(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, -32768);
      const __m256i hit = _mm256_cmpeq_epi16(_mm256_and_si256(_mm256_set1_epi16(short(m)), sel), sel);
      q = _mm256_or_si256(q, _mm256_and_si256(hit, _mm256_set1_epi16(0x10)));
    }
    return q;
  }
}

inline void codes_to_f32(__m256i q, __m256& a, __m256& b) {
  a = _mm256_cvtepi32_ps(_mm256_and_si256(q, _mm256_set1_epi32(0xffff)));
  b = _mm256_cvtepi32_ps(_mm256_srli_epi32(q, 16));
}
inline __m256 dequant(__m256 q, __m256 s, __m256 z, bool min_form) {
  return min_form ? _mm256_add_ps(_mm256_mul_ps(q, s), z) : _mm256_mul_ps(s, _mm256_sub_ps(q, z));
}
inline __m256 round_bf16(__m256 x) {  // to bf16, nearest even, and back (finite inputs)
  __m256i u = _mm256_castps_si256(x);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  u = _mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff)));
  return _mm256_castsi256_ps(_mm256_and_si256(u, _mm256_set1_epi32(int(0xffff0000u))));
}

// f32 panel [input][32 outputs] of tile `tile` (outputs 16·tt..) over chunks [c0, c1).
template <int S>
void dequant_panel(const QW& w, int64_t tile, int tt, int64_t c0, int64_t c1, float* panel, bool rb) {
  int64_t g = -1;
  __m256 s[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()}, z[2] = {s[0], s[0]};
  for (int64_t c = c0; c < c1; ++c) {
    if (w.chunk_group[c] != g) {
      g = w.chunk_group[c];
      #pragma GCC unroll 8
      for (int h = 0; h < 2; ++h) s[h] = load_scales8(w, tile, g, h), z[h] = load_zeros8(w, tile, g, h);
    }
    const uint8_t* cp = w.codes + (tile * w.chunks + c) * chunk_bytes(S);
    const uint8_t* hb = S == 5 ? w.hbits + (tile * w.chunks + c) * 16 : nullptr;
    #pragma GCC unroll 8
    for (int p = 0; p < 4; ++p)
      #pragma GCC unroll 8
      for (int h = 0; h < 2; ++h) {
        __m256 a, b;
        codes_to_f32(pair_codes8<S>(cp, hb, p, h), a, b);
        a = dequant(a, s[h], z[h], w.min_form);
        b = dequant(b, s[h], z[h], w.min_form);
        if (rb) a = round_bf16(a), b = round_bf16(b);
        float* f = panel + ((c - c0) * 8 + 2 * p) * 32 + 16 * tt + 8 * h;
        _mm256_store_ps(f, a);
        _mm256_store_ps(f + 32, b);
      }
  }
}

// c[r][off, off + 16) (+)= Σ_i a[r][i] · panel[i][off..], r < R.
template <int R>
void tile_f32(const float* a, int64_t lda, const float* panel, int off, int64_t kk, float* c, int64_t ldc, bool add) {
  __m256 acc[R][2];
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int64_t i = 0; i < kk; ++i) {
    const __m256 b0 = _mm256_load_ps(panel + i * 32 + off), b1 = _mm256_load_ps(panel + i * 32 + off + 8);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m256 x = _mm256_broadcast_ss(a + r * lda + i);
      acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
    }
  }
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    float* cr = c + r * ldc + off;
    if (add) {
      acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_loadu_ps(cr));
      acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_loadu_ps(cr + 8));
    }
    _mm256_storeu_ps(cr, acc[r][0]);
    _mm256_storeu_ps(cr + 8, acc[r][1]);
  }
}

template <class TileFn>
void run_rows(int64_t rows, int rmax, TileFn&& tile) {
  int64_t r = 0;
  for (; r + rmax <= rows; r += rmax) tile(rmax, r);
  if (r < rows) tile(int(rows - r), r);
}

template <int S>
void gemm_f32_s(const QW& w, const float* a, int64_t lda, int64_t rows, int64_t block, float* c, int64_t ldc, void* panel,
                bool rb) {
  auto* pf = static_cast<float*>(panel);
  for (int64_t c0 = 0; c0 < w.chunks; c0 += kPanelChunks) {
    const int64_t c1 = c0 + kPanelChunks < w.chunks ? c0 + kPanelChunks : w.chunks;
    dequant_panel<S>(w, 2 * block, 0, c0, c1, pf, rb);
    dequant_panel<S>(w, 2 * block + 1, 1, c0, c1, pf, rb);
    const int64_t kk = (c1 - c0) * 8;
    run_rows(rows, MR, [&](int R, int64_t r) {
      for (int off = 0; off < 32; off += 16) {
        const float* ar = a + r * lda + c0 * 8;
        float* cr = c + r * ldc;
        switch (R) {
          case 1: tile_f32<1>(ar, lda, pf, off, kk, cr, ldc, c0 > 0); break;
          case 2: tile_f32<2>(ar, lda, pf, off, kk, cr, ldc, c0 > 0); break;
          case 3: tile_f32<3>(ar, lda, pf, off, kk, cr, ldc, c0 > 0); break;
          case 4: tile_f32<4>(ar, lda, pf, off, kk, cr, ldc, c0 > 0); break;
          case 5: tile_f32<5>(ar, lda, pf, off, kk, cr, ldc, c0 > 0); break;
          default: tile_f32<6>(ar, lda, pf, off, kk, cr, ldc, c0 > 0); break;
        }
      }
    });
  }
}

void gemm_f32(const QW& w, const float* a, int64_t lda, int64_t rows, int64_t block, float* c, int64_t ldc, void* panel,
              bool rb) {
  switch (w.storage) {
    case 4: return gemm_f32_s<4>(w, a, lda, rows, block, c, ldc, panel, rb);
    case 5: return gemm_f32_s<5>(w, a, lda, rows, block, c, ldc, panel, rb);
    default: return gemm_f32_s<8>(w, a, lda, rows, block, c, ldc, panel, rb);
  }
}

// ---- GEMV ---------------------------------------------------------------------------------------

// One group's sums of 8 outputs into yp: y += s·(Σ a·q − z·Σ a), or (min form) y += d·Σ a·q + m·Σ a.
inline void apply_group(__m256 s, __m256 z, bool min_form, __m256 sum, float xsum, float* yp) {
  const __m256 xs = _mm256_set1_ps(xsum);
  const __m256 v = _mm256_load_ps(yp);
  _mm256_store_ps(yp, min_form ? _mm256_fmadd_ps(z, xs, _mm256_fmadd_ps(s, sum, v))
                               : _mm256_fmadd_ps(s, _mm256_fnmadd_ps(z, xs, sum), v));
}

// R rows × TB tiles at tile0: Σ_{i∈g} a_i q_i per group in f32, then the group's scale and zero.
template <int S, int R, int TB>
void gemv_tiles(const QW& w, const float* a, int64_t lda, const float* xsum, int64_t tile0, float* y, int64_t ldy) {
  alignas(32) float ya[R][TB * 16] = {};
  for (int64_t c = 0; c < w.chunks;) {
    const int32_t g = w.chunk_group[c];
    int64_t ce = c + 1;
    while (ce < w.chunks && w.chunk_group[ce] == g) ++ce;
    __m256 acc[R][TB][2];
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
      #pragma GCC unroll 8
      for (int t = 0; t < TB; ++t) acc[r][t][0] = acc[r][t][1] = _mm256_setzero_ps();
    for (; c < ce; ++c)
      #pragma GCC unroll 8
      for (int p = 0; p < 4; ++p)
        #pragma GCC unroll 8
        for (int t = 0; t < TB; ++t) {
          const uint8_t* cp = w.codes + ((tile0 + t) * w.chunks + c) * chunk_bytes(S);
          const uint8_t* hb = S == 5 ? w.hbits + ((tile0 + t) * w.chunks + c) * 16 : nullptr;
          #pragma GCC unroll 8
          for (int h = 0; h < 2; ++h) {
            __m256 qa, qb;
            codes_to_f32(pair_codes8<S>(cp, hb, p, h), qa, qb);
            #pragma GCC unroll 8
            for (int r = 0; r < R; ++r) {
              const float* ar = a + r * lda + c * 8 + 2 * p;
              acc[r][t][h] = _mm256_fmadd_ps(_mm256_broadcast_ss(ar + 1), qb,
                                             _mm256_fmadd_ps(_mm256_broadcast_ss(ar), qa, acc[r][t][h]));
            }
          }
        }
    #pragma GCC unroll 8
    for (int t = 0; t < TB; ++t)
      #pragma GCC unroll 8
      for (int h = 0; h < 2; ++h) {
        const __m256 s = load_scales8(w, tile0 + t, g, h), z = load_zeros8(w, tile0 + t, g, h);
        #pragma GCC unroll 8
        for (int r = 0; r < R; ++r) apply_group(s, z, w.min_form, acc[r][t][h], xsum[r * w.groups + g], &ya[r][t * 16 + 8 * h]);
      }
  }
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r) std::memcpy(y + r * ldy + tile0 * 16, ya[r], sizeof(ya[r]));
}

// 4-bit codes, decode. In the packed layout an output's dword holds input 2p's code at bits
// 4p..4p+3 and input 2p + 1's at 16 + 4p..19 + 4p (pair_codes8). Masking a code in place and
// converting the dword gives c·2^e exactly (e its bit offset; input 7's is shifted down to e = 0
// instead, as bit 31 is the sign), and x·2^-e, formed once per call (gemv4_scaled_acts), times it
// is x·c exactly (powers of two, and x·2^-e stays normal for |x| >= 2^-102; smaller x lose low
// bits, far below their share of the sum): the same products as gemv_tiles, with 2 integer ops
// per 8 codes instead of 4. One row keeps two accumulator sets (even
// and odd inputs) so 8 FMA chains are in flight.
constexpr int kNibbleExp[8] = {0, 16, 4, 20, 8, 24, 12, 0};

inline __m256 nibble_f32(__m256i v, int input) {
  if (input == 7) return _mm256_cvtepi32_ps(_mm256_srli_epi32(v, 28));
  return _mm256_cvtepi32_ps(_mm256_and_si256(v, _mm256_set1_epi32(0xf << kNibbleExp[input])));
}

// out[r·kp + i] = a[r·lda + i] · 2^-kNibbleExp[i mod 8], kp = 8·chunks.
void gemv4_scaled_acts(const float* a, int64_t lda, int rows, int64_t kp, float* out) {
  alignas(32) float f[8];
  for (int i = 0; i < 8; ++i) f[i] = 1.0f / float(1 << kNibbleExp[i]);
  const __m256 fv = _mm256_load_ps(f);
  for (int r = 0; r < rows; ++r)
    for (int64_t i = 0; i < kp; i += 8) _mm256_storeu_ps(out + r * kp + i, _mm256_mul_ps(_mm256_loadu_ps(a + r * lda + i), fv));
}

template <int R, int TB>
void gemv4_tiles(const QW& w, const float* as, const float* xsum, int64_t tile0, float* y, int64_t ldy) {
  constexpr int P = R == 1 ? 2 : 1;
  const int64_t kp = 8 * w.chunks;
  alignas(32) float ya[R][TB * 16] = {};
  for (int64_t c = 0; c < w.chunks;) {
    const int32_t g = w.chunk_group[c];
    int64_t ce = c + 1;
    while (ce < w.chunks && w.chunk_group[ce] == g) ++ce;
    __m256 acc[R][TB][2][P];
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
      #pragma GCC unroll 8
      for (int t = 0; t < TB; ++t)
        #pragma GCC unroll 2
        for (int h = 0; h < 2; ++h)
          #pragma GCC unroll 2
          for (int e = 0; e < P; ++e) acc[r][t][h][e] = _mm256_setzero_ps();
    for (; c < ce; ++c)
      #pragma GCC unroll 8
      for (int p = 0; p < 4; ++p)
        #pragma GCC unroll 8
        for (int t = 0; t < TB; ++t)
          #pragma GCC unroll 2
          for (int h = 0; h < 2; ++h) {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.codes + ((tile0 + t) * w.chunks + c) * 64 + 32 * h));
            const __m256 qa = nibble_f32(v, 2 * p), qb = nibble_f32(v, 2 * p + 1);
            #pragma GCC unroll 8
            for (int r = 0; r < R; ++r) {
              const float* ar = as + r * kp + c * 8 + 2 * p;
              acc[r][t][h][0] = _mm256_fmadd_ps(_mm256_broadcast_ss(ar), qa, acc[r][t][h][0]);
              acc[r][t][h][P - 1] = _mm256_fmadd_ps(_mm256_broadcast_ss(ar + 1), qb, acc[r][t][h][P - 1]);
            }
          }
    #pragma GCC unroll 8
    for (int t = 0; t < TB; ++t)
      #pragma GCC unroll 8
      for (int h = 0; h < 2; ++h) {
        const __m256 s = load_scales8(w, tile0 + t, g, h), z = load_zeros8(w, tile0 + t, g, h);
        #pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          const __m256 sum = P == 2 ? _mm256_add_ps(acc[r][t][h][0], acc[r][t][h][P - 1]) : acc[r][t][h][0];
          apply_group(s, z, w.min_form, sum, xsum[r * w.groups + g], &ya[r][t * 16 + 8 * h]);
        }
      }
  }
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r) std::memcpy(y + r * ldy + tile0 * 16, ya[r], sizeof(ya[r]));
}

template <int R>
void gemv4_r(const QW& w, const float* as, const float* xsum, int64_t t0, int64_t t1, float* y, int64_t ldy) {
  for (int64_t t = t0; t < t1; t += 2) {
    if constexpr (R <= 2) {
      gemv4_tiles<R, 2>(w, as, xsum, t, y, ldy);
    } else {
      gemv4_tiles<R, 1>(w, as, xsum, t, y, ldy);
      gemv4_tiles<R, 1>(w, as, xsum, t + 1, y, ldy);
    }
  }
}

void gemv4(const QW& w, const float* a, int64_t lda, int rows, const float* xsum, int64_t t0, int64_t t1, float* y,
           int64_t ldy) {
  thread_local std::vector<float> scaled;  // grow-only: rows · kp floats per calling thread
  const int64_t kp = 8 * w.chunks;
  if (scaled.size() < size_t(rows * kp)) scaled.resize(size_t(rows * kp));
  gemv4_scaled_acts(a, lda, rows, kp, scaled.data());
  switch (rows) {
    case 1: return gemv4_r<1>(w, scaled.data(), xsum, t0, t1, y, ldy);
    case 2: return gemv4_r<2>(w, scaled.data(), xsum, t0, t1, y, ldy);
    case 3: return gemv4_r<3>(w, scaled.data(), xsum, t0, t1, y, ldy);
    default: return gemv4_r<4>(w, scaled.data(), xsum, t0, t1, y, ldy);
  }
}

template <int S, int R>
void gemv_r(const QW& w, const float* a, int64_t lda, const float* xsum, int64_t t0, int64_t t1, float* y, int64_t ldy) {
  for (int64_t t = t0; t < t1; t += 2) {
    if constexpr (R <= 2) {
      gemv_tiles<S, R, 2>(w, a, lda, xsum, t, y, ldy);
    } else {
      gemv_tiles<S, R, 1>(w, a, lda, xsum, t, y, ldy);
      gemv_tiles<S, R, 1>(w, a, lda, xsum, t + 1, y, ldy);
    }
  }
}

template <int S>
void gemv_s(const QW& w, const float* a, int64_t lda, int rows, const float* xsum, int64_t t0, int64_t t1, float* y, int64_t ldy) {
  switch (rows) {
    case 1: return gemv_r<S, 1>(w, a, lda, xsum, t0, t1, y, ldy);
    case 2: return gemv_r<S, 2>(w, a, lda, xsum, t0, t1, y, ldy);
    case 3: return gemv_r<S, 3>(w, a, lda, xsum, t0, t1, y, ldy);
    default: return gemv_r<S, 4>(w, a, lda, xsum, t0, t1, y, ldy);
  }
}

void gemv_f32(const QW& w, const float* a, int64_t lda, int rows, const float* xsum, int64_t t0, int64_t t1, float* y, int64_t ldy) {
  switch (w.storage) {
    case 4: return gemv4(w, a, lda, rows, xsum, t0, t1, y, ldy);
    case 5: return gemv_s<5>(w, a, lda, rows, xsum, t0, t1, y, ldy);
    default: return gemv_s<8>(w, a, lda, rows, xsum, t0, t1, y, ldy);
  }
}

// ---- W8A8 ---------------------------------------------------------------------------------------

constexpr int kW8Rows = 4;

// int32 sums of 8 outputs (group cg of the 32-output block) for R rows of int16 activations xw.
template <int R>
void tile_w8(const W8& w, const int16_t* xw, int64_t kq, int64_t block, int cg, __m256i out[R]) {
  const int64_t nq = w.kq / 4;
  const int8_t* bp = w.w + (2 * block + cg / 2) * nq * 64 + 32 * (cg % 2);
  __m256i acc[R][2];
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  for (int64_t q = 0; q < nq; ++q) {
    // 4 outputs × 4 inputs each: words (o, i0..i3) -> dwords (o: i0 i1), (o: i2 i3).
    const __m256i b0 = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(bp + q * 64)));
    const __m256i b1 = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(bp + q * 64 + 16)));
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      int64_t x4;
      std::memcpy(&x4, xw + r * kq + 4 * q, 8);
      const __m256i x = _mm256_set1_epi64x(x4);  // (i0 i1), (i2 i3) repeated
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(x, b0));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(x, b1));
    }
  }
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r)  // adjacent dwords hold the two halves of one output
    out[r] = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[r][0], acc[r][1]), 0xD8);
}

template <int R>
void rows_w8(const W8& w, const int16_t* xw, const float* sx, int64_t block, float* c, int64_t ldc) {
  for (int cg = 0; cg < 4; ++cg) {
    __m256i sums[R];
    tile_w8<R>(w, xw, w.kq, block, cg, sums);
    const __m256 sw = _mm256_loadu_ps(w.scale + 32 * block + 8 * cg);
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 f = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(sums[r]), _mm256_set1_ps(sx[r])), sw);
      _mm256_storeu_ps(c + r * ldc + 8 * cg, f);
    }
  }
}

void w8a8(const W8& w, const int8_t* xq, int64_t ldq, const float* sx, int64_t rows, int64_t block, float* c, int64_t ldc,
          void* scratch) {
  auto* xw = static_cast<int16_t*>(scratch);  // kW8Rows rows of int16 activations
  run_rows(rows, kW8Rows, [&](int R, int64_t r) {
    for (int i = 0; i < R; ++i) {
      const int8_t* src = xq + (r + i) * ldq;
      int16_t* dst = xw + i * w.kq;
      int64_t k = 0;
      for (; k + 16 <= w.kq; k += 16)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + k), _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + k))));
      for (; k < w.kq; ++k) dst[k] = src[k];
    }
    switch (R) {
      case 1: rows_w8<1>(w, xw, sx + r, block, c + r * ldc, ldc); break;
      case 2: rows_w8<2>(w, xw, sx + r, block, c + r * ldc, ldc); break;
      case 3: rows_w8<3>(w, xw, sx + r, block, c + r * ldc, ldc); break;
      default: rows_w8<4>(w, xw, sx + r, block, c + r * ldc, ldc); break;
    }
  });
}

bool quant_act(const float* x, int64_t k, float static_scale, int8_t* q, int64_t kq, float* scale) {
  const __m256 inf = _mm256_set1_ps(__builtin_inff()), absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 bad = _mm256_setzero_ps(), m = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    const __m256 ax = _mm256_and_ps(_mm256_loadu_ps(x + i), absmask);
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(ax, inf, _CMP_NLT_UQ));  // inf or NaN
    m = _mm256_max_ps(m, ax);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, m);
  float amax = 0.0f;
  bool finite = _mm256_movemask_ps(bad) == 0;
  for (float v : lanes) amax = amax > v ? amax : v;
  for (int64_t j = i; j < k; ++j) {
    const float a = __builtin_fabsf(x[j]);
    finite = finite && a < __builtin_inff();
    amax = amax > a ? amax : a;
  }
  const float s = static_scale > 0.0f ? static_scale : (amax > 1e-5f ? amax : 1e-5f) / 127.0f;
  const __m256 vs = _mm256_set1_ps(s), lo = _mm256_set1_ps(-128.0f), hi = _mm256_set1_ps(127.0f);
  for (i = 0; i + 8 <= k; i += 8) {
    // Clamp, then round half to even (MXCSR default): the reference's round-then-clamp.
    const __m256 v = _mm256_min_ps(_mm256_max_ps(_mm256_div_ps(_mm256_loadu_ps(x + i), vs), lo), hi);
    const __m256i r = _mm256_cvtps_epi32(v);
    const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(q + i), _mm_packs_epi16(w16, w16));
  }
  for (; i < k; ++i) {
    float v = x[i] / s;
    v = v < -128.0f ? -128.0f : (v > 127.0f ? 127.0f : v);
    q[i] = int8_t(_mm_cvtss_si32(_mm_set_ss(v)));
  }
  for (i = k; i < kq; ++i) q[i] = 0;
  *scale = s;
  return finite;
}

// ---- W4A8: 4-bit codes × int8 activations ------------------------------------------------------

inline int32_t hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

bool quant_blocks(const float* x, int64_t kp, int8_t* xq, float* d, int32_t* qsum, bool kernel_order) {
  const __m256i order = _mm256_setr_epi8(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15, 0, 4, 1, 5, 2, 6, 3, 7, 8,
                                         12, 9, 13, 10, 14, 11, 15);
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)), inf = _mm256_set1_ps(__builtin_inff());
  const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
  // The two packs leave the 4-byte groups in the order 0 2 4 6 1 3 5 7.
  const __m256i unpack = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  __m256 bad = _mm256_setzero_ps();
  for (int64_t b = 0; b < kp / 32; ++b) {
    __m256 v[4], m = _mm256_setzero_ps();
    for (int j = 0; j < 4; ++j) {
      v[j] = _mm256_loadu_ps(x + 32 * b + 8 * j);
      const __m256 a = _mm256_and_ps(v[j], absmask);
      bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, inf, _CMP_NLT_UQ));
      m = _mm256_max_ps(m, a);
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, m);
    float amax = 0.0f;
    for (float l : lanes) amax = amax > l ? amax : l;
    const float db = amax / 127.0f;
    d[b] = db;
    if (!(amax > 0.0f)) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(xq + 32 * b), _mm256_setzero_si256());
      qsum[b] = 0;
      continue;
    }
    const __m256 vd = _mm256_set1_ps(db);
    __m256i q[4];
    for (int j = 0; j < 4; ++j) q[j] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_div_ps(v[j], vd), lo), hi));
    qsum[b] = hsum_epi32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
    const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    const __m256i natural = _mm256_permutevar8x32_epi32(bytes, unpack);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(xq + 32 * b), kernel_order ? _mm256_shuffle_epi8(natural, order) : natural);
  }
  return _mm256_movemask_ps(bad) == 0;
}

// The f32 steps after one 32-input block's exact int32 sums Σ q·code (outputs 8h..8h+7 of tile t,
// group g), as qgemm_int8_blocks_ref orders them: y += (s·d_b)·(Σ − z·qsum_b), or for min-form
// groups y += d_b·(s·Σ + m·qsum_b).
template <int R, int TB>
inline void a8_block_step(const QW& w, int64_t tile, int t, int32_t g, int h, int64_t blk, const __m256i (&sums)[R],
                          const float* d, const int32_t* qsum, int64_t nblk, float (&ya)[R][TB * 16]) {
  const __m256 s = load_scales8(w, tile, g, h), z = load_zeros8(w, tile, g, h);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const __m256 db = _mm256_set1_ps(d[r * nblk + blk]), qb = _mm256_set1_ps(float(qsum[r * nblk + blk]));
    const __m256 f = _mm256_cvtepi32_ps(sums[r]);
    float* yp = &ya[r][t * 16 + 8 * h];
    const __m256 prev = _mm256_load_ps(yp);
    _mm256_store_ps(yp, w.min_form ? _mm256_fmadd_ps(db, _mm256_fmadd_ps(s, f, _mm256_mul_ps(z, qb)), prev)
                                   : _mm256_fmadd_ps(_mm256_mul_ps(s, db), _mm256_fnmadd_ps(z, qb, f), prev));
  }
}

// Outputs 8h..8h+7 of TB tiles: vpmaddubsw (u8 codes <= 15 × s8: |pair sums| <= 3810) summed in
// int16 over the block's 4 chunks (<= 30480 < 2^15), then vpmaddwd by 1 into int32 per output.
// y points at the first tile's column (16·tile0) of row 0. KO: xq in kernel order (qkern.h
// quant_blocks: each chunk's inputs as 0 4 1 5 2 6 3 7), the two dwords broadcast as they are.
template <int R, int TB, bool KO = false>
void gemv_a8_tiles(const QW& w, const int8_t* xq, int64_t ldq, const float* d, const int32_t* qsum, int64_t nblk,
                   int64_t tile0, float* y, int64_t ldy) {
  alignas(32) float ya[R][TB * 16] = {};
  const __m256i m0f = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
  for (int64_t blk = 0; blk < nblk; ++blk) {
    const int32_t g = w.chunk_group[4 * blk];
#pragma GCC unroll 8
    for (int t = 0; t < TB; ++t)
#pragma GCC unroll 8
      for (int h = 0; h < 2; ++h) {
        __m256i acc[R];
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int cc = 0; cc < 4; ++cc) {
          const int64_t c = 4 * blk + cc;
          const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.codes + ((tile0 + t) * w.chunks + c) * 64 + 32 * h));
          const __m256i lo = _mm256_and_si256(v, m0f), hi = _mm256_and_si256(_mm256_srli_epi32(v, 4), m0f);
#pragma GCC unroll 8
          for (int r = 0; r < R; ++r) {
            // Inputs 0 4 1 5 / 2 6 3 7 of the chunk in every dword.
            __m256i xa, xb;
            if constexpr (KO) {
              int32_t qa, qb;
              std::memcpy(&qa, xq + r * ldq + c * 8, 4);
              std::memcpy(&qb, xq + r * ldq + c * 8 + 4, 4);
              xa = _mm256_set1_epi32(qa), xb = _mm256_set1_epi32(qb);
            } else {  // natural order: the chunk's 8 activations in every qword, then shuffled
              int64_t x8;
              std::memcpy(&x8, xq + r * ldq + c * 8, 8);
              const __m256i xx = _mm256_set1_epi64x(x8);
              xa = _mm256_shuffle_epi8(xx, _mm256_set1_epi32(0x05010400));
              xb = _mm256_shuffle_epi8(xx, _mm256_set1_epi32(0x07030602));
            }
            acc[r] = _mm256_add_epi16(acc[r], _mm256_maddubs_epi16(lo, xa));
            acc[r] = _mm256_add_epi16(acc[r], _mm256_maddubs_epi16(hi, xb));
          }
        }
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) acc[r] = _mm256_madd_epi16(acc[r], ones);
        a8_block_step<R, TB>(w, tile0 + t, t, g, h, blk, acc, d, qsum, nblk, ya);
      }
  }
  for (int r = 0; r < R; ++r) std::memcpy(y + r * ldy, ya[r], sizeof(ya[r]));
}

template <int R>
void gemv_a8_r(const QW& w, const int8_t* xq, int64_t ldq, const float* d, const int32_t* qsum, int64_t nblk, int64_t t0,
               int64_t t1, float* y, int64_t ldy) {
  for (int64_t t = t0; t < t1; t += 2) gemv_a8_tiles<R, 2>(w, xq, ldq, d, qsum, nblk, t, y + 16 * t, ldy);
}

// ---- int8 activations × 8-bit codes (GGUF Q8_0, 8-bit groups) ------------------------------------

// 16 outputs × 4 inputs of a chunk's two pairs of inputs (pair_codes8's layout: 32 bytes a pair,
// output j's two codes at bytes 2j, 2j + 1) as s8 code − 128, one output a dword: lo holds outputs
// 0-3 and 8-11, hi outputs 4-7 and 12-15 (vpunpck*wd work within 128-bit lanes).
inline void codes_s8_quads(const uint8_t* pairs, __m256i& lo, __m256i& hi) {
  const __m256i flip = _mm256_set1_epi8(char(0x80));
  const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pairs));
  const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pairs + 32));
  lo = _mm256_xor_si256(_mm256_unpacklo_epi16(a, b), flip);
  hi = _mm256_xor_si256(_mm256_unpackhi_epi16(a, b), flip);
}

// Σ over a dword's 4 inputs of w·x for s8 w (|w| as u8 <= 128) and x (|x| <= 127): llama.cpp's
// sign trick, vpmaddubsw(|w|, x·sign(w)), whose int16 pair sums stay <= 2·128·127 < 2^15, then
// vpmaddwd by 1 into int32.
inline __m256i dot_s8_quads(__m256i w, __m256i aw, __m256i x) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(x, w)), _mm256_set1_epi16(1));
}

// TB tiles × R rows with 8-bit codes, natural-order activations: per chunk and tile the codes as
// s8 quads (codes_s8_quads), per row two dword broadcasts (inputs 0-3, 4-7) and dot_s8_quads:
// exact int32 Σ q·(code − 128) per block, + 128·qsum_b = Σ q·code, then a8_block_step's f32 steps:
// bitwise qgemm_int8_blocks_ref. y at the first tile's column.
template <int R, int TB>
void gemv_a8_s8_tiles(const QW& w, const int8_t* xq, int64_t ldq, const float* d, const int32_t* qsum, int64_t nblk,
                      int64_t tile0, float* y, int64_t ldy) {
  alignas(32) float ya[R][TB * 16] = {};
  for (int64_t blk = 0; blk < nblk; ++blk) {
    const int32_t g = w.chunk_group[4 * blk];
#pragma GCC unroll 8
    for (int t = 0; t < TB; ++t) {
      __m256i acc[R][2];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
#pragma GCC unroll 4
      for (int cc = 0; cc < 4; ++cc) {
        const int64_t c = 4 * blk + cc;
        const uint8_t* cp = w.codes + ((tile0 + t) * w.chunks + c) * 128;
#pragma GCC unroll 2
        for (int half = 0; half < 2; ++half) {  // inputs 0-3 (pairs 0, 1), then 4-7 (pairs 2, 3)
          __m256i lo, hi;
          codes_s8_quads(cp + 64 * half, lo, hi);
          const __m256i alo = _mm256_abs_epi8(lo), ahi = _mm256_abs_epi8(hi);
#pragma GCC unroll 8
          for (int r = 0; r < R; ++r) {
            int32_t x4;
            std::memcpy(&x4, xq + r * ldq + c * 8 + 4 * half, 4);
            const __m256i x = _mm256_set1_epi32(x4);
            acc[r][0] = _mm256_add_epi32(acc[r][0], dot_s8_quads(lo, alo, x));
            acc[r][1] = _mm256_add_epi32(acc[r][1], dot_s8_quads(hi, ahi, x));
          }
        }
      }
      __m256i s0[R], s1[R];  // outputs 0-7, 8-15
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m256i q128 = _mm256_set1_epi32(128 * qsum[r * nblk + blk]);
        const __m256i a = _mm256_add_epi32(acc[r][0], q128), b = _mm256_add_epi32(acc[r][1], q128);
        s0[r] = _mm256_permute2x128_si256(a, b, 0x20);
        s1[r] = _mm256_permute2x128_si256(a, b, 0x31);
      }
      a8_block_step<R, TB>(w, tile0 + t, t, g, 0, blk, s0, d, qsum, nblk, ya);
      a8_block_step<R, TB>(w, tile0 + t, t, g, 1, blk, s1, d, qsum, nblk, ya);
    }
  }
  for (int r = 0; r < R; ++r) std::memcpy(y + r * ldy, ya[r], sizeof(ya[r]));
}

// Decode with 8-bit codes (qkern.h gemv_a8_s8): tiles [t0, t1), two at a time.
void gemv_a8_s8(const QW& w, const int8_t* xq, int64_t ldq, const float* d, const int32_t* qsum, int64_t nblk, int rows,
                int64_t t0, int64_t t1, float* y, int64_t ldy) {
  for (int64_t t = t0; t < t1; t += 2) {
    float* yt = y + 16 * t;
    switch (rows) {
      case 1: gemv_a8_s8_tiles<1, 2>(w, xq, ldq, d, qsum, nblk, t, yt, ldy); break;
      case 2: gemv_a8_s8_tiles<2, 2>(w, xq, ldq, d, qsum, nblk, t, yt, ldy); break;
      case 3: gemv_a8_s8_tiles<3, 2>(w, xq, ldq, d, qsum, nblk, t, yt, ldy); break;
      default: gemv_a8_s8_tiles<4, 2>(w, xq, ldq, d, qsum, nblk, t, yt, ldy); break;
    }
  }
}

void gemv_a8(const QW& w, const int8_t* xq, int64_t ldq, const float* d, const int32_t* qsum, int64_t nblk, int rows,
             int64_t t0, int64_t t1, float* y, int64_t ldy) {
  switch (rows) {
    case 1: return gemv_a8_r<1>(w, xq, ldq, d, qsum, nblk, t0, t1, y, ldy);
    case 2: return gemv_a8_r<2>(w, xq, ldq, d, qsum, nblk, t0, t1, y, ldy);
    case 3: return gemv_a8_r<3>(w, xq, ldq, d, qsum, nblk, t0, t1, y, ldy);
    default: return gemv_a8_r<4>(w, xq, ldq, d, qsum, nblk, t0, t1, y, ldy);
  }
}

// W4A8 prefill: the decode kernel's arithmetic on the block's two tiles with kernel-order
// activations, 4 rows at a time, so the block's codes (kp/2 · 32 bytes) stay in L1/L2 across all
// rows. Bitwise gemv_a8, hence qgemm_int8_blocks_ref. (No prefill kernel for 8-bit codes: the same
// tile over 4 rows — gemv_a8_s8_tiles — ran 0.85-0.95x the W8A16 float path at the llama-1b
// shapes, bench_qgemm q8_0-a8 against q8_0 on Zen 3: 11 uops per 64 products a row, where the
// 4-bit tile needs 6.)
void gemm_a8(const QW& w, const int8_t* xq, int64_t ldq, const float* d, const int32_t* qsum, int64_t nblk, int64_t rows,
             int64_t block, float* c, int64_t ldc) {
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4)
    gemv_a8_tiles<4, 2, true>(w, xq + r * ldq, ldq, d + r * nblk, qsum + r * nblk, nblk, 2 * block, c + r * ldc, ldc);
  const int64_t rest = rows - r;
  const int8_t* xr = xq + r * ldq;
  if (rest == 3) gemv_a8_tiles<3, 2, true>(w, xr, ldq, d + r * nblk, qsum + r * nblk, nblk, 2 * block, c + r * ldc, ldc);
  if (rest == 2) gemv_a8_tiles<2, 2, true>(w, xr, ldq, d + r * nblk, qsum + r * nblk, nblk, 2 * block, c + r * ldc, ldc);
  if (rest == 1) gemv_a8_tiles<1, 2, true>(w, xr, ldq, d + r * nblk, qsum + r * nblk, nblk, 2 * block, c + r * ldc, ldc);
}

// ---- float weights kept as 16-bit rows (qkern.h gemv_bf16_rows, gemv_f16_rows) ------------------

// 8 bf16 values widened to f32: the bits moved to the upper half (exact).
inline __m256 bf16x8(const uint16_t* p) {
  const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

// 8 values of the row format T widened to f32 (both exact; f16 by F16C's vcvtph2ps).
template <HalfType T>
inline __m256 half8(const uint16_t* p) {
  if constexpr (T == HalfType::F16) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  else return bf16x8(p);
}

template <HalfType T>
inline float half_value(uint16_t b) {
  if constexpr (T == HalfType::F16) return _cvtsh_ss(b);
  const uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float hsum_ps(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

// OUTS outputs (rows of W) against one activation row: OUTS independent FMA chains, each weight
// read once from memory (the caller loops the activation rows inside, over the same few rows of W,
// which then come from L1/L2). 8 rows of W in flight decoded 0-13 % faster than 4 (noisy; Zen 3).
template <int OUTS, HalfType T>
void dot_half_rows(const uint16_t* w, int64_t k, const float* x, float* out) {
  const int64_t k8 = k & ~int64_t(7);
  __m256 acc[OUTS];
  for (int j = 0; j < OUTS; ++j) acc[j] = _mm256_setzero_ps();
  for (int64_t i = 0; i < k8; i += 8) {
    const __m256 xv = _mm256_loadu_ps(x + i);
    for (int j = 0; j < OUTS; ++j) acc[j] = _mm256_fmadd_ps(half8<T>(w + j * k + i), xv, acc[j]);
  }
  for (int j = 0; j < OUTS; ++j) {
    float s = hsum_ps(acc[j]);
    for (int64_t i = k8; i < k; ++i) s += x[i] * half_value<T>(w[j * k + i]);
    out[j] = s;
  }
}

template <HalfType T>
void gemv_half_rows(const uint16_t* w, int64_t k, const float* x, int64_t ldx, int rows, int64_t o0, int64_t o1,
                    float* y, int64_t ldy) {
  float s[8];
  int64_t o = o0;
  for (; o + 8 <= o1; o += 8)
    for (int r = 0; r < rows; ++r) {
      dot_half_rows<8, T>(w + o * k, k, x + r * ldx, s);
      for (int j = 0; j < 8; ++j) y[r * ldy + o + j] = s[j];
    }
  for (; o + 4 <= o1; o += 4)
    for (int r = 0; r < rows; ++r) {
      dot_half_rows<4, T>(w + o * k, k, x + r * ldx, s);
      for (int j = 0; j < 4; ++j) y[r * ldy + o + j] = s[j];
    }
  for (; o < o1; ++o)
    for (int r = 0; r < rows; ++r) dot_half_rows<1, T>(w + o * k, k, x + r * ldx, y + r * ldy + o);
}

}  // namespace
}  // namespace calq::qk

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

namespace calq::qk {
const Kernels& kernels_avx2() {
  static const Kernels k{nullptr, gemm_f32, nullptr, gemv_f32, w8a8, quant_act, quant_blocks, gemv_a8, gemm_a8, nullptr, nullptr,
                         gemv_a8_s8, nullptr, gemv_half_rows<HalfType::BF16>, gemv_half_rows<HalfType::F16>, nullptr};
  return k;
}
}  // namespace calq::qk
