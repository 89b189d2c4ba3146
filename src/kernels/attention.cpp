// Blocked causal attention (the fast path of attention_ref, kernels/ops.h).
//
// Work is split into tasks (sequence b, kv head, block of BQ query positions); a task processes
// the G = heads/kv_heads query heads that share the kv head together, so every K/V tile it loads
// serves G·BQ query rows (GQA). Keys are visited in chunks of KC with an online softmax
// (Milakov & Gimelshein 2018; FlashAttention, Dao et al. 2022): per row a running max m and sum l,
// the output accumulator rescaled by exp(m_old - m_new) when the max grows. Chunks start at
// 16-aligned key positions and stop at the block's last query, so masked work is at most one
// chunk's diagonal triangle. S = Q·Kᵀ runs on a K transposed per (b, kv head) into [hd][T]
// (vectors over keys); O += P·V reads V rows in place (vectors over head_dim).
// ComputeType::BF16 (AttnDims::bf16) runs both products with AVX512-BF16 dot products on
// bf16-rounded Q, K, P and V, f32 accumulation and an f32 softmax.
// GCC 12 false positive on AVX-512 intrinsics that use _mm512_undefined_ps (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/ops.h"
#include "kernels/profile.h"
#include "kernels/vec.h"
#include "tensor/dtype.h"

namespace calq {

#if defined(__AVX512F__)
namespace {

// Keys per chunk (S tile width): the chunk's K and V take at most 256 KiB (512 keys at head_dim 64
// in f32), so they and the S tile stay in L2; for T <= chunk the online softmax degenerates to one
// exact row softmax per task.
int64_t keys_per_chunk(int hd, bool bf16) {
  const int64_t bytes = int64_t(hd) * (bf16 ? 2 : 4) * 2;  // K and V of one key
  return std::clamp<int64_t>((256 << 10) / bytes / 64 * 64, 64, 512);
}

int64_t round16(int64_t x) { return (x + 15) / 16 * 16; }
__mmask16 tail_mask(int64_t n) { return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1); }

// ---- f32 micro-kernels -------------------------------------------------------------------------

// s[r][0 .. 16·NV) = scale · Σ_e q_r[e] · kt[e][0 .. 16·NV)   (kt rows have stride ldk)
template <int R, int NV>
void qk_tile(const float* const* qr, const float* kt, int64_t ldk, int hd, float scale, float* s, int64_t lds) {
  __m512 acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int e = 0; e < hd; ++e) {
    __m512 kv[NV];
    for (int v = 0; v < NV; ++v) kv[v] = _mm512_loadu_ps(kt + e * ldk + 16 * v);
    for (int r = 0; r < R; ++r) {
      const __m512 qb = _mm512_set1_ps(qr[r][e]);
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(qb, kv[v], acc[r][v]);
    }
  }
  const __m512 sc = _mm512_set1_ps(scale);
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(s + r * lds + 16 * v, _mm512_mul_ps(acc[r][v], sc));
}

