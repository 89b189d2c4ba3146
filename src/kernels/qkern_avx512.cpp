// AVX-512 micro-kernels of the quantized GEMMs (qkern.h): F, BW, VL, DQ, BF16 and VNNI.
// Compiled for that ISA whatever the build's -march (the target pragma below); called only when
// the CPU has it (kernels/isa.h). Everything here has internal linkage, so no function compiled
// for AVX-512 can be picked by the linker for a caller on another CPU.
//
// GEMM (prefill, many rows): a 32-output block at a time. Its weights are dequantized once per
// k-panel of 256 inputs into bf16 (vdpbf16ps pair layout, 16 KiB: L1) or f32, then a 12 × 32
// register tile (24 zmm accumulators) runs over all rows: 12 broadcasts + 2 loads per 24
// vdpbf16ps/FMA. The dequantization costs ~10 instructions per 32 weights, once for all rows.
// GEMV (decode, 1-4 rows): weights streamed once, dequantized in registers. bf16: a code q becomes
// the bf16 value 128 + q with one shift and one ternary-logic op (0x4300 | q is exactly 128 + q),
// vdpbf16ps accumulates Σ x·(128 + q) per group, and the group's scale and zero point are applied
// once: s·(Σ x(128 + q) − (128 + z)·Σ x). Codes stay exact; only x is rounded to bf16.
// W8A8: vpdpbusd multiplies u8 by s8, so the int8 activations are shifted to u8 (x + 128, one xor
// of the sign bits) and 128·Σ_k w is subtracted per output afterwards; the int32 sum is exact.
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 bug 105593: _mm512_undefined_* in the intrinsics headers trip these warnings.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/qkern.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx512vnni,fma,f16c,bmi2"))), apply_to = function)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx512vnni,fma,f16c,bmi2")
// Explicit multiplies and adds stay separate (the dequantization is bitwise the reference's).
#pragma GCC optimize("fp-contract=off")
#endif

namespace calq::qk {
namespace {

constexpr int MR = 12;                // rows of the GEMM register tile
constexpr int64_t kPanelChunks = 32;  // inputs per k-panel: 32 chunks = 256

inline __m512 load_scales(const QW& w, int64_t tile, int64_t g) {
  const size_t idx = size_t((tile * w.groups + g) * 16);
  if (w.scale_f16) return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(w.scales) + idx)));
  return _mm512_loadu_ps(static_cast<const float*>(w.scales) + idx);
}
inline __m512 load_zeros(const QW& w, int64_t tile, int64_t g) {
  if (!w.zeros) return _mm512_set1_ps(w.zero_value);
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.zeros + (tile * w.groups + g) * 16)));
}
inline int64_t chunk_bytes(int storage) { return storage == 8 ? 128 : 64; }
inline uint32_t load_u32(const void* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// The 32 codes of pair p of a chunk as 16-bit words in slot order (output j at word 2j + t).
// v: the chunk's 64 bytes (4/5-bit storage); c: the chunk (8-bit); hb: its high bits (5-bit).
template <int S>
inline __m512i pair_codes(__m512i v, const uint8_t* c, const uint8_t* hb, int p) {
  if constexpr (S == 8) {
    return _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 32 * p)));
  } else {
    __m512i q = _mm512_and_si512(_mm512_srli_epi16(v, unsigned(4 * p)), _mm512_set1_epi16(0x000f));
    if constexpr (S == 5) q = _mm512_mask_add_epi16(q, __mmask32(load_u32(hb + 4 * p)), q, _mm512_set1_epi16(0x10));
    return q;
  }
}

// Dequantizes codes (one pair: outputs 0..15 at inputs 2p, 2p + 1) to f32: a (input 2p), b (2p + 1).
inline void dequant_pair(__m512i q, __m512 s, __m512 z, bool min_form, __m512& a, __m512& b) {
  a = _mm512_cvtepi32_ps(_mm512_and_si512(q, _mm512_set1_epi32(0xffff)));
  b = _mm512_cvtepi32_ps(_mm512_srli_epi32(q, 16));
  if (min_form) {  // d·q + m
    a = _mm512_add_ps(_mm512_mul_ps(a, s), z);
    b = _mm512_add_ps(_mm512_mul_ps(b, s), z);
  } else {  // s·(q − z)
    a = _mm512_mul_ps(s, _mm512_sub_ps(a, z));
    b = _mm512_mul_ps(s, _mm512_sub_ps(b, z));
  }
}

// Panel of tile `tile` (column half tt of the block) over chunks [c0, c1):
//  BF16: word (pair P, half tt, slot 2j + t) at panel[P·64 + 32·tt + 2j + t] (vdpbf16ps operand order)
//  F32:  panel[(8·(c − c0) + i)·32 + 16·tt + j] for input i of chunk c
template <int S, bool BF16>
void dequant_panel(const QW& w, int64_t tile, int tt, int64_t c0, int64_t c1, void* panel, bool round_bf16 = false) {
  // Interleaves the a and b halves of a vcvtne2ps2bf16 result into pairs: word 2j = a_j, 2j+1 = b_j.
  alignas(64) static const uint16_t kInterleave[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                                       8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i inter = _mm512_load_si512(kInterleave);
  int64_t g = -1;
  __m512 s = _mm512_setzero_ps(), z = s;
  for (int64_t c = c0; c < c1; ++c) {
    if (w.chunk_group[c] != g) {
      g = w.chunk_group[c];
      s = load_scales(w, tile, g);
      z = load_zeros(w, tile, g);
    }
    const uint8_t* cp = w.codes + (tile * w.chunks + c) * chunk_bytes(S);
    const uint8_t* hb = S == 5 ? w.hbits + (tile * w.chunks + c) * 16 : nullptr;
    const __m512i v = S == 8 ? _mm512_setzero_si512() : _mm512_loadu_si512(cp);
#pragma GCC unroll 4
    for (int p = 0; p < 4; ++p) {
      __m512 a, b;
      dequant_pair(pair_codes<S>(v, cp, hb, p), s, z, w.min_form, a, b);
      if constexpr (BF16) {
        const __m512i pr = _mm512_permutexvar_epi16(inter, (__m512i)_mm512_cvtne2ps_pbh(b, a));
        _mm512_store_si512(static_cast<uint16_t*>(panel) + ((c - c0) * 4 + p) * 64 + 32 * tt, pr);
      } else {
        if (round_bf16) {  // f32 -> bf16 (nearest even) -> f32
          a = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(a)), 16));
          b = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(b)), 16));
        }
        float* f = static_cast<float*>(panel) + ((c - c0) * 8 + 2 * p) * 32 + 16 * tt;
        _mm512_store_ps(f, a);
        _mm512_store_ps(f + 32, b);
      }
    }
  }
}

