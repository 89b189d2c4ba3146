// Internal: the bodies of the kernels of simd_kernels.h, written against the vector vocabulary of
// simd_avx512.h / simd_avx2.h (VF, kW, vload, vfma, vexp, ...). Included by simd_avx512.cpp and
// simd_avx2.cpp inside an anonymous namespace, after one of those headers. No library calls (no
// std:: templates or inline functions: their instances could be shared with other objects).
// (No include guard: see simd_avx512.h.)

inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

// ---- attention over a KV cache -------------------------------------------------------------------

// s[j] = scale · Σ_d q[d] · kt[d·ldk + j], j < n (keys of one contiguous run of slots).
inline void scores_run(const float* q, const float* kt, int64_t ldk, int hd, float scale, int64_t n, float* s) {
  const VF sc = vset1(scale);
  int64_t j = 0;
  for (; j + 4 * kW <= n; j += 4 * kW) {
    VF a0 = vzero(), a1 = vzero(), a2 = vzero(), a3 = vzero();
    for (int d = 0; d < hd; ++d) {
      const VF qd = vset1(q[d]);
      const float* k = kt + d * ldk + j;
      a0 = vfma(qd, vload(k), a0);
      a1 = vfma(qd, vload(k + kW), a1);
      a2 = vfma(qd, vload(k + 2 * kW), a2);
      a3 = vfma(qd, vload(k + 3 * kW), a3);
    }
    vstore(s + j, vmul(a0, sc));
    vstore(s + j + kW, vmul(a1, sc));
    vstore(s + j + 2 * kW, vmul(a2, sc));
    vstore(s + j + 3 * kW, vmul(a3, sc));
  }
  for (; j < n; j += kW) {
    const int64_t m = imin(kW, n - j);
    VF a = vzero();
    for (int d = 0; d < hd; ++d) a = vfma(vset1(q[d]), vloadn(kt + d * ldk + j, m), a);
    vstoren(s + j, vmul(a, sc), m);
  }
}

// o[0, w) += Σ_j p[j] · v[j·hd + db + ·] over n keys (slots of one contiguous run), w <= 4·kW.
inline void pv_run(const float* p, const float* v, int hd, int64_t db, int64_t w, int64_t n, VF* acc) {
  const int nv = int((w + kW - 1) / kW);
  for (int64_t j = 0; j < n; ++j) {
    const VF pj = vset1(p[j]);
    const float* row = v + j * hd + db;
    for (int i = 0; i < nv; ++i) acc[i] = vfma(pj, vloadn(row + i * kW, w - i * kW), acc[i]);
  }
}

void attn_cached(const calq::sk::AttnCachedTask& t) {
  const int hd = t.head_dim;
  const int64_t cap = t.cap;
  const float* kt = t.kt + int64_t(t.kv_head) * hd * cap;
  const float* vh = t.v + int64_t(t.kv_head) * cap * hd;
  float* s = t.scores;
  for (int64_t r = t.r0; r < t.r1; ++r) {
    const int64_t P = t.pos0 + r;
    const int64_t lo = t.window > 0 ? imax(0, P - t.window + 1) : 0, nk = P - lo + 1;
    for (int g = 0; g < t.group; ++g) {
      const int64_t h = int64_t(t.kv_head) * t.group + g;
      const float* q = t.q + r * t.q_ld + h * hd;
      // Scores over positions lo..P: one or two runs of slots (a ring wraps once at most).
      for (int64_t p = lo; p <= P;) {
        const int64_t slot = p % cap, n = imin(P - p + 1, cap - slot);
        scores_run(q, kt + slot, cap, hd, t.scale, n, s + (p - lo));
        p += n;
      }
      for (int i = 0; i < kW; ++i) s[nk + i] = s[0];  // pad the last vector with a score (scratch has room)
      VF mx = vset1(s[0]);
      for (int64_t j = 0; j < nk; j += kW) mx = vmax(mx, vload(s + j));
      const VF m = vset1(vhmax(mx));
      VF sum = vzero();
      for (int64_t j = 0; j < nk; j += kW) {
        const int64_t w = imin(kW, nk - j);
        const VF e = vexp(vsub(vloadn(s + j, w), m));
        vstoren(s + j, e, w);
        sum = vadd(sum, vloadn(s + j, w));
      }
      const VF inv = vset1(1.0f / vsum(sum));
      float* o = t.out + r * t.out_ld + h * hd;
      for (int64_t db = 0; db < hd; db += 4 * kW) {
        const int64_t w = imin(4 * kW, hd - db);
        VF acc[4] = {vzero(), vzero(), vzero(), vzero()};
        for (int64_t p = lo; p <= P;) {
          const int64_t slot = p % cap, n = imin(P - p + 1, cap - slot);
          pv_run(s + (p - lo), vh + slot * hd, hd, db, w, n, acc);
          p += n;
        }
        for (int i = 0; i * kW < w; ++i) vstoren(o + db + i * kW, vmul(acc[i], inv), w - i * kW);
      }
    }
  }
}