// o[r][16·w ..] = alpha[r] · o[r][16·w ..] + Σ_j p[r][j] · V[j][16·w ..] for w < NV: the online
// softmax rescale folded into the load. V rows and o rows are zero padded to 16·NV lanes.
template <int R, int NV>
void pv_tile(const float* p, int64_t ldp, int nk, const float* v, int64_t ldv, const float* alpha, float* o,
             int64_t ldo) {
  __m512 acc[R][NV];
  for (int r = 0; r < R; ++r) {
    const __m512 a = _mm512_set1_ps(alpha[r]);
    for (int w = 0; w < NV; ++w) acc[r][w] = _mm512_mul_ps(a, _mm512_loadu_ps(o + r * ldo + 16 * w));
  }
  for (int j = 0; j < nk; ++j) {
    __m512 vv[NV];
    for (int w = 0; w < NV; ++w) vv[w] = _mm512_loadu_ps(v + j * ldv + 16 * w);
    for (int r = 0; r < R; ++r) {
      const __m512 pb = _mm512_set1_ps(p[r * ldp + j]);
      for (int w = 0; w < NV; ++w) acc[r][w] = _mm512_fmadd_ps(pb, vv[w], acc[r][w]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int w = 0; w < NV; ++w) _mm512_storeu_ps(o + r * ldo + 16 * w, acc[r][w]);
}

// ---- bf16 micro-kernels (vdpbf16ps: each f32 lane accumulates a pair of bf16 products) ----------

#if defined(__AVX512BF16__)
// kt2: key pairs interleaved, [hd/2][ldk][2] bf16 (as uint32 per (e-pair, key)); q2 rows: [hd/2] pairs.
template <int R, int NV>
void qk_tile_bf16(const uint32_t* const* qr, const uint32_t* kt2, int64_t ldk, int hd2, float scale, float* s,
                  int64_t lds) {
  __m512 acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int e = 0; e < hd2; ++e) {
    __m512bh kv[NV];
    for (int v = 0; v < NV; ++v) kv[v] = (__m512bh)_mm512_loadu_si512(kt2 + e * ldk + 16 * v);
    for (int r = 0; r < R; ++r) {
      const __m512bh qb = (__m512bh)_mm512_set1_epi32(int(qr[r][e]));
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], qb, kv[v]);
    }
  }
  const __m512 sc = _mm512_set1_ps(scale);
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(s + r * lds + 16 * v, _mm512_mul_ps(acc[r][v], sc));
}