// c[r][0, 32) (+)= Σ_P a[r] pair P · panel pair P, r < R; a: bf16 rows (lda even).
template <int R>
void tile_bf16(const uint16_t* a, int64_t lda, const uint16_t* panel, int64_t npairs, float* c, int64_t ldc, bool add) {
  __m512 acc[R][2];
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  const uint16_t* ar[R];
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) ar[r] = a + r * lda;
  for (int64_t P = 0; P < npairs; ++P) {
    const __m512bh b0 = (__m512bh)_mm512_load_si512(panel + P * 64);
    const __m512bh b1 = (__m512bh)_mm512_load_si512(panel + P * 64 + 32);
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      const __m512bh x = (__m512bh)_mm512_set1_epi32(int(load_u32(ar[r] + 2 * P)));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], x, b0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], x, b1);
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) {
    float* cr = c + r * ldc;
    if (add) {
      acc[r][0] = _mm512_add_ps(acc[r][0], _mm512_loadu_ps(cr));
      acc[r][1] = _mm512_add_ps(acc[r][1], _mm512_loadu_ps(cr + 16));
    }
    _mm512_storeu_ps(cr, acc[r][0]);
    _mm512_storeu_ps(cr + 16, acc[r][1]);
  }
}

template <int R>
void tile_f32(const float* a, int64_t lda, const float* panel, int64_t kk, float* c, int64_t ldc, bool add) {
  __m512 acc[R][2];
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int64_t i = 0; i < kk; ++i) {
    const __m512 b0 = _mm512_load_ps(panel + i * 32), b1 = _mm512_load_ps(panel + i * 32 + 16);
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      const __m512 x = _mm512_set1_ps(a[r * lda + i]);
      acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) {
    float* cr = c + r * ldc;
    if (add) {
      acc[r][0] = _mm512_add_ps(acc[r][0], _mm512_loadu_ps(cr));
      acc[r][1] = _mm512_add_ps(acc[r][1], _mm512_loadu_ps(cr + 16));
    }
    _mm512_storeu_ps(cr, acc[r][0]);
    _mm512_storeu_ps(cr + 16, acc[r][1]);
  }
}

// tile(R, r) with R a compile-time row count: rest rows from r (1 <= rest <= N).
template <int N, class TileFn>
void tail_rows(int64_t rest, int64_t r, TileFn&& tile) {
  if constexpr (N > 0) {
    if (rest == N) return tile(std::integral_constant<int, N>{}, r);
    tail_rows<N - 1>(rest, r, tile);
  }
}

// tile(R, r) for row blocks of R = RMAX rows, then one block of the remaining rows.
template <int RMAX = MR, class TileFn>
void run_rows(int64_t rows, TileFn&& tile) {
  int64_t r = 0;
  for (; r + RMAX <= rows; r += RMAX) tile(std::integral_constant<int, RMAX>{}, r);
  if (r < rows) tail_rows<RMAX - 1>(rows - r, r, tile);
}

// Blocks [block0, block0 + nblocks) (nblocks <= kMaxGemmBlocks): block j's outputs in c columns
// [32·j, 32·j + 32). Loop order (GotoBLAS-style, for the caches of the CPU this was tuned on: 32
// KiB L1d, 1 MiB L2 per core): per k-panel of 256 inputs, every block's panel is dequantized
// once (16 KiB each, L2), then rows go in chunks of kRowChunk; within a chunk each block's tile
// runs over the same activation slice (kRowChunk × 256 bf16 = 48 KiB, L2) with its panel in L1.
// Before, one block ran all its k-panels at a time, so each block streamed the whole activation
// matrix (rows × k × 2 bytes: 8 MiB for the down projection at 512 rows) from L3. Every output
// sums its panels in the same order as before (per panel from zero, then added to c): bitwise
// the same products.
constexpr int64_t kRowChunk = 8 * MR;

template <int S>
void gemm_bf16_s(const QW& w, const uint16_t* a, int64_t lda, int64_t rows, int64_t block0, int64_t nblocks, float* c,
                 int64_t ldc, void* panel) {
  constexpr int64_t kBlockPanel = kPanelChunks * 4 * 64;  // bf16 words of one block's panel (16 KiB)
  auto* pb = static_cast<uint16_t*>(panel);
  for (int64_t c0 = 0; c0 < w.chunks; c0 += kPanelChunks) {
    const int64_t c1 = c0 + kPanelChunks < w.chunks ? c0 + kPanelChunks : w.chunks;
    for (int64_t j = 0; j < nblocks; ++j) {
      dequant_panel<S, true>(w, 2 * (block0 + j), 0, c0, c1, pb + j * kBlockPanel);
      dequant_panel<S, true>(w, 2 * (block0 + j) + 1, 1, c0, c1, pb + j * kBlockPanel);
    }
    const int64_t npairs = (c1 - c0) * 4;
    for (int64_t m0 = 0; m0 < rows; m0 += kRowChunk) {
      const int64_t mr = rows - m0 < kRowChunk ? rows - m0 : kRowChunk;
      for (int64_t j = 0; j < nblocks; ++j)
        run_rows(mr, [&](auto R, int64_t r) {
          tile_bf16<decltype(R)::value>(a + (m0 + r) * lda + c0 * 8, lda, pb + j * kBlockPanel, npairs,
                                        c + (m0 + r) * ldc + 32 * j, ldc, c0 > 0);
        });
    }
  }
}

template <int S>
void gemm_f32_s(const QW& w, const float* a, int64_t lda, int64_t rows, int64_t block, float* c, int64_t ldc,
                void* panel, bool round_bf16) {
  constexpr int64_t kF32Chunks = kPanelChunks / 2;  // 128 inputs × 32 outputs × 4 bytes = 16 KiB
  const auto* pf = static_cast<const float*>(panel);
  for (int64_t c0 = 0; c0 < w.chunks; c0 += kF32Chunks) {
    const int64_t c1 = c0 + kF32Chunks < w.chunks ? c0 + kF32Chunks : w.chunks;
    dequant_panel<S, false>(w, 2 * block, 0, c0, c1, panel, round_bf16);
    dequant_panel<S, false>(w, 2 * block + 1, 1, c0, c1, panel, round_bf16);
    const int64_t kk = (c1 - c0) * 8;
    run_rows(rows, [&](auto R, int64_t r) {
      tile_f32<decltype(R)::value>(a + r * lda + c0 * 8, lda, pf, kk, c + r * ldc, ldc, c0 > 0);
    });
  }
}

void gemm_bf16(const QW& w, const uint16_t* a, int64_t lda, int64_t rows, int64_t block0, int64_t nblocks, float* c,
               int64_t ldc, void* panel) {
  switch (w.storage) {
    case 4: return gemm_bf16_s<4>(w, a, lda, rows, block0, nblocks, c, ldc, panel);
    case 5: return gemm_bf16_s<5>(w, a, lda, rows, block0, nblocks, c, ldc, panel);
    default: return gemm_bf16_s<8>(w, a, lda, rows, block0, nblocks, c, ldc, panel);
  }
}
void gemm_f32(const QW& w, const float* a, int64_t lda, int64_t rows, int64_t block, float* c, int64_t ldc, void* panel,
              bool round_bf16) {
  switch (w.storage) {
    case 4: return gemm_f32_s<4>(w, a, lda, rows, block, c, ldc, panel, round_bf16);
    case 5: return gemm_f32_s<5>(w, a, lda, rows, block, c, ldc, panel, round_bf16);
    default: return gemm_f32_s<8>(w, a, lda, rows, block, c, ldc, panel, round_bf16);
  }
}

