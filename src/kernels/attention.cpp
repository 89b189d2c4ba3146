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

constexpr int kKC = 128;  // keys per chunk (S tile width)

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

// o[r][16·v ..] += Σ_j p[r][j] · V[j][16·v ..] for v < NV; the last vector is masked by `last`.
template <int R, int NV>
void pv_tile(const float* p, int64_t ldp, int nk, const float* v, int64_t ldv, __mmask16 last, float* o, int64_t ldo) {
  __m512 acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int w = 0; w < NV; ++w) acc[r][w] = _mm512_maskz_loadu_ps(w == NV - 1 ? last : 0xffff, o + r * ldo + 16 * w);
  for (int j = 0; j < nk; ++j) {
    __m512 vv[NV];
    for (int w = 0; w < NV; ++w) vv[w] = _mm512_maskz_loadu_ps(w == NV - 1 ? last : 0xffff, v + j * ldv + 16 * w);
    for (int r = 0; r < R; ++r) {
      const __m512 pb = _mm512_set1_ps(p[r * ldp + j]);
      for (int w = 0; w < NV; ++w) acc[r][w] = _mm512_fmadd_ps(pb, vv[w], acc[r][w]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int w = 0; w < NV; ++w) _mm512_mask_storeu_ps(o + r * ldo + 16 * w, w == NV - 1 ? last : 0xffff, acc[r][w]);
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
void pv_tile_bf16(const uint32_t* p2, int64_t ldp, int nk2, const uint32_t* v2, int64_t ldv, __mmask16 last,
                  float* o, int64_t ldo) {
  __m512 acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int w = 0; w < NV; ++w) acc[r][w] = _mm512_maskz_loadu_ps(w == NV - 1 ? last : 0xffff, o + r * ldo + 16 * w);
  for (int j = 0; j < nk2; ++j) {
    __m512bh vv[NV];
    for (int w = 0; w < NV; ++w) vv[w] = (__m512bh)_mm512_loadu_si512(v2 + j * ldv + 16 * w);
    for (int r = 0; r < R; ++r) {
      const __m512bh pb = (__m512bh)_mm512_set1_epi32(int(p2[r * ldp + j]));
      for (int w = 0; w < NV; ++w) acc[r][w] = _mm512_dpbf16_ps(acc[r][w], pb, vv[w]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int w = 0; w < NV; ++w) _mm512_mask_storeu_ps(o + r * ldo + 16 * w, w == NV - 1 ? last : 0xffff, acc[r][w]);
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
int rows_for(int nv) { return nv <= 4 ? 6 : 3; }

// ---- the task ----------------------------------------------------------------------------------

struct Geometry {
  int64_t T, qs, ks, vs, os;  // row strides of q, k, v, out
  int G, hd, nv;  // nv = vectors per head_dim
  int window;
  float scale;
  bool bf16;
  int64_t Tp;  // keys padded to 16
};

struct Workspace {
  std::vector<float> s, o, m, l;
  std::vector<uint32_t> q2, p2;
  std::vector<const float*> qrow;
  std::vector<const uint32_t*> q2row;
  std::vector<int64_t> pos;  // query position of each row
};

Workspace& workspace() {
  thread_local Workspace w;
  return w;
}

// Online-softmax update of one row over a chunk of n (padded) keys starting at c0: the valid keys
// of query i are [lo_i, i]. Turns s into probabilities (0 outside the valid range), rescales o.
void softmax_row(float* s, int n, int64_t c0, int64_t lo_i, int64_t i, float& m, float& l, float* o, int hd) {
  const int64_t a = std::max<int64_t>(lo_i - c0, 0), b = std::min<int64_t>(i - c0 + 1, n);  // [a, b)
  if (a >= b) {
    std::memset(s, 0, sizeof(float) * size_t(n));
    return;
  }
  __m512 vmax = _mm512_set1_ps(-INFINITY);
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 mk = tail_mask(std::min<int64_t>(b - j, 16)) & ~tail_mask(std::clamp<int64_t>(a - j, 0, 16));
    if (j >= b) break;
    vmax = _mm512_mask_max_ps(vmax, mk, vmax, _mm512_loadu_ps(s + j));
  }
  const float cmax = _mm512_reduce_max_ps(vmax);
  const float mnew = std::max(m, cmax);
  const __m512 vm = _mm512_set1_ps(mnew);
  __m512 vsum = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 mk = j >= b ? __mmask16(0)
                                : __mmask16(tail_mask(std::min<int64_t>(b - j, 16)) &
                                            ~tail_mask(std::clamp<int64_t>(a - j, 0, 16)));
    const __m512 p = _mm512_maskz_mov_ps(mk, exp512(_mm512_sub_ps(_mm512_loadu_ps(s + j), vm)));
    vsum = _mm512_add_ps(vsum, p);
    _mm512_storeu_ps(s + j, p);
  }
  const float alpha = m == -INFINITY ? 0.0f : std::exp(m - mnew);
  l = l * alpha + _mm512_reduce_add_ps(vsum);
  m = mnew;
  if (alpha != 1.0f)
    for (int e = 0; e < hd; ++e) o[e] *= alpha;
}

// Transposes K of (b, kv head) into kt [hd][Tp] (zero padding beyond T).
void pack_kt(const float* k, const Geometry& g, float* kt) {
  for (int e = 0; e < g.hd; ++e) {
    float* row = kt + e * g.Tp;
    for (int64_t j = 0; j < g.T; ++j) row[j] = k[j * g.ks + e];
    for (int64_t j = g.T; j < g.Tp; ++j) row[j] = 0.0f;
  }
}

#if defined(__AVX512BF16__)
// K as bf16 pairs over head_dim: kt2[e/2][j] = (k[j][e], k[j][e+1]); hd2 = ceil(hd/2).
void pack_kt_bf16(const float* k, const Geometry& g, uint32_t* kt2) {
  const int hd2 = (g.hd + 1) / 2;
  for (int e2 = 0; e2 < hd2; ++e2) {
    uint32_t* row = kt2 + e2 * g.Tp;
    for (int64_t j = 0; j < g.T; ++j) {
      const float lo = k[j * g.ks + 2 * e2], hi = 2 * e2 + 1 < g.hd ? k[j * g.ks + 2 * e2 + 1] : 0.0f;
      row[j] = uint32_t(f32_to_bf16(lo)) | uint32_t(f32_to_bf16(hi)) << 16;
    }
    for (int64_t j = g.T; j < g.Tp; ++j) row[j] = 0;
  }
}
// V as bf16 pairs over keys: v2[j/2][e] = (v[j][e], v[j+1][e]); rows padded to 16·nv lanes.
void pack_v_bf16(const float* v, const Geometry& g, uint32_t* v2) {
  const int64_t ld = 16 * g.nv;
  for (int64_t j2 = 0; j2 < g.Tp / 2; ++j2) {
    uint32_t* row = v2 + j2 * ld;
    for (int e = 0; e < ld; ++e) {
      const int64_t j = 2 * j2;
      const float lo = (e < g.hd && j < g.T) ? v[j * g.vs + e] : 0.0f;
      const float hi = (e < g.hd && j + 1 < g.T) ? v[(j + 1) * g.vs + e] : 0.0f;
      row[e] = uint32_t(f32_to_bf16(lo)) | uint32_t(f32_to_bf16(hi)) << 16;
    }
  }
}
#endif

// One task: query positions [i0, i1) of the G heads sharing kv head `kvh` of sequence b.
// qb/ob: q/out rows of sequence b; kb/vb: k/v rows of sequence b offset to kv head kvh.
// kt (f32) or kt2/v2 (bf16) are the packed K/V of this (b, kvh).
void run_task(const float* qb, const float* vb, float* ob, const float* kt, const uint32_t* kt2, const uint32_t* v2,
              int kvh, int64_t i0, int64_t i1, const Geometry& g) {
  Workspace& w = workspace();
  const int nq = int(i1 - i0), rows = g.G * nq;
  const int64_t ldo = 16 * g.nv, lds = kKC;
  w.s.resize(size_t(rows) * lds);
  w.o.assign(size_t(rows) * ldo, 0.0f);
  w.m.assign(size_t(rows), -INFINITY);
  w.l.assign(size_t(rows), 0.0f);
  w.qrow.resize(size_t(rows));
  w.pos.resize(size_t(rows));
  for (int gh = 0; gh < g.G; ++gh)
    for (int t = 0; t < nq; ++t) {
      const int r = gh * nq + t;
      w.pos[size_t(r)] = i0 + t;
      w.qrow[size_t(r)] = qb + (i0 + t) * g.qs + int64_t(kvh * g.G + gh) * g.hd;
    }
  const int hd2 = (g.hd + 1) / 2;
#if defined(__AVX512BF16__)
  if (g.bf16) {
    w.q2.resize(size_t(rows) * hd2);
    w.q2row.resize(size_t(rows));
    w.p2.resize(size_t(rows) * (lds / 2));
    for (int r = 0; r < rows; ++r) {
      uint32_t* d = w.q2.data() + size_t(r) * hd2;
      const float* q = w.qrow[size_t(r)];
      for (int e2 = 0; e2 < hd2; ++e2)
        d[e2] = uint32_t(f32_to_bf16(q[2 * e2])) | uint32_t(f32_to_bf16(2 * e2 + 1 < g.hd ? q[2 * e2 + 1] : 0.0f)) << 16;
      w.q2row[size_t(r)] = d;
    }
  }
#endif
  auto lo_of = [&](int64_t i) { return g.window > 0 ? std::max<int64_t>(0, i - g.window + 1) : int64_t(0); };
  const int64_t kstart = lo_of(i0) / 16 * 16, kend = i1;  // keys [kstart, kend)
  const int rq = 6, rp = rows_for(g.nv);
  const __mmask16 last = tail_mask(g.hd - 16 * (g.nv - 1));
  for (int64_t c0 = kstart; c0 < kend; c0 += kKC) {
    const int n = int(std::min<int64_t>(kKC, round16(kend - c0)));  // padded chunk width
    // S = scale · Q Kᵀ over the chunk.
    for (int r = 0; r < rows; r += rq) {
      const int R = std::min(rq, rows - r);
      for (int j = 0; j < n; j += 64) {
        const int NV = std::min(4, (n - j) / 16);
        float* s = w.s.data() + size_t(r) * lds + j;
#if defined(__AVX512BF16__)
        if (g.bf16) {
          dispatch(R, NV, [&]<int RR, int VV>() {
            if constexpr (VV <= 4) qk_tile_bf16<RR, VV>(w.q2row.data() + r, kt2 + c0 + j, g.Tp, hd2, g.scale, s, lds);
          });
          continue;
        }
#endif
        dispatch(R, NV, [&]<int RR, int VV>() {
          if constexpr (VV <= 4) qk_tile<RR, VV>(w.qrow.data() + r, kt + c0 + j, g.Tp, g.hd, g.scale, s, lds);
        });
      }
    }
    // Online softmax per row.
    for (int r = 0; r < rows; ++r) {
      const int64_t i = w.pos[size_t(r)];
      softmax_row(w.s.data() + size_t(r) * lds, n, c0, lo_of(i), i, w.m[size_t(r)], w.l[size_t(r)],
                  w.o.data() + size_t(r) * ldo, g.hd);
    }
    // O += P · V over the chunk.
#if defined(__AVX512BF16__)
    if (g.bf16) {
      const int n2 = n / 2;
      for (int r = 0; r < rows; ++r) {
        const float* s = w.s.data() + size_t(r) * lds;
        uint32_t* p2 = w.p2.data() + size_t(r) * (lds / 2);
        for (int j = 0; j < n; j += 32) {
          const __m512 a = _mm512_loadu_ps(s + j), b = j + 16 < n ? _mm512_loadu_ps(s + j + 16) : _mm512_setzero_ps();
          // cvtne2ps packs b into the high and a into the low 16 bf16 lanes: lanes pair (2t, 2t+1).
          const __m512i pk = (__m512i)_mm512_cvtne2ps_pbh(b, a);
          if (j + 16 < n)
            _mm512_storeu_si512(p2 + j / 2, pk);
          else
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(p2 + j / 2), _mm512_castsi512_si256(pk));
        }
      }
      for (int r = 0; r < rows; r += rp) {
        const int R = std::min(rp, rows - r);
        dispatch(R, g.nv, [&]<int RR, int VV>() {
          if constexpr (RR <= 6 && (VV <= 4 || RR <= 3))
            pv_tile_bf16<RR, VV>(w.p2.data() + size_t(r) * (lds / 2), lds / 2, n2, v2 + (c0 / 2) * ldo, ldo, last,
                                 w.o.data() + size_t(r) * ldo, ldo);
        });
      }
      continue;
    }
#endif
    for (int r = 0; r < rows; r += rp) {
      const int R = std::min(rp, rows - r);
      const int nk = int(std::min<int64_t>(n, g.T - c0));  // V rows beyond T do not exist
      dispatch(R, g.nv, [&]<int RR, int VV>() {
        if constexpr (RR <= 6 && (VV <= 4 || RR <= 3))
          pv_tile<RR, VV>(w.s.data() + size_t(r) * lds, lds, nk, vb + c0 * g.vs, g.vs, last,
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
  g.Tp = round16(T);
  // Query block: keep ~64-128 rows per task (G heads x BQ positions) and enough tasks for threads.
  const int64_t bq = std::clamp<int64_t>(128 / g.G, 16, 64);
  const int64_t nqb = (T + bq - 1) / bq;
  const int64_t nkv = int64_t(d.batch) * d.kv_heads;
  // Packed K (and V for bf16) per (b, kv head).
  const int hd2 = (g.hd + 1) / 2;
  std::vector<float> kt;
  std::vector<uint32_t> kt2, v2;
  const int64_t kt_size = g.bf16 ? int64_t(hd2) * g.Tp : int64_t(g.hd) * g.Tp;
  const int64_t v2_size = (g.Tp / 2) * 16 * nv;
  if (g.bf16) {
    kt2.resize(size_t(nkv * kt_size));
    v2.resize(size_t(nkv * v2_size));
  } else {
    kt.resize(size_t(nkv * kt_size));
  }
  // Parallel only when the work (~2·B·heads·hd·T² flops) outweighs waking the thread team.
  const bool par = nkv * nqb > 1 && double(d.batch) * d.heads * d.head_dim * double(T) * double(T) > 2e6;
#pragma omp parallel if (par)
  {
#pragma omp for schedule(static)
    for (int64_t x = 0; x < nkv; ++x) {
      const int64_t b = x / d.kv_heads, kvh = x % d.kv_heads;
      const float* kb = k + b * T * g.ks + kvh * g.hd;
#if defined(__AVX512BF16__)
      if (g.bf16) {
        pack_kt_bf16(kb, g, kt2.data() + x * kt_size);
        pack_v_bf16(v + b * T * g.vs + kvh * g.hd, g, v2.data() + x * v2_size);
        continue;
      }
#endif
      pack_kt(kb, g, kt.data() + x * kt_size);
    }
    // Heaviest (last) query blocks first.
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < nkv * nqb; ++t) {
      const int64_t x = t % nkv, qblk = nqb - 1 - t / nkv;
      const int64_t b = x / d.kv_heads;
      const int kvh = int(x % d.kv_heads);
      const int64_t i0 = qblk * bq, i1 = std::min(T, i0 + bq);
      run_task(q + b * T * g.qs, v + b * T * g.vs + int64_t(kvh) * g.hd, out + b * T * g.os,
               g.bf16 ? nullptr : kt.data() + x * kt_size, g.bf16 ? kt2.data() + x * kt_size : nullptr,
               g.bf16 ? v2.data() + x * v2_size : nullptr, kvh, i0, i1, g);
    }
  }
#else
  attention_ref(q, k, v, out, d);
#endif
}

}  // namespace calq