// p2: probability pairs [nk/2] per row (uint32 = two bf16); v2: value rows paired by key,
// [nk/2][ldv][2] bf16 as uint32 per (key pair, e). Output f32 [R][16·NV] (masked last vector).
template <int R, int NV>
void pv_tile_bf16(const uint32_t* p2, int64_t ldp, int nk2, const uint32_t* v2, int64_t ldv, const float* alpha,
                  float* o, int64_t ldo) {
  __m512 acc[R][NV];
  for (int r = 0; r < R; ++r) {
    const __m512 a = _mm512_set1_ps(alpha[r]);
    for (int w = 0; w < NV; ++w) acc[r][w] = _mm512_mul_ps(a, _mm512_loadu_ps(o + r * ldo + 16 * w));
  }
  for (int j = 0; j < nk2; ++j) {
    __m512bh vv[NV];
    for (int w = 0; w < NV; ++w) vv[w] = (__m512bh)_mm512_loadu_si512(v2 + j * ldv + 16 * w);
    for (int r = 0; r < R; ++r) {
      const __m512bh pb = (__m512bh)_mm512_set1_epi32(int(p2[r * ldp + j]));
      for (int w = 0; w < NV; ++w) acc[r][w] = _mm512_dpbf16_ps(acc[r][w], pb, vv[w]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int w = 0; w < NV; ++w) _mm512_storeu_ps(o + r * ldo + 16 * w, acc[r][w]);
}
#endif

// Dispatch helpers: R rows (1..6) x NV vectors (1..4) for QK; R (1..6 / 1..3) x NV (1..8) for PV.
template <int NV, class F>
void dispatch_rows(int R, F&& f) {
  switch (R) {
    case 1: f.template operator()<1, NV>(); break;
    case 2: f.template operator()<2, NV>(); break;
    case 3: f.template operator()<3, NV>(); break;
    case 4: f.template operator()<4, NV>(); break;
    case 5: f.template operator()<5, NV>(); break;
    default: f.template operator()<6, NV>(); break;
  }
}
template <class F>
void dispatch(int R, int NV, F&& f) {
  switch (NV) {
    case 1: dispatch_rows<1>(R, f); break;
    case 2: dispatch_rows<2>(R, f); break;
    case 3: dispatch_rows<3>(R, f); break;
    case 4: dispatch_rows<4>(R, f); break;
    case 5: dispatch_rows<5>(R, f); break;
    case 6: dispatch_rows<6>(R, f); break;
    case 7: dispatch_rows<7>(R, f); break;
    default: dispatch_rows<8>(R, f); break;
  }
}
// Rows per micro-tile so that R·NV accumulators fit in the 32 vector registers.
int rows_for(int nv) { return nv <= 4 ? 6 : 2; }

// ---- the task ----------------------------------------------------------------------------------

struct Geometry {
  int64_t T, qs, ks, vs, os;  // row strides of q, k, v, out
  int G, hd, nv;              // nv = 16-lane vectors per head_dim
  int window;
  float scale;
  bool bf16;
  int64_t Tp;   // row stride of the transposed K: keys padded to 16, an odd number of cache lines
  int64_t ldv;  // row stride of the packed V: 16·nv
  int64_t kc;   // keys per chunk
  int64_t lds;  // row stride of the S tile: kc + 16 (again an odd number of cache lines)
};

// A power-of-two row stride maps every row of a tile to the same few L1 sets; odd line counts
// spread them (this alone is worth ~1.3x on T = 512).
int64_t odd_lines(int64_t n16) { return (n16 / 16) % 2 == 0 ? n16 + 16 : n16; }

// K and V of one (sequence, kv head), repacked for the micro-kernels.
struct PackedKV {
  const float* kt = nullptr;      // f32: [hd][Tp] (K transposed)
  const float* vp = nullptr;      // f32: [Tp][ldv] (V rows, zero padded)
  const uint32_t* kt2 = nullptr;  // bf16: [hd/2][Tp] pairs over head_dim
  const uint32_t* v2 = nullptr;   // bf16: [Tp/2][ldv] pairs over keys
};

struct Workspace {
  std::vector<float> s, o, m, l, alpha, qp;
  std::vector<uint32_t> q2, p2;
  std::vector<const float*> qrow;
  std::vector<const uint32_t*> q2row;
  std::vector<int64_t> pos;      // query position of each row
  std::vector<int64_t> pos_max;  // at row r: the last position among rows r .. r+5 (a micro-tile)
};

Workspace& workspace() {
  thread_local Workspace w;
  return w;
}

__mmask16 range_mask(int64_t j, int64_t a, int64_t b) {  // lanes j..j+15 inside [a, b)
  if (j >= b || j + 16 <= a) return 0;
  return __mmask16(tail_mask(std::min<int64_t>(b - j, 16)) & ~tail_mask(std::clamp<int64_t>(a - j, 0, 16)));
}

// Online-softmax update of one row over a chunk of n (padded) keys starting at c0: the valid keys
// of query i are [lo_i, i]. Turns s into probabilities (0 outside the valid range) and returns the
// factor exp(m_old - m_new) by which the row's output accumulator must be rescaled.
float softmax_row(float* s, int n, int64_t c0, int64_t lo_i, int64_t i, float& m, float& l) {
  const int64_t a = std::max<int64_t>(lo_i - c0, 0), b = std::min<int64_t>(i - c0 + 1, n);  // [a, b)
  if (a >= b) {
    std::memset(s, 0, sizeof(float) * size_t(n));
    return 1.0f;
  }
  __m512 vmax = _mm512_set1_ps(-INFINITY);
  for (int64_t j = a / 16 * 16; j < b; j += 16)
    vmax = _mm512_mask_max_ps(vmax, range_mask(j, a, b), vmax, _mm512_loadu_ps(s + j));
  const float mnew = std::max(m, _mm512_reduce_max_ps(vmax));
  const __m512 vm = _mm512_set1_ps(mnew);
  __m512 vsum = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 mk = range_mask(j, a, b);
    if (mk == 0) {
      _mm512_storeu_ps(s + j, _mm512_setzero_ps());
      continue;
    }
    const __m512 p = _mm512_maskz_mov_ps(mk, exp512(_mm512_sub_ps(_mm512_loadu_ps(s + j), vm)));
    vsum = _mm512_add_ps(vsum, p);
    _mm512_storeu_ps(s + j, p);
  }
  const float alpha = m == -INFINITY ? 0.0f : std::exp(m - mnew);
  l = l * alpha + _mm512_reduce_add_ps(vsum);
  m = mnew;
  return alpha;
}

// K transposed into kt [hd][Tp] and V into vp [Tp][ldv], zero padded (f32 products).
// Keys outer: K rows are read contiguously (they are ks floats apart, often a multiple of 4 KiB,
// so a column-wise walk would miss cache and TLB on every element); the hd rows of kt being
// written stay in L1.
void pack_kv(const float* k, const float* v, const Geometry& g, float* kt, float* vp) {
  for (int64_t j = 0; j < g.T; ++j) {
    const float* kj = k + j * g.ks;
    for (int e = 0; e < g.hd; ++e) kt[e * g.Tp + j] = kj[e];
  }
  for (int e = 0; e < g.hd; ++e)
    for (int64_t j = g.T; j < g.Tp; ++j) kt[e * g.Tp + j] = 0.0f;
  for (int64_t j = 0; j < g.Tp; ++j) {
    float* row = vp + j * g.ldv;
    for (int e = 0; e < g.ldv; ++e) row[e] = (j < g.T && e < g.hd) ? v[j * g.vs + e] : 0.0f;
  }
}

#if defined(__AVX512BF16__)
uint32_t bf16_pair(float lo, float hi) { return uint32_t(f32_to_bf16(lo)) | uint32_t(f32_to_bf16(hi)) << 16; }

// x[0..hd) as bf16 pairs over head_dim, d[e/2] = (x[e], x[e+1]) (little endian: x[e] in the low
// half), zero padded to hd2 = ceil(hd/2): consecutive bf16 values are exactly these pairs.
void row_to_pairs(const float* x, int hd, uint32_t* d) {
  int e = 0;
  for (; e + 32 <= hd; e += 32)
    _mm512_storeu_si512(d + e / 2, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + e + 16), _mm512_loadu_ps(x + e)));
  for (; e < hd; e += 2) d[e / 2] = bf16_pair(x[e], e + 1 < hd ? x[e + 1] : 0.0f);
}