// ---- GEMV ---------------------------------------------------------------------------------------

// End of group g: y[r][t] += s·(A − z'·xs) (zero form, z' = z + offset) or d·(A − offset·xs) + m·xs.
inline __m512 group_end(__m512 y, __m512 acc, __m512 s, __m512 z, float xs, float offset, bool min_form) {
  const __m512 vx = _mm512_set1_ps(xs);
  if (min_form) {
    const __m512 t = _mm512_fnmadd_ps(_mm512_set1_ps(offset), vx, acc);
    return _mm512_fmadd_ps(z, vx, _mm512_fmadd_ps(s, t, y));
  }
  const __m512 t = _mm512_fnmadd_ps(_mm512_add_ps(z, _mm512_set1_ps(offset)), vx, acc);
  return _mm512_fmadd_ps(s, t, y);
}

// R rows × TB tiles at tile0, bf16 activations (4/5-bit codes as bf16 128 + q).
template <int S, int R, int TB>
void gemv_bf16_tiles(const QW& w, const uint16_t* a, int64_t lda, const float* xsum, int64_t tile0, float* y, int64_t ldy) {
  constexpr int NA = R == 1 ? 2 : 1;  // accumulators per (row, tile): enough independent chains
  __m512 ya[R][TB];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TB; ++t) ya[r][t] = _mm512_setzero_ps();
  const __m512i low4 = _mm512_set1_epi16(0x000f), bias = _mm512_set1_epi16(0x4300);
  for (int64_t c = 0; c < w.chunks;) {
    const int32_t g = w.chunk_group[c];
    int64_t ce = c + 1;
    while (ce < w.chunks && w.chunk_group[ce] == g) ++ce;
    __m512 acc[R][TB][NA];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < TB; ++t)
        for (int u = 0; u < NA; ++u) acc[r][t][u] = _mm512_setzero_ps();
    for (; c < ce; ++c) {
      __m512i v[TB];
      for (int t = 0; t < TB; ++t) v[t] = _mm512_loadu_si512(w.codes + ((tile0 + t) * w.chunks + c) * 64);
#pragma GCC unroll 4
      for (int p = 0; p < 4; ++p) {
        __m512bh q[TB];
        for (int t = 0; t < TB; ++t) {
          // (v >> 4p) & 0xf | 0x4300: ternary logic (A & B) | C = 0xEA.
          __m512i x = _mm512_ternarylogic_epi32(_mm512_srli_epi16(v[t], unsigned(4 * p)), low4, bias, 0xEA);
          if constexpr (S == 5) {
            const uint8_t* hb = w.hbits + ((tile0 + t) * w.chunks + c) * 16;
            x = _mm512_mask_add_epi16(x, __mmask32(load_u32(hb + 4 * p)), x, _mm512_set1_epi16(0x10));
          }
          q[t] = (__m512bh)x;
        }
        for (int r = 0; r < R; ++r) {
          const __m512bh xb = (__m512bh)_mm512_set1_epi32(int(load_u32(a + r * lda + c * 8 + 2 * p)));
          for (int t = 0; t < TB; ++t) acc[r][t][p % NA] = _mm512_dpbf16_ps(acc[r][t][p % NA], xb, q[t]);
        }
      }
    }
    // The accumulators are summed first: the group end's loads and branches then leave them in
    // registers (GCC spilled all of them around every group: 16 memory ops per 4 chunks of Q4_0).
    __m512 sum[R][TB];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < TB; ++t) sum[r][t] = NA == 2 ? _mm512_add_ps(acc[r][t][0], acc[r][t][NA - 1]) : acc[r][t][0];
    if (!w.min_form) {  // zero form (GGUF Q4_0, GPTQ/AWQ codes): group_end's operations, no branch per tile
      const __m512 zc = _mm512_set1_ps(w.zero_value + 128.0f), off = _mm512_set1_ps(128.0f);
      for (int t = 0; t < TB; ++t) {
        const __m512 s = load_scales(w, tile0 + t, g);
        const __m512 zo = w.zeros ? _mm512_add_ps(load_zeros(w, tile0 + t, g), off) : zc;
        for (int r = 0; r < R; ++r)
          ya[r][t] = _mm512_fmadd_ps(s, _mm512_fnmadd_ps(zo, _mm512_set1_ps(xsum[r * w.groups + g]), sum[r][t]), ya[r][t]);
      }
      continue;
    }
    for (int t = 0; t < TB; ++t) {
      const __m512 s = load_scales(w, tile0 + t, g), z = load_zeros(w, tile0 + t, g);
      for (int r = 0; r < R; ++r) ya[r][t] = group_end(ya[r][t], sum[r][t], s, z, xsum[r * w.groups + g], 128.0f, w.min_form);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TB; ++t) _mm512_storeu_ps(y + r * ldy + (tile0 + t) * 16, ya[r][t]);
}

// R rows × TB tiles, f32 activations, exact codes (any storage).
template <int S, int R, int TB>
void gemv_f32_tiles(const QW& w, const float* a, int64_t lda, const float* xsum, int64_t tile0, float* y, int64_t ldy) {
  __m512 ya[R][TB];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TB; ++t) ya[r][t] = _mm512_setzero_ps();
  const __m512i lo16 = _mm512_set1_epi32(0xffff);
  for (int64_t c = 0; c < w.chunks;) {
    const int32_t g = w.chunk_group[c];
    int64_t ce = c + 1;
    while (ce < w.chunks && w.chunk_group[ce] == g) ++ce;
    __m512 acc[R][TB];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < TB; ++t) acc[r][t] = _mm512_setzero_ps();
    for (; c < ce; ++c) {
      __m512i v[TB];
      const uint8_t* cp[TB];
      for (int t = 0; t < TB; ++t) {
        cp[t] = w.codes + ((tile0 + t) * w.chunks + c) * chunk_bytes(S);
        v[t] = S == 8 ? _mm512_setzero_si512() : _mm512_loadu_si512(cp[t]);
      }
#pragma GCC unroll 4
      for (int p = 0; p < 4; ++p) {
        __m512 qa[TB], qb[TB];
        for (int t = 0; t < TB; ++t) {
          const uint8_t* hb = S == 5 ? w.hbits + ((tile0 + t) * w.chunks + c) * 16 : nullptr;
          const __m512i q = pair_codes<S>(v[t], cp[t], hb, p);
          qa[t] = _mm512_cvtepi32_ps(_mm512_and_si512(q, lo16));
          qb[t] = _mm512_cvtepi32_ps(_mm512_srli_epi32(q, 16));
        }
        for (int r = 0; r < R; ++r) {
          const __m512 xa = _mm512_set1_ps(a[r * lda + c * 8 + 2 * p]), xb = _mm512_set1_ps(a[r * lda + c * 8 + 2 * p + 1]);
          for (int t = 0; t < TB; ++t) acc[r][t] = _mm512_fmadd_ps(xb, qb[t], _mm512_fmadd_ps(xa, qa[t], acc[r][t]));
        }
      }
    }
    for (int t = 0; t < TB; ++t) {
      const __m512 s = load_scales(w, tile0 + t, g), z = load_zeros(w, tile0 + t, g);
      for (int r = 0; r < R; ++r) ya[r][t] = group_end(ya[r][t], acc[r][t], s, z, xsum[r * w.groups + g], 0.0f, w.min_form);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TB; ++t) _mm512_storeu_ps(y + r * ldy + (tile0 + t) * 16, ya[r][t]);
}

