// Internal: the kernels of blocked causal attention (kernels/attention.cpp runs the tasks), written
// once against the vector vocabulary of simd_avx512.h / simd_avx2.h and included by
// simd_avx512.cpp and simd_avx2.cpp inside an anonymous namespace, after simd_impl.h. No std::
// templates (see simd_impl.h). CALQ_SIMD_BF16_PAIRS (AVX-512 only): bf16 products with vdpbf16ps
// on packed pairs; without it the bf16 mode runs the f32 kernels on bf16-rounded Q, K, P and V
// (the same products, exact in f32; only the summation order differs).
//
// Micro-tiles: S = Q·Kᵀ on R ≤ 6 rows × kQkVecs vectors of keys (K transposed, vectors over keys),
// O += P·V on R rows × up to kPvVecs vectors of head_dim; R·vectors accumulators fit the register
// file (32 zmm / 16 ymm).
// (No include guard: see simd_avx512.h.)

constexpr int kQkVecs = kW == 16 ? 4 : 2;
constexpr int kQkRows = 6;

inline int64_t iclamp(int64_t x, int64_t lo, int64_t hi) { return x < lo ? lo : x > hi ? hi : x; }
inline int64_t round16(int64_t x) { return (x + 15) / 16 * 16; }

// s[r][0 .. kW·NV) = scale · Σ_e q_r[e] · kt[e][0 .. kW·NV)   (kt rows have stride ldk)
template <int R, int NV>
void qk_tile(const float* q, int64_t ldq, const float* kt, int64_t ldk, int hd, float scale, float* s, int64_t lds) {
  VF acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = vzero();
  for (int e = 0; e < hd; ++e) {
    VF kv[NV];
    for (int v = 0; v < NV; ++v) kv[v] = vload(kt + e * ldk + kW * v);
    for (int r = 0; r < R; ++r) {
      const VF qb = vset1(q[r * ldq + e]);
      for (int v = 0; v < NV; ++v) acc[r][v] = vfma(qb, kv[v], acc[r][v]);
    }
  }
  const VF sc = vset1(scale);
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) vstore(s + r * lds + kW * v, vmul(acc[r][v], sc));
}

// o[r][kW·w ..] = alpha[r] · o[r][kW·w ..] + Σ_j p[r][j] · V[j][kW·w ..] for w < NV: the online
// softmax rescale folded into the load. V rows and o rows are zero padded.
template <int R, int NV>
void pv_tile(const float* p, int64_t ldp, int nk, const float* v, int64_t ldv, const float* alpha, float* o,
             int64_t ldo) {
  VF acc[R][NV];
  for (int r = 0; r < R; ++r) {
    const VF a = vset1(alpha[r]);
    for (int w = 0; w < NV; ++w) acc[r][w] = vmul(a, vload(o + r * ldo + kW * w));
  }
  for (int j = 0; j < nk; ++j) {
    VF vv[NV];
    for (int w = 0; w < NV; ++w) vv[w] = vload(v + j * ldv + kW * w);
    for (int r = 0; r < R; ++r) {
      const VF pb = vset1(p[r * ldp + j]);
      for (int w = 0; w < NV; ++w) acc[r][w] = vfma(pb, vv[w], acc[r][w]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int w = 0; w < NV; ++w) vstore(o + r * ldo + kW * w, acc[r][w]);
}

#if defined(CALQ_SIMD_BF16_PAIRS)
// kt2: key pairs interleaved, [hd/2][ldk][2] bf16 (as uint32 per (e-pair, key)); q2 rows: [hd/2] pairs.
template <int R, int NV>
void qk_tile_bf16(const uint32_t* q2, int64_t ldq, const uint32_t* kt2, int64_t ldk, int hd2, float scale, float* s,
                  int64_t lds) {
  __m512 acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int e = 0; e < hd2; ++e) {
    __m512bh kv[NV];
    for (int v = 0; v < NV; ++v) kv[v] = (__m512bh)_mm512_loadu_si512(kt2 + e * ldk + 16 * v);
    for (int r = 0; r < R; ++r) {
      const __m512bh qb = (__m512bh)_mm512_set1_epi32(int(q2[r * ldq + e]));
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], qb, kv[v]);
    }
  }
  const __m512 sc = _mm512_set1_ps(scale);
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(s + r * lds + 16 * v, _mm512_mul_ps(acc[r][v], sc));
}

// p2: probability pairs [nk/2] per row (uint32 = two bf16); v2: value rows paired by key,
// [nk/2][ldv][2] bf16 as uint32 per (key pair, e). Output f32 [R][16·NV].
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