// K as bf16 pairs over head_dim, kt2[e/2][j] = (k[j][e], k[j][e+1]), and V as pairs over keys,
// v2[j/2][e] = (v[j][e], v[j+1][e]); zero padded. `tmp` holds T·hd2 pairs.
void pack_kv_bf16(const float* k, const float* v, const Geometry& g, uint32_t* kt2, uint32_t* v2,
                  std::vector<uint32_t>& tmp) {
  const int hd2 = (g.hd + 1) / 2;
  tmp.resize(size_t(g.T) * hd2);
  for (int64_t j = 0; j < g.T; ++j) row_to_pairs(k + j * g.ks, g.hd, tmp.data() + j * hd2);
  for (int64_t j = 0; j < g.T; ++j)  // transpose [T][hd2] -> [hd2][Tp]
    for (int e2 = 0; e2 < hd2; ++e2) kt2[e2 * g.Tp + j] = tmp[size_t(j * hd2 + e2)];
  for (int e2 = 0; e2 < hd2; ++e2)
    for (int64_t j = g.T; j < g.Tp; ++j) kt2[e2 * g.Tp + j] = 0;
  for (int64_t j2 = 0; j2 < g.Tp / 2; ++j2) {
    uint32_t* row = v2 + j2 * g.ldv;
    const int64_t j = 2 * j2;
    for (int e = 0; e < g.ldv; e += 16) {
      const __mmask16 m = tail_mask(std::max(0, g.hd - e));
      const __m512 lo = j < g.T ? _mm512_maskz_loadu_ps(m, v + j * g.vs + e) : _mm512_setzero_ps();
      const __m512 hi = j + 1 < g.T ? _mm512_maskz_loadu_ps(m, v + (j + 1) * g.vs + e) : _mm512_setzero_ps();
      const __m512i a = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(lo));
      const __m512i b = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(hi));
      _mm512_storeu_si512(row + e, _mm512_or_si512(a, _mm512_slli_epi32(b, 16)));
    }
  }
}
#endif