// Tiles [t0, t1) (even count) in groups of 4, then 2.
template <class F4, class F2>
void over_tiles(int64_t t0, int64_t t1, F4&& f4, F2&& f2) {
  int64_t t = t0;
  for (; t + 4 <= t1; t += 4) f4(t);
  for (; t < t1; t += 2) f2(t);
}

template <int S, int R>
void gemv_bf16_r(const QW& w, const uint16_t* a, int64_t lda, const float* xsum, int64_t t0, int64_t t1, float* y, int64_t ldy) {
  over_tiles(t0, t1, [&](int64_t t) { gemv_bf16_tiles<S, R, (R <= 2 ? 4 : 2)>(w, a, lda, xsum, t, y, ldy);
                                      if (R > 2) gemv_bf16_tiles<S, R, 2>(w, a, lda, xsum, t + 2, y, ldy); },
             [&](int64_t t) { gemv_bf16_tiles<S, R, 2>(w, a, lda, xsum, t, y, ldy); });
}
template <int S, int R>
void gemv_f32_r(const QW& w, const float* a, int64_t lda, const float* xsum, int64_t t0, int64_t t1, float* y, int64_t ldy) {
  over_tiles(t0, t1, [&](int64_t t) { gemv_f32_tiles<S, R, (R <= 2 ? 4 : 2)>(w, a, lda, xsum, t, y, ldy);
                                      if (R > 2) gemv_f32_tiles<S, R, 2>(w, a, lda, xsum, t + 2, y, ldy); },
             [&](int64_t t) { gemv_f32_tiles<S, R, 2>(w, a, lda, xsum, t, y, ldy); });
}

template <int S>
void gemv_bf16_s(const QW& w, const uint16_t* a, int64_t lda, int rows, const float* xsum, int64_t t0, int64_t t1, float* y, int64_t ldy) {
  switch (rows) {
    case 1: return gemv_bf16_r<S, 1>(w, a, lda, xsum, t0, t1, y, ldy);
    case 2: return gemv_bf16_r<S, 2>(w, a, lda, xsum, t0, t1, y, ldy);
    case 3: return gemv_bf16_r<S, 3>(w, a, lda, xsum, t0, t1, y, ldy);
    default: return gemv_bf16_r<S, 4>(w, a, lda, xsum, t0, t1, y, ldy);
  }
}
template <int S>
void gemv_f32_s(const QW& w, const float* a, int64_t lda, int rows, const float* xsum, int64_t t0, int64_t t1, float* y, int64_t ldy) {
  switch (rows) {
    case 1: return gemv_f32_r<S, 1>(w, a, lda, xsum, t0, t1, y, ldy);
    case 2: return gemv_f32_r<S, 2>(w, a, lda, xsum, t0, t1, y, ldy);
    case 3: return gemv_f32_r<S, 3>(w, a, lda, xsum, t0, t1, y, ldy);
    default: return gemv_f32_r<S, 4>(w, a, lda, xsum, t0, t1, y, ldy);
  }
}

void gemv_bf16(const QW& w, const uint16_t* a, int64_t lda, int rows, const float* xsum, int64_t t0, int64_t t1, float* y, int64_t ldy) {
  if (w.storage == 5) return gemv_bf16_s<5>(w, a, lda, rows, xsum, t0, t1, y, ldy);
  return gemv_bf16_s<4>(w, a, lda, rows, xsum, t0, t1, y, ldy);
}
void gemv_f32(const QW& w, const float* a, int64_t lda, int rows, const float* xsum, int64_t t0, int64_t t1, float* y, int64_t ldy) {
  switch (w.storage) {
    case 4: return gemv_f32_s<4>(w, a, lda, rows, xsum, t0, t1, y, ldy);
    case 5: return gemv_f32_s<5>(w, a, lda, rows, xsum, t0, t1, y, ldy);
    default: return gemv_f32_s<8>(w, a, lda, rows, xsum, t0, t1, y, ldy);
  }
}

// ---- W8A8 ---------------------------------------------------------------------------------------

// acc += u8 a · s8 b (vpdpbusd). Inline asm: with the intrinsic, GCC 12 shuffles (and at 12 rows
// spills) the int32 accumulators every iteration.
inline __m512i dpbusd(__m512i acc, __m512i a, __m512i b) {
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
  return acc;
}

template <int R>
void tile_w8(const W8& w, const int8_t* xq, int64_t ldq, const float* sx, int64_t block, float* c, int64_t ldc) {
  const int64_t nq = w.kq / 4;
  const int8_t* b0p = w.w + 2 * block * nq * 64;
  const int8_t* b1p = b0p + nq * 64;
  __m512i acc[R][2];
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
  const __m512i flip = _mm512_set1_epi32(int(0x80808080u));  // s8 -> u8: x + 128
  for (int64_t q = 0; q < nq; ++q) {
    const __m512i b0 = _mm512_load_si512(b0p + q * 64), b1 = _mm512_load_si512(b1p + q * 64);
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      const __m512i x = _mm512_xor_si512(_mm512_set1_epi32(int(load_u32(xq + r * ldq + 4 * q))), flip);
      acc[r][0] = dpbusd(acc[r][0], x, b0);
      acc[r][1] = dpbusd(acc[r][1], x, b1);
    }
  }
  const __m512i comp0 = _mm512_slli_epi32(_mm512_loadu_si512(w.colsum + 32 * block), 7);
  const __m512i comp1 = _mm512_slli_epi32(_mm512_loadu_si512(w.colsum + 32 * block + 16), 7);
  const __m512 s0 = _mm512_loadu_ps(w.scale + 32 * block), s1 = _mm512_loadu_ps(w.scale + 32 * block + 16);
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) {
    const __m512 vs = _mm512_set1_ps(sx[r]);
    const __m512 f0 = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][0], comp0));
    const __m512 f1 = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][1], comp1));
    _mm512_storeu_ps(c + r * ldc, _mm512_mul_ps(_mm512_mul_ps(f0, vs), s0));
    _mm512_storeu_ps(c + r * ldc + 16, _mm512_mul_ps(_mm512_mul_ps(f1, vs), s1));
  }
}