inline uint32_t bf16_pair(float lo, float hi) {
  return uint32_t(calq::f32_to_bf16(lo)) | uint32_t(calq::f32_to_bf16(hi)) << 16;
}

// x[0..hd) as bf16 pairs over head_dim, d[e/2] = (x[e], x[e+1]) (little endian: x[e] in the low
// half), zero padded to hd2 = ceil(hd/2): consecutive bf16 values are exactly these pairs.
inline void row_to_pairs(const float* x, int hd, uint32_t* d) {
  int e = 0;
  for (; e + 32 <= hd; e += 32)
    _mm512_storeu_si512(d + e / 2, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + e + 16), _mm512_loadu_ps(x + e)));
  for (; e < hd; e += 2) d[e / 2] = bf16_pair(x[e], e + 1 < hd ? x[e + 1] : 0.0f);
}

// K as bf16 pairs over head_dim, kt2[e/2][j] = (k[j][e], k[j][e+1]), and V as pairs over keys,
// v2[j/2][e] = (v[j][e], v[j+1][e]); zero padded. `tmp` holds T·hd2 pairs.
void pack_kv_pairs(const float* k, const float* v, const calq::sk::AttnGeom& g, uint32_t* kt2, uint32_t* v2,
                   uint32_t* tmp) {
  const int hd2 = (g.hd + 1) / 2;
  for (int64_t j = 0; j < g.T; ++j) row_to_pairs(k + j * g.ks, g.hd, tmp + j * hd2);
  for (int64_t j = 0; j < g.T; ++j)  // transpose [T][hd2] -> [hd2][Tp]
    for (int e2 = 0; e2 < hd2; ++e2) kt2[e2 * g.Tp + j] = tmp[j * hd2 + e2];
  for (int e2 = 0; e2 < hd2; ++e2)
    for (int64_t j = g.T; j < g.Tp; ++j) kt2[e2 * g.Tp + j] = 0;
  for (int64_t j2 = 0; j2 < g.Tp / 2; ++j2) {
    uint32_t* row = v2 + j2 * g.ldv;
    const int64_t j = 2 * j2;
    for (int e = 0; e < g.ldv; e += 16) {
      const __mmask16 m = vmask(g.hd - e < 0 ? 0 : g.hd - e);
      const __m512 lo = j < g.T ? _mm512_maskz_loadu_ps(m, v + j * g.vs + e) : _mm512_setzero_ps();
      const __m512 hi = j + 1 < g.T ? _mm512_maskz_loadu_ps(m, v + (j + 1) * g.vs + e) : _mm512_setzero_ps();
      const __m512i a = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(lo));
      const __m512i b = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(hi));
      _mm512_storeu_si512(row + e, _mm512_or_si512(a, _mm512_slli_epi32(b, 16)));
    }
  }
}