// One task: query positions [i0, i1) of the G heads sharing kv head `kvh` of one sequence
// (qb/ob: its q/out rows), against that (sequence, kv head)'s packed K/V.
void run_task(const float* qb, float* ob, const PackedKV& kv, int kvh, int64_t i0, int64_t i1, const Geometry& g) {
  Workspace& w = workspace();
  const int nq = int(i1 - i0), rows = g.G * nq;
  const int64_t ldo = g.ldv, lds = g.lds;
  const int hd2 = (g.hd + 1) / 2;
  w.s.resize(size_t(rows) * lds);
  w.o.assign(size_t(rows) * ldo, 0.0f);
  w.m.assign(size_t(rows), -INFINITY);
  w.l.assign(size_t(rows), 0.0f);
  w.alpha.resize(size_t(rows));
  w.pos.resize(size_t(rows));
  // Q rows of the task, copied contiguous (row r = head gh, position i0 + t).
  if (!g.bf16) {
    w.qp.resize(size_t(rows) * g.hd);
    w.qrow.resize(size_t(rows));
  } else {
    w.q2.resize(size_t(rows) * hd2);
    w.q2row.resize(size_t(rows));
    w.p2.resize(size_t(rows) * (lds / 2));
  }
  for (int gh = 0; gh < g.G; ++gh)
    for (int t = 0; t < nq; ++t) {
      const int r = gh * nq + t;
      w.pos[size_t(r)] = i0 + t;
      const float* q = qb + (i0 + t) * g.qs + int64_t(kvh * g.G + gh) * g.hd;
#if defined(__AVX512BF16__)
      if (g.bf16) {
        uint32_t* d = w.q2.data() + size_t(r) * hd2;
        row_to_pairs(q, g.hd, d);
        w.q2row[size_t(r)] = d;
        continue;
      }
#endif
      float* d = w.qp.data() + size_t(r) * g.hd;
      std::memcpy(d, q, sizeof(float) * size_t(g.hd));
      w.qrow[size_t(r)] = d;
    }
  w.pos_max.resize(size_t(rows));
  for (int r = 0; r < rows; ++r) {
    int64_t mx = 0;
    for (int u = r; u < std::min(rows, r + 6); ++u) mx = std::max(mx, w.pos[size_t(u)]);
    w.pos_max[size_t(r)] = mx;
  }
  auto lo_of = [&](int64_t i) { return g.window > 0 ? std::max<int64_t>(0, i - g.window + 1) : int64_t(0); };
  const int64_t kstart = lo_of(i0) / 16 * 16, kend = i1;  // keys [kstart, kend)
  const int rq = 6, rp = rows_for(g.nv);
  for (int64_t c0 = kstart; c0 < kend; c0 += g.kc) {
    const int n = int(std::min<int64_t>(g.kc, round16(kend - c0)));  // padded chunk width
    // S = scale · Q Kᵀ over the chunk: key tiles outer so a K tile stays in L1 for all rows;
    // tiles beyond a row group's last query position are skipped (softmax zeroes them).
    for (int j = 0; j < n; j += 64) {
      const int NV = std::min(4, (n - j) / 16);
      for (int r = 0; r < rows; r += rq) {
        const int R = std::min(rq, rows - r);
        if (c0 + j > w.pos_max[size_t(r)]) continue;  // every row of the group masks the tile
        float* s = w.s.data() + size_t(r) * lds + j;
#if defined(__AVX512BF16__)
        if (g.bf16) {
          dispatch(R, NV, [&]<int RR, int VV>() {
            if constexpr (VV <= 4) qk_tile_bf16<RR, VV>(w.q2row.data() + r, kv.kt2 + c0 + j, g.Tp, hd2, g.scale, s, lds);
          });
          continue;
        }
#endif
        dispatch(R, NV, [&]<int RR, int VV>() {
          if constexpr (VV <= 4) qk_tile<RR, VV>(w.qrow.data() + r, kv.kt + c0 + j, g.Tp, g.hd, g.scale, s, lds);
        });
      }
    }
    // Online softmax per row.
    for (int r = 0; r < rows; ++r) {
      const int64_t i = w.pos[size_t(r)];
      w.alpha[size_t(r)] = softmax_row(w.s.data() + size_t(r) * lds, n, c0, lo_of(i), i, w.m[size_t(r)], w.l[size_t(r)]);
    }
    // O = alpha · O + P · V over the chunk.
#if defined(__AVX512BF16__)
    if (g.bf16) {
      for (int r = 0; r < rows; ++r) {  // P to bf16 pairs of consecutive keys
        const float* s = w.s.data() + size_t(r) * lds;
        uint32_t* p2 = w.p2.data() + size_t(r) * (lds / 2);
        for (int j = 0; j < n; j += 32) {
          const __m512 a = _mm512_loadu_ps(s + j), b = j + 16 < n ? _mm512_loadu_ps(s + j + 16) : _mm512_setzero_ps();
          // cvtne2ps(b, a): a -> low 16 bf16 lanes, b -> high 16, so word t = s[j + t].
          const __m512i pk = (__m512i)_mm512_cvtne2ps_pbh(b, a);
          if (j + 16 < n)
            _mm512_storeu_si512(p2 + j / 2, pk);
          else
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(p2 + j / 2), _mm512_castsi512_si256(pk));
        }
      }
      for (int r = 0; r < rows; r += rp) {
        const int R = std::min(rp, rows - r);
        const int nk = int(std::min<int64_t>(n, round16(w.pos_max[size_t(r)] - c0 + 1)));  // P = 0 beyond
        if (nk <= 0) continue;
        dispatch(R, g.nv, [&]<int RR, int VV>() {
          if constexpr (RR <= 6 && (VV <= 4 || RR <= 2))
            pv_tile_bf16<RR, VV>(w.p2.data() + size_t(r) * (lds / 2), lds / 2, nk / 2, kv.v2 + (c0 / 2) * ldo, ldo,
                                 w.alpha.data() + r, w.o.data() + size_t(r) * ldo, ldo);
        });
      }
      continue;
    }
#endif
    for (int r = 0; r < rows; r += rp) {
      const int R = std::min(rp, rows - r);
      const int nk = int(std::min<int64_t>(n, round16(w.pos_max[size_t(r)] - c0 + 1)));  // P = 0 beyond
      if (nk <= 0) continue;
      dispatch(R, g.nv, [&]<int RR, int VV>() {
        if constexpr (RR <= 6 && (VV <= 4 || RR <= 2))
          pv_tile<RR, VV>(w.s.data() + size_t(r) * lds, lds, nk, kv.vp + c0 * ldo, ldo, w.alpha.data() + r,
                          w.o.data() + size_t(r) * ldo, ldo);
      });
    }
  }
  for (int r = 0; r < rows; ++r) {
    const float inv = 1.0f / w.l[size_t(r)];
    const int gh = r / nq, t = r % nq;
    float* dst = ob + (i0 + t) * g.os + int64_t(kvh * g.G + gh) * g.hd;
    const float* o = w.o.data() + size_t(r) * ldo;
    for (int e = 0; e < g.hd; ++e) dst[e] = o[e] * inv;
  }
}

}  // namespace
#endif