bool quant_act(const float* x, int64_t k, float static_scale, int8_t* q, int64_t kq, float* scale) {
  const __m512 inf = _mm512_set1_ps(__builtin_inff());
  const __m512i absmask = _mm512_set1_epi32(0x7fffffff);
  __mmask16 bad = 0;
  __m512 m = _mm512_setzero_ps();
  for (int64_t i = 0; i < k; i += 16) {
    const __mmask16 t = k - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (k - i)) - 1);
    const __m512 ax = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(_mm512_maskz_loadu_ps(t, x + i)), absmask));
    bad |= _mm512_cmp_ps_mask(ax, inf, _CMP_NLT_UQ);  // inf or NaN
    m = _mm512_max_ps(m, ax);
  }
  const float s = static_scale > 0.0f ? static_scale : (_mm512_reduce_max_ps(m) > 1e-5f ? _mm512_reduce_max_ps(m) : 1e-5f) / 127.0f;
  const __m512 vs = _mm512_set1_ps(s), lo = _mm512_set1_ps(-128.0f), hi = _mm512_set1_ps(127.0f);
  for (int64_t i = 0; i < k; i += 16) {
    const __mmask16 t = k - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (k - i)) - 1);
    // Clamping before rounding gives the reference's round-then-clamp (the bounds are integers).
    const __m512 v = _mm512_min_ps(_mm512_max_ps(_mm512_div_ps(_mm512_maskz_loadu_ps(t, x + i), vs), lo), hi);
    _mm_mask_storeu_epi8(q + i, t, _mm512_cvtsepi32_epi8(_mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
  }
  for (int64_t i = k; i < kq; ++i) q[i] = 0;
  *scale = s;
  return bad == 0;
}

void w8a8(const W8& w, const int8_t* xq, int64_t ldq, const float* sx, int64_t rows, int64_t block, float* c, int64_t ldc, void*) {
  run_rows(rows, [&](auto R, int64_t r) {
    tile_w8<decltype(R)::value>(w, xq + r * ldq, ldq, sx + r, block, c + r * ldc, ldc);
  });
}

// ---- W4A8: 4-bit codes × int8 activations ------------------------------------------------------

bool quant_blocks(const float* x, int64_t kp, int8_t* xq, float* d, int32_t* qsum, bool kernel_order) {
  const __m256i order = _mm256_setr_epi8(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15, 0, 4, 1, 5, 2, 6, 3, 7, 8,
                                         12, 9, 13, 10, 14, 11, 15);
  const __m512i absmask = _mm512_set1_epi32(0x7fffffff);
  const __m512 inf = _mm512_set1_ps(__builtin_inff()), lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
  __mmask16 bad = 0;
  for (int64_t b = 0; b < kp / 32; ++b) {
    const __m512 x0 = _mm512_loadu_ps(x + 32 * b), x1 = _mm512_loadu_ps(x + 32 * b + 16);
    const __m512 a0 = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x0), absmask));
    const __m512 a1 = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x1), absmask));
    bad |= _mm512_cmp_ps_mask(a0, inf, _CMP_NLT_UQ) | _mm512_cmp_ps_mask(a1, inf, _CMP_NLT_UQ);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
    const float db = amax / 127.0f;
    d[b] = db;
    if (!(amax > 0.0f)) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(xq + 32 * b), _mm256_setzero_si256());
      qsum[b] = 0;
      continue;
    }
    const __m512 vd = _mm512_set1_ps(db);
    const __m512i q0 = _mm512_cvt_roundps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_div_ps(x0, vd), lo), hi),
                                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512i q1 = _mm512_cvt_roundps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_div_ps(x1, vd), lo), hi),
                                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    qsum[b] = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
    const __m256i bytes = _mm256_set_m128i(_mm512_cvtsepi32_epi8(q1), _mm512_cvtsepi32_epi8(q0));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(xq + 32 * b), kernel_order ? _mm256_shuffle_epi8(bytes, order) : bytes);
  }
  return bad == 0;
}