// Probabilities of one row as bf16 pairs of consecutive keys (n: a multiple of 16).
inline void probs_to_pairs(const float* s, int n, uint32_t* p2) {
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
#endif

// R rows (1..6) × NV vectors (1..8): the template instance for run-time sizes.
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

// Online-softmax update of one row over a chunk of n (padded) keys starting at c0: the valid keys
// of query i are [lo_i, i]. Turns s into probabilities (0 outside the valid range) and returns the
// factor exp(m_old - m_new) by which the row's output accumulator must be rescaled.
float softmax_row(float* s, int n, int64_t c0, int64_t lo_i, int64_t i, float& m, float& l) {
  const int64_t a = imax(lo_i - c0, 0), b = imin(i - c0 + 1, n);  // [a, b)
  if (a >= b) {
    for (int j = 0; j < n; j += kW) vstore(s + j, vzero());
    return 1.0f;
  }
  VF mx = vset1(-INFINITY);
  for (int64_t j = a / kW * kW; j < b; j += kW) mx = vmax_mask(mx, vrange(a - j, b - j), vload(s + j));
  const float hm = vhmax(mx), mnew = m > hm ? m : hm;
  const VF vm = vset1(mnew);
  VF sum = vzero();
  for (int64_t j = 0; j < n; j += kW) {
    if (j >= b || j + kW <= a) {
      vstore(s + j, vzero());
      continue;
    }
    const VF p = vmaskz(vrange(a - j, b - j), vexp(vsub(vload(s + j), vm)));
    sum = vadd(sum, p);
    vstore(s + j, p);
  }
  const float alpha = m == -INFINITY ? 0.0f : expf(m - mnew);
  l = l * alpha + vsum(sum);
  m = mnew;
  return alpha;
}

// K transposed into kt [hd][Tp] and V into vp [Tp][ldv], zero padded, bf16-rounded when g.bf16
// (this width has no bf16 dot product). Keys outer: K rows are read contiguously (they are ks
// floats apart, often a multiple of 4 KiB, so a column-wise walk would miss cache and TLB on every
// element); the hd rows of kt being written stay in L1.
template <bool Bf16>
void pack_kv_f32(const float* k, const float* v, const calq::sk::AttnGeom& g, float* kt, float* vp) {
  auto rnd = [](float x) { return Bf16 ? calq::bf16_to_f32(calq::f32_to_bf16(x)) : x; };
  for (int64_t j = 0; j < g.T; ++j) {
    const float* kj = k + j * g.ks;
    for (int e = 0; e < g.hd; ++e) kt[e * g.Tp + j] = rnd(kj[e]);
  }
  for (int e = 0; e < g.hd; ++e)
    for (int64_t j = g.T; j < g.Tp; ++j) kt[e * g.Tp + j] = 0.0f;
  for (int64_t j = 0; j < g.Tp; ++j) {
    float* row = vp + j * g.ldv;
    for (int e = 0; e < g.ldv; ++e) row[e] = (j < g.T && e < g.hd) ? rnd(v[j * g.vs + e]) : 0.0f;
  }
}

void attn_pack(const float* k, const float* v, const calq::sk::AttnGeom& g, void* kt, void* vp, uint32_t* tmp) {
#if defined(CALQ_SIMD_BF16_PAIRS)
  if (g.pairs) return pack_kv_pairs(k, v, g, static_cast<uint32_t*>(kt), static_cast<uint32_t*>(vp), tmp);
#endif
  if (g.bf16) return pack_kv_f32<true>(k, v, g, static_cast<float*>(kt), static_cast<float*>(vp));
  pack_kv_f32<false>(k, v, g, static_cast<float*>(kt), static_cast<float*>(vp));
}

// S = scale · Q Kᵀ over the chunk [c0, c0 + n): key tiles outer so a K tile stays in L1 for all
// rows; tiles beyond a row group's last query position are skipped (softmax zeroes them).
void attn_scores(const void* kt, int rows, int64_t c0, int n, const calq::sk::AttnGeom& g,
                 const calq::sk::AttnWork& w) {
  const int step = g.pairs ? 64 : kQkVecs * kW;
  for (int j = 0; j < n; j += step) {
    for (int r = 0; r < rows; r += kQkRows) {
      const int R = int(imin(kQkRows, rows - r));
      if (c0 + j > w.pos_max[r]) continue;  // every row of the group masks the tile
      float* s = w.s + r * g.lds + j;
#if defined(CALQ_SIMD_BF16_PAIRS)
      if (g.pairs) {
        const int NV = int(imin(4, (n - j) / 16)), hd2 = (g.hd + 1) / 2;
        const uint32_t* k2 = static_cast<const uint32_t*>(kt) + c0 + j;
        dispatch(R, NV, [&]<int RR, int VV>() {
          if constexpr (VV <= 4) qk_tile_bf16<RR, VV>(w.q2 + r * hd2, hd2, k2, g.Tp, hd2, g.scale, s, g.lds);
        });
        continue;
      }
#endif
      const int NV = int(imin(kQkVecs, (n - j) / kW));
      const float* kf = static_cast<const float*>(kt) + c0 + j;
      dispatch(R, NV, [&]<int RR, int VV>() {
        if constexpr (VV <= kQkVecs) qk_tile<RR, VV>(w.qp + r * g.hd, g.hd, kf, g.Tp, g.hd, g.scale, s, g.lds);
      });
    }
  }
}

// O = alpha · O + P · V over the chunk [c0, c0 + n).
void attn_pv(const void* vp, int rows, int64_t c0, int n, const calq::sk::AttnGeom& g, const calq::sk::AttnWork& w) {
  const int64_t ldo = g.ldv;
#if defined(CALQ_SIMD_BF16_PAIRS)
  if (g.pairs) {
    for (int r = 0; r < rows; ++r) probs_to_pairs(w.s + r * g.lds, n, w.p2 + r * (g.lds / 2));
    const int rp = g.nv <= 4 ? 6 : 2;
    for (int r = 0; r < rows; r += rp) {
      const int R = int(imin(rp, rows - r));
      const int nk = int(imin(n, round16(w.pos_max[r] - c0 + 1)));  // P = 0 beyond
      if (nk <= 0) continue;
      const uint32_t* v2 = static_cast<const uint32_t*>(vp) + (c0 / 2) * ldo;
      dispatch(R, g.nv, [&]<int RR, int VV>() {
        if constexpr (VV <= 4 || RR <= 2)
          pv_tile_bf16<RR, VV>(w.p2 + r * (g.lds / 2), g.lds / 2, nk / 2, v2, ldo, w.alpha + r, w.o + r * ldo, ldo);
      });
    }
    return;
  }
#endif
  if (g.bf16)  // P rounded to bf16 (the sum l keeps the f32 probabilities, as the pairs path)
    for (int r = 0; r < rows; ++r)
      for (int j = 0; j < n; j += kW) vstore(w.s + r * g.lds + j, vround_bf16(vload(w.s + r * g.lds + j)));
  // Column blocks of at most kPv vectors of head_dim; rows per block so that R·width ≤ 24 / 12.
  const int nvec = int(g.ldv / kW), kPv = kW == 16 ? 8 : 4;
  for (int cb = 0; cb < nvec; cb += kPv) {
    const int wv = int(imin(kPv, nvec - cb));
    const int rp = kW == 16 ? (wv <= 4 ? 6 : 2) : (wv <= 2 ? 6 : 3);
    for (int r = 0; r < rows; r += rp) {
      const int R = int(imin(rp, rows - r));
      const int nk = int(imin(n, round16(w.pos_max[r] - c0 + 1)));  // P = 0 beyond
      if (nk <= 0) continue;
      const float* v = static_cast<const float*>(vp) + c0 * ldo + cb * kW;
      dispatch(R, wv, [&]<int RR, int VV>() {
        if constexpr (VV <= kPv && (VV <= kPv / 2 || RR <= 3))
          pv_tile<RR, VV>(w.s + r * g.lds, g.lds, nk, v, ldo, w.alpha + r, w.o + r * ldo + cb * kW, ldo);
      });
    }
  }
}

void attn_task(const float* qb, float* ob, const void* kt, const void* vp, int kvh, int64_t i0, int64_t i1,
               const calq::sk::AttnGeom& g, const calq::sk::AttnWork& w) {
  const int nq = int(i1 - i0), rows = g.G * nq;
  const int64_t ldo = g.ldv;
  for (int64_t x = 0; x < rows * ldo; ++x) w.o[x] = 0.0f;
  for (int r = 0; r < rows; ++r) {
    w.m[r] = -INFINITY;
    w.l[r] = 0.0f;
  }
  // Q rows of the task, copied contiguous (row r = head gh, position i0 + t).
  for (int gh = 0; gh < g.G; ++gh)
    for (int t = 0; t < nq; ++t) {
      const int r = gh * nq + t;
      w.pos[r] = i0 + t;
      const float* q = qb + (i0 + t) * g.qs + int64_t(kvh * g.G + gh) * g.hd;
#if defined(CALQ_SIMD_BF16_PAIRS)
      if (g.pairs) {
        row_to_pairs(q, g.hd, w.q2 + r * ((g.hd + 1) / 2));
        continue;
      }
#endif
      float* d = w.qp + r * g.hd;
      if (g.bf16) {
        for (int e = 0; e < g.hd; ++e) d[e] = calq::bf16_to_f32(calq::f32_to_bf16(q[e]));
      } else {
        memcpy(d, q, sizeof(float) * size_t(g.hd));
      }
    }
  for (int r = 0; r < rows; ++r) {
    int64_t mx = 0;
    for (int u = r; u < imin(rows, r + kQkRows); ++u) mx = imax(mx, w.pos[u]);
    w.pos_max[r] = mx;
  }
  auto lo_of = [&](int64_t i) { return g.window > 0 ? imax(0, i - g.window + 1) : int64_t(0); };
  const int64_t kstart = lo_of(i0) / 16 * 16, kend = i1;  // keys [kstart, kend)
  for (int64_t c0 = kstart; c0 < kend; c0 += g.kc) {
    const int n = int(imin(g.kc, round16(kend - c0)));  // padded chunk width
    attn_scores(kt, rows, c0, n, g, w);
    for (int r = 0; r < rows; ++r) {  // online softmax per row
      const int64_t i = w.pos[r];
      w.alpha[r] = softmax_row(w.s + r * g.lds, n, c0, lo_of(i), i, w.m[r], w.l[r]);
    }
    attn_pv(vp, rows, c0, n, g, w);
  }
  for (int r = 0; r < rows; ++r) {
    const VF inv = vset1(1.0f / w.l[r]);
    const int gh = r / nq, t = r % nq;
    float* dst = ob + (i0 + t) * g.os + int64_t(kvh * g.G + gh) * g.hd;
    const float* o = w.o + r * ldo;
    for (int e = 0; e < g.hd; e += kW) vstoren(dst + e, vmul(vload(o + e), inv), g.hd - e);
  }
}