void attention(const float* q, const float* k, const float* v, float* out, const AttnDims& d) {
  const int64_t T = d.seq;
  KernelTimer timer(KernelKind::Attention, 2 * 2 * d.batch * d.heads * d.head_dim * (T * (T + 1) / 2));
#if defined(__AVX512F__)
  const int nv = (d.head_dim + 15) / 16;
  if (T <= 0 || d.batch <= 0) return;
  if (nv > 8) return attention_ref(q, k, v, out, d);  // head_dim > 128: not tiled (no such model here)
  Geometry g;
  g.T = T;
  g.qs = d.qld();
  g.ks = d.kld();
  g.vs = d.vld();
  g.os = d.outld();
  g.G = d.heads / d.kv_heads;
  g.hd = d.head_dim;
  g.nv = nv;
  g.window = d.window;
  g.scale = d.scale;
#if defined(__AVX512BF16__)
  g.bf16 = d.bf16;
#else
  g.bf16 = false;
#endif
  g.Tp = odd_lines(round16(T));
  g.ldv = 16 * nv;
  g.kc = keys_per_chunk(g.hd, g.bf16);
  g.lds = odd_lines(g.kc);
  // Query block: ~64-128 rows per task (G heads x BQ positions), and enough tasks for the threads.
  const int64_t bq = std::clamp<int64_t>(128 / g.G, 16, 64);
  const int64_t nqb = (T + bq - 1) / bq;
  const int64_t nkv = int64_t(d.batch) * d.kv_heads;
  const int hd2 = (g.hd + 1) / 2;
  // Packed K/V per (sequence, kv head): f32 kt + vp, or bf16 kt2 + v2.
  const int64_t kt_size = (g.bf16 ? int64_t(hd2) : int64_t(g.hd)) * g.Tp;
  const int64_t v_size = (g.bf16 ? g.Tp / 2 : g.Tp) * g.ldv;
  std::vector<float> kt, vp;
  std::vector<uint32_t> kt2, v2;
  if (g.bf16) {
    kt2.resize(size_t(nkv * kt_size));
    v2.resize(size_t(nkv * v_size));
  } else {
    kt.resize(size_t(nkv * kt_size));
    vp.resize(size_t(nkv * v_size));
  }
  auto packed = [&](int64_t x) {
    PackedKV p;
    if (g.bf16) {
      p.kt2 = kt2.data() + x * kt_size;
      p.v2 = v2.data() + x * v_size;
    } else {
      p.kt = kt.data() + x * kt_size;
      p.vp = vp.data() + x * v_size;
    }
    return p;
  };
  // Parallel only when the work (~2·B·heads·hd·T² flops) outweighs waking the thread team.
  const bool par = nkv * nqb > 1 && double(d.batch) * d.heads * d.head_dim * double(T) * double(T) > 2e6;
#pragma omp parallel if (par)
  {
#pragma omp for schedule(static)
    for (int64_t x = 0; x < nkv; ++x) {
      const int64_t b = x / d.kv_heads, kvh = x % d.kv_heads;
      const float* kb = k + b * T * g.ks + kvh * g.hd;
      const float* vb = v + b * T * g.vs + kvh * g.hd;
      const PackedKV p = packed(x);
#if defined(__AVX512BF16__)
      if (g.bf16) {
        pack_kv_bf16(kb, vb, g, const_cast<uint32_t*>(p.kt2), const_cast<uint32_t*>(p.v2), workspace().q2);
        continue;
      }
#endif
      pack_kv(kb, vb, g, const_cast<float*>(p.kt), const_cast<float*>(p.vp));
    }
    // Heaviest (last) query blocks first.
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < nkv * nqb; ++t) {
      const int64_t x = t % nkv, qblk = nqb - 1 - t / nkv;
      const int64_t b = x / d.kv_heads;
      const int kvh = int(x % d.kv_heads);
      const int64_t i0 = qblk * bq, i1 = std::min(T, i0 + bq);
      run_task(q + b * T * g.qs, out + b * T * g.os, packed(x), kvh, i0, i1, g);
    }
  }
#else
  attention_ref(q, k, v, out, d);
#endif
}

}  // namespace calq