template <int R, int TB>
void gemv_a8_tiles(const QW& w, const int8_t* xq, int64_t ldq, const float* d, const int32_t* qsum, int64_t nblk,
                   int64_t tile0, float* y, int64_t ldy) {
  __m512 ya[R][TB];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TB; ++t) ya[r][t] = _mm512_setzero_ps();
  const __m512i m0f = _mm512_set1_epi8(0x0f);
  for (int64_t blk = 0; blk < nblk; ++blk) {
    __m512i acc[R][TB][2];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < TB; ++t) acc[r][t][0] = acc[r][t][1] = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int cc = 0; cc < 4; ++cc) {
      const int64_t c = 4 * blk + cc;
      __m512i lo[TB], hi[TB];
      for (int t = 0; t < TB; ++t) {
        const __m512i v = _mm512_loadu_si512(w.codes + ((tile0 + t) * w.chunks + c) * 64);
        lo[t] = _mm512_and_si512(v, m0f);                         // inputs 0 4 1 5 of each output
        hi[t] = _mm512_and_si512(_mm512_srli_epi32(v, 4), m0f);   // inputs 2 6 3 7
      }
      for (int r = 0; r < R; ++r) {
        // The chunk's 8 activations in every qword, then inputs 0 4 1 5 / 2 6 3 7 in every dword.
        int64_t x8;
        std::memcpy(&x8, xq + r * ldq + c * 8, 8);
        const __m512i xx = _mm512_set1_epi64(x8);
        const __m512i xa = _mm512_shuffle_epi8(xx, _mm512_set1_epi32(0x05010400));
        const __m512i xb = _mm512_shuffle_epi8(xx, _mm512_set1_epi32(0x07030602));
        for (int t = 0; t < TB; ++t) {
          acc[r][t][0] = dpbusd(acc[r][t][0], lo[t], xa);
          acc[r][t][1] = dpbusd(acc[r][t][1], hi[t], xb);
        }
      }
    }
    const int32_t g = w.chunk_group[4 * blk];
    for (int t = 0; t < TB; ++t) {
      const __m512 s = load_scales(w, tile0 + t, g), z = load_zeros(w, tile0 + t, g);
      for (int r = 0; r < R; ++r) {
        const __m512 db = _mm512_set1_ps(d[r * nblk + blk]), qb = _mm512_set1_ps(float(qsum[r * nblk + blk]));
        const __m512 f = _mm512_cvtepi32_ps(_mm512_add_epi32(acc[r][t][0], acc[r][t][1]));
        ya[r][t] = w.min_form ? _mm512_fmadd_ps(db, _mm512_fmadd_ps(s, f, _mm512_mul_ps(z, qb)), ya[r][t])
                              : _mm512_fmadd_ps(_mm512_mul_ps(s, db), _mm512_fnmadd_ps(z, qb, f), ya[r][t]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TB; ++t) _mm512_storeu_ps(y + r * ldy + (tile0 + t) * 16, ya[r][t]);
}


// The f32 steps after one 32-input block's exact int32 sums `acc` (tile_a8, tile_a8_s8): the
// group's scales and zeros of the two tiles (reloaded when the block starts a new group) and
// y += (s·d_b)·(Σ q·code − z·qsum_b), or for the min form y += d_b·(s·Σ q·code + m·qsum_b).
template <int R>
__attribute__((always_inline)) inline void a8_block_scales(const QW& w, int64_t tile0, int64_t blk,
                                                           const __m512i (&acc)[R][2], const float* d,
                                                           const int32_t* qsum, int64_t nblk, int32_t& g,
                                                           __m512 (&sz)[4], __m512 (&fy)[R][2]) {
  if (w.chunk_group[4 * blk] != g) {
    g = w.chunk_group[4 * blk];
    sz[0] = load_scales(w, tile0, g), sz[1] = load_scales(w, tile0 + 1, g);
    sz[2] = load_zeros(w, tile0, g), sz[3] = load_zeros(w, tile0 + 1, g);
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const __m512 db = _mm512_set1_ps(d[r * nblk + blk]), qb = _mm512_set1_ps(float(qsum[r * nblk + blk]));
    const __m512 f0 = _mm512_cvtepi32_ps(acc[r][0]), f1 = _mm512_cvtepi32_ps(acc[r][1]);
    if (w.min_form) {
      fy[r][0] = _mm512_fmadd_ps(db, _mm512_fmadd_ps(sz[0], f0, _mm512_mul_ps(sz[2], qb)), fy[r][0]);
      fy[r][1] = _mm512_fmadd_ps(db, _mm512_fmadd_ps(sz[1], f1, _mm512_mul_ps(sz[3], qb)), fy[r][1]);
    } else {
      fy[r][0] = _mm512_fmadd_ps(_mm512_mul_ps(sz[0], db), _mm512_fnmadd_ps(sz[2], qb, f0), fy[r][0]);
      fy[r][1] = _mm512_fmadd_ps(_mm512_mul_ps(sz[1], db), _mm512_fnmadd_ps(sz[3], qb, f1), fy[r][1]);
    }
  }
}

// W4A8 prefill: R rows × 32 outputs (2 tiles) straight from the packed codes (no panel: they are
// already the u8 operand), activations in kernel order (within each chunk 0 4 1 5 2 6 3 7, so a
// dword broadcast serves a quad). Exact int32 sums per 32-input block, then the block's scales in f32.
template <int R>
void tile_a8(const QW& w, const int8_t* xq, int64_t ldq, const float* d, const int32_t* qsum, int64_t nblk, int64_t block,
             float* c, int64_t ldc) {
  const int64_t tile0 = 2 * block;
  const uint8_t* cp0 = w.codes + tile0 * w.chunks * 64;
  const uint8_t* cp1 = cp0 + w.chunks * 64;
  const __m512i m0f = _mm512_set1_epi8(0x0f);
  __m512 fy[R][2];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) fy[r][0] = fy[r][1] = _mm512_setzero_ps();
  int32_t g = -1;
  __m512 sz[4] = {};  // s0 s1 z0 z1 of the current group
  for (int64_t blk = 0; blk < nblk; ++blk) {
    __m512i acc[R][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int cc = 0; cc < 4; ++cc) {
      const int64_t ch = 4 * blk + cc;
      const __m512i v0 = _mm512_load_si512(cp0 + ch * 64), v1 = _mm512_load_si512(cp1 + ch * 64);
      const __m512i lo0 = _mm512_and_si512(v0, m0f), hi0 = _mm512_and_si512(_mm512_srli_epi32(v0, 4), m0f);
      const __m512i lo1 = _mm512_and_si512(v1, m0f), hi1 = _mm512_and_si512(_mm512_srli_epi32(v1, 4), m0f);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m512i xa = _mm512_set1_epi32(int(load_u32(xq + r * ldq + ch * 8)));
        const __m512i xb = _mm512_set1_epi32(int(load_u32(xq + r * ldq + ch * 8 + 4)));
        acc[r][0] = dpbusd(dpbusd(acc[r][0], lo0, xa), hi0, xb);
        acc[r][1] = dpbusd(dpbusd(acc[r][1], lo1, xa), hi1, xb);
      }
    }
    a8_block_scales<R>(w, tile0, blk, acc, d, qsum, nblk, g, sz, fy);
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    _mm512_storeu_ps(c + r * ldc, fy[r][0]);
    _mm512_storeu_ps(c + r * ldc + 16, fy[r][1]);
  }
}

// W8A8 with 8-bit codes (GGUF Q8_0, W8 groups; QActs::Int8 as llama.cpp multiplies Q8_0 weights):
// R rows × 32 outputs. A chunk's 128 bytes hold pair p (inputs 2p, 2p + 1) of output j at word
// 16p + j; one vpermw per 64 bytes interleaves the words of pairs (0, 1) and (2, 3) into dword j =
// output j's inputs 0 1 2 3 (4 5 6 7): the u8 operand of vpdpbusd against the natural-order
// activations' dword broadcast. Codes are u8 (w = s·(code − z)); the per-block sums are exact
// int32 (|Σ| <= 255·127·32), then the same f32 steps as tile_a8: y += (s·d_b)·(Σ q·code − z·qsum_b).
template <int R>
void tile_a8_s8(const QW& w, const int8_t* xq, int64_t ldq, const float* d, const int32_t* qsum, int64_t nblk,
                int64_t block, float* c, int64_t ldc) {
  const int64_t tile0 = 2 * block;
  const uint8_t* cp0 = w.codes + tile0 * w.chunks * 128;
  const uint8_t* cp1 = cp0 + w.chunks * 128;
  const __m512i inter = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21,
                                         5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  __m512 fy[R][2];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) fy[r][0] = fy[r][1] = _mm512_setzero_ps();
  int32_t g = -1;
  __m512 sz[4] = {};  // s0 s1 z0 z1 of the current group
  for (int64_t blk = 0; blk < nblk; ++blk) {
    __m512i acc[R][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int cc = 0; cc < 4; ++cc) {
      const int64_t ch = 4 * blk + cc;
      const __m512i lo0 = _mm512_permutexvar_epi16(inter, _mm512_load_si512(cp0 + ch * 128));
      const __m512i hi0 = _mm512_permutexvar_epi16(inter, _mm512_load_si512(cp0 + ch * 128 + 64));
      const __m512i lo1 = _mm512_permutexvar_epi16(inter, _mm512_load_si512(cp1 + ch * 128));
      const __m512i hi1 = _mm512_permutexvar_epi16(inter, _mm512_load_si512(cp1 + ch * 128 + 64));
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m512i xa = _mm512_set1_epi32(int(load_u32(xq + r * ldq + ch * 8)));
        const __m512i xb = _mm512_set1_epi32(int(load_u32(xq + r * ldq + ch * 8 + 4)));
        acc[r][0] = dpbusd(dpbusd(acc[r][0], lo0, xa), hi0, xb);
        acc[r][1] = dpbusd(dpbusd(acc[r][1], lo1, xa), hi1, xb);
      }
    }
    a8_block_scales<R>(w, tile0, blk, acc, d, qsum, nblk, g, sz, fy);
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    _mm512_storeu_ps(c + r * ldc, fy[r][0]);
    _mm512_storeu_ps(c + r * ldc + 16, fy[r][1]);
  }
}

void gemm_a8(const QW& w, const int8_t* xq, int64_t ldq, const float* d, const int32_t* qsum, int64_t nblk, int64_t rows,
             int64_t block, float* c, int64_t ldc) {
  if (w.storage == 8) {
    run_rows<6>(rows, [&](auto R, int64_t r) {
      tile_a8_s8<decltype(R)::value>(w, xq + r * ldq, ldq, d + r * nblk, qsum + r * nblk, nblk, block, c + r * ldc, ldc);
    });
    return;
  }
  run_rows<6>(rows, [&](auto R, int64_t r) {
    tile_a8<decltype(R)::value>(w, xq + r * ldq, ldq, d + r * nblk, qsum + r * nblk, nblk, block, c + r * ldc, ldc);
  });
}

// ---- Decode with 8-bit codes: int8 activations (Q8_0 / W8 groups) and W8A8 ------------------------

// A decode GEMV reads each weight once, so it runs at the speed of memory; the arithmetic per 64
// bytes is a few instructions. A tile's codes are one contiguous stream and a thread's tiles are
// contiguous, read TB tiles at a time. No software prefetch: on the EPYC this was tuned on,
// prefetcht0 1-2 KiB ahead made one thread 8-15 % slower than the hardware prefetchers alone.
// R rows × TB tiles of 8-bit codes × int8 activations (natural order). Per chunk and tile, two
// vpermw (tile_a8_s8's interleave) and 2R vpdpbusd; per 32-input block, tile_a8_s8's f32 steps.
template <int R, int TB>
void gemv_a8_s8_tiles(const QW& w, const int8_t* xq, int64_t ldq, const float* d, const int32_t* qsum, int64_t nblk,
                      int64_t tile0, float* y, int64_t ldy) {
  const __m512i inter = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21,
                                         5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const uint8_t* cp[TB];
  __m512 fy[R][TB], s[TB], z[TB];
  for (int t = 0; t < TB; ++t) cp[t] = w.codes + (tile0 + t) * w.chunks * 128;
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TB; ++t) fy[r][t] = _mm512_setzero_ps();
  int32_t g = -1;
  for (int64_t blk = 0; blk < nblk; ++blk) {
    if (w.chunk_group[4 * blk] != g) {
      g = w.chunk_group[4 * blk];
      for (int t = 0; t < TB; ++t) s[t] = load_scales(w, tile0 + t, g), z[t] = load_zeros(w, tile0 + t, g);
    }
    __m512i acc[R][TB];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < TB; ++t) acc[r][t] = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int cc = 0; cc < 4; ++cc) {
      const int64_t ch = 4 * blk + cc;
      __m512i lo[TB], hi[TB];
      for (int t = 0; t < TB; ++t) {
        lo[t] = _mm512_permutexvar_epi16(inter, _mm512_load_si512(cp[t] + ch * 128));
        hi[t] = _mm512_permutexvar_epi16(inter, _mm512_load_si512(cp[t] + ch * 128 + 64));
      }
      for (int r = 0; r < R; ++r) {
        const __m512i xa = _mm512_set1_epi32(int(load_u32(xq + r * ldq + ch * 8)));
        const __m512i xb = _mm512_set1_epi32(int(load_u32(xq + r * ldq + ch * 8 + 4)));
        for (int t = 0; t < TB; ++t) acc[r][t] = dpbusd(dpbusd(acc[r][t], lo[t], xa), hi[t], xb);
      }
    }
    for (int r = 0; r < R; ++r) {
      const __m512 db = _mm512_set1_ps(d[r * nblk + blk]), qb = _mm512_set1_ps(float(qsum[r * nblk + blk]));
      for (int t = 0; t < TB; ++t) {
        const __m512 f = _mm512_cvtepi32_ps(acc[r][t]);
        fy[r][t] = w.min_form ? _mm512_fmadd_ps(db, _mm512_fmadd_ps(s[t], f, _mm512_mul_ps(z[t], qb)), fy[r][t])
                              : _mm512_fmadd_ps(_mm512_mul_ps(s[t], db), _mm512_fnmadd_ps(z[t], qb, f), fy[r][t]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TB; ++t) _mm512_storeu_ps(y + r * ldy + (tile0 + t) * 16, fy[r][t]);
}

// One int8-activation decode tile run: 4-bit codes (gemv_a8_tiles) or 8-bit ones (gemv_a8_s8_tiles).
template <bool S8, int R, int TB>
void a8_tiles(const QW& w, const int8_t* xq, int64_t ldq, const float* d, const int32_t* qsum, int64_t nblk,
              int64_t tile0, float* y, int64_t ldy) {
  if constexpr (S8) gemv_a8_s8_tiles<R, TB>(w, xq, ldq, d, qsum, nblk, tile0, y, ldy);
  else gemv_a8_tiles<R, TB>(w, xq, ldq, d, qsum, nblk, tile0, y, ldy);
}

// Tiles [t0, t1) at R rows: four tiles per call at 1-2 rows, two at 3-4 (the accumulators fit).
template <bool S8, int R>
void gemv_a8_r(const QW& w, const int8_t* xq, int64_t ldq, const float* d, const int32_t* qsum, int64_t nblk, int64_t t0,
               int64_t t1, float* y, int64_t ldy) {
  over_tiles(t0, t1, [&](int64_t t) { a8_tiles<S8, R, (R <= 2 ? 4 : 2)>(w, xq, ldq, d, qsum, nblk, t, y, ldy);
                                      if (R > 2) a8_tiles<S8, R, 2>(w, xq, ldq, d, qsum, nblk, t + 2, y, ldy); },
             [&](int64_t t) { a8_tiles<S8, R, 2>(w, xq, ldq, d, qsum, nblk, t, y, ldy); });
}

template <bool S8>
void gemv_a8_rows(const QW& w, const int8_t* xq, int64_t ldq, const float* d, const int32_t* qsum, int64_t nblk, int rows,
                  int64_t t0, int64_t t1, float* y, int64_t ldy) {
  switch (rows) {
    case 1: return gemv_a8_r<S8, 1>(w, xq, ldq, d, qsum, nblk, t0, t1, y, ldy);
    case 2: return gemv_a8_r<S8, 2>(w, xq, ldq, d, qsum, nblk, t0, t1, y, ldy);
    case 3: return gemv_a8_r<S8, 3>(w, xq, ldq, d, qsum, nblk, t0, t1, y, ldy);
    default: return gemv_a8_r<S8, 4>(w, xq, ldq, d, qsum, nblk, t0, t1, y, ldy);
  }
}

void gemv_a8(const QW& w, const int8_t* xq, int64_t ldq, const float* d, const int32_t* qsum, int64_t nblk, int rows,
             int64_t t0, int64_t t1, float* y, int64_t ldy) {
  gemv_a8_rows<false>(w, xq, ldq, d, qsum, nblk, rows, t0, t1, y, ldy);
}

void gemv_a8_s8(const QW& w, const int8_t* xq, int64_t ldq, const float* d, const int32_t* qsum, int64_t nblk, int rows,
                int64_t t0, int64_t t1, float* y, int64_t ldy) {
  gemv_a8_rows<true>(w, xq, ldq, d, qsum, nblk, rows, t0, t1, y, ldy);
}

// W8A8, R rows × TB tiles: tile_w8's arithmetic (u8 = x + 128 against the s8 weights, 128·colsum
// subtracted, then (f·s_x)·s_w), each tile one stream of kq·16 bytes; two accumulators per row and
// tile (even / odd quads) for vpdpbusd's latency.
template <int R, int TB>
void gemv_w8_tiles(const W8& w, const int8_t* xq, int64_t ldq, const float* sx, int64_t tile0, float* y, int64_t ldy) {
  const int64_t nq = w.kq / 4;
  const int8_t* bp[TB];
  for (int t = 0; t < TB; ++t) bp[t] = w.w + (tile0 + t) * nq * 64;
  __m512i acc[R][TB][2];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TB; ++t) acc[r][t][0] = acc[r][t][1] = _mm512_setzero_si512();
  const __m512i flip = _mm512_set1_epi32(int(0x80808080u));  // s8 -> u8: x + 128
  int64_t q = 0;
  for (; q + 8 <= nq; q += 8) {  // 512 bytes of each stream
#pragma GCC unroll 8
    for (int u = 0; u < 8; ++u) {
      __m512i b[TB];
      for (int t = 0; t < TB; ++t) b[t] = _mm512_load_si512(bp[t] + (q + u) * 64);
      for (int r = 0; r < R; ++r) {
        const __m512i x = _mm512_xor_si512(_mm512_set1_epi32(int(load_u32(xq + r * ldq + 4 * (q + u)))), flip);
        for (int t = 0; t < TB; ++t) acc[r][t][u & 1] = dpbusd(acc[r][t][u & 1], x, b[t]);
      }
    }
  }
  for (; q < nq; ++q)
    for (int r = 0; r < R; ++r) {
      const __m512i x = _mm512_xor_si512(_mm512_set1_epi32(int(load_u32(xq + r * ldq + 4 * q))), flip);
      for (int t = 0; t < TB; ++t) acc[r][t][0] = dpbusd(acc[r][t][0], x, _mm512_load_si512(bp[t] + q * 64));
    }
  for (int t = 0; t < TB; ++t) {
    const int64_t o = 16 * (tile0 + t);
    const __m512i comp = _mm512_slli_epi32(_mm512_loadu_si512(w.colsum + o), 7);
    const __m512 sw = _mm512_loadu_ps(w.scale + o);
    for (int r = 0; r < R; ++r) {
      const __m512 f = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_add_epi32(acc[r][t][0], acc[r][t][1]), comp));
      _mm512_storeu_ps(y + r * ldy + o, _mm512_mul_ps(_mm512_mul_ps(f, _mm512_set1_ps(sx[r])), sw));
    }
  }
}

template <int R>
void w8a8_gemv_r(const W8& w, const int8_t* xq, int64_t ldq, const float* sx, int64_t t0, int64_t t1, float* y, int64_t ldy) {
  over_tiles(t0, t1, [&](int64_t t) { gemv_w8_tiles<R, (R <= 2 ? 4 : 2)>(w, xq, ldq, sx, t, y, ldy);
                                      if (R > 2) gemv_w8_tiles<R, 2>(w, xq, ldq, sx, t + 2, y, ldy); },
             [&](int64_t t) { gemv_w8_tiles<R, 2>(w, xq, ldq, sx, t, y, ldy); });
}

void w8a8_gemv(const W8& w, const int8_t* xq, int64_t ldq, const float* sx, int rows, int64_t t0, int64_t t1, float* y,
               int64_t ldy) {
  switch (rows) {
    case 1: return w8a8_gemv_r<1>(w, xq, ldq, sx, t0, t1, y, ldy);
    case 2: return w8a8_gemv_r<2>(w, xq, ldq, sx, t0, t1, y, ldy);
    case 3: return w8a8_gemv_r<3>(w, xq, ldq, sx, t0, t1, y, ldy);
    default: return w8a8_gemv_r<4>(w, xq, ldq, sx, t0, t1, y, ldy);
  }
}

// ---- Decode GEMV on oneDNN's blocked float weights (qkern.h) -------------------------------------

// One 64-output block is one stream: per pair of inputs, 4 zmm of weights (16 outputs × 2 inputs
// each) against the broadcast pair; two accumulator sets (even / odd pairs) hide vdpbf16ps latency.
void gemv_blocked_bf16(const uint16_t* w, const uint16_t* x, int64_t kpad, int64_t b0, int64_t b1, float* y) {
  const int64_t pairs = kpad / 2;
  for (int64_t b = b0; b < b1; ++b) {
    const uint16_t* wb = w + b * kpad * 64;
    __m512 acc[2][4];
    for (auto& s : acc)
      for (auto& v : s) v = _mm512_setzero_ps();
    for (int64_t p = 0; p < pairs; p += 2) {  // kpad is a multiple of 32
#pragma GCC unroll 2
      for (int u = 0; u < 2; ++u) {
        const __m512bh xv = (__m512bh)_mm512_set1_epi32(int(load_u32(x + 2 * (p + u))));
        const uint16_t* wp = wb + (p + u) * 128;
        for (int t = 0; t < 4; ++t) acc[u][t] = _mm512_dpbf16_ps(acc[u][t], xv, (__m512bh)_mm512_loadu_si512(wp + 32 * t));
      }
    }
    for (int t = 0; t < 4; ++t) _mm512_storeu_ps(y + 64 * b + 16 * t, _mm512_add_ps(acc[0][t], acc[1][t]));
  }
}

// f32: per input, 4 zmm of weights (64 outputs) × the broadcast input, FMA.
void gemv_blocked_f32(const float* w, const float* x, int64_t kpad, int64_t b0, int64_t b1, float* y) {
  for (int64_t b = b0; b < b1; ++b) {
    const float* wb = w + b * kpad * 64;
    __m512 acc[2][4];
    for (auto& s : acc)
      for (auto& v : s) v = _mm512_setzero_ps();
    for (int64_t i = 0; i < kpad; i += 2) {  // kpad is a multiple of 16
#pragma GCC unroll 2
      for (int u = 0; u < 2; ++u) {
        const __m512 xv = _mm512_set1_ps(x[i + u]);
        const float* wp = wb + (i + u) * 64;
        for (int t = 0; t < 4; ++t) acc[u][t] = _mm512_fmadd_ps(xv, _mm512_loadu_ps(wp + 16 * t), acc[u][t]);
      }
    }
    for (int t = 0; t < 4; ++t) _mm512_storeu_ps(y + 64 * b + 16 * t, _mm512_add_ps(acc[0][t], acc[1][t]));
  }
}

}  // namespace

}  // namespace calq::qk

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

namespace calq::qk {
// Compiled for the build's baseline ISA: the dispatcher may call it on any CPU.
const Kernels& kernels_avx512() {
  static const Kernels k{gemm_bf16, gemm_f32,   gemv_bf16,       gemv_f32,         w8a8,
                         quant_act, quant_blocks, gemv_a8, gemm_a8, gemv_blocked_bf16, gemv_blocked_f32,
                         gemv_a8_s8, w8a8_gemv, nullptr, nullptr, gemm_a8};
  return k;
}
}  // namespace calq::qk
