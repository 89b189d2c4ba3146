// Internal: calq's float kernels that run on every x86-64 CPU at its best width, one binary for
// all (the quantized GEMMs have their own table, qkern.h). Each kernel is written once
// (simd_impl.h: cached attention; simd_attn_impl.h: blocked attention; simd_ops_impl.h: norms,
// activations, RoPE, bf16 conversion) against a small float-vector vocabulary and compiled twice
// with `#pragma GCC target`: for AVX-512 (simd_avx512.cpp, 16 lanes) and for AVX2 + FMA (simd_avx2.cpp, 8 lanes),
// whatever the build's -march. Internal linkage only: each of those objects exports just its table.
// kernels_for(active_isa()) picks one at run time (kernels/isa.h); null means no AVX2, and the
// caller runs its scalar code.
#pragma once
#include <cstdint>

#include "kernels/isa.h"

namespace calq::sk {

// Attention of query rows [r0, r1) (positions pos0 + r) for the `group` query heads of kv head
// `kv_head` over a KV cache (kernels/attention_cached.h; model/kv_cache.h's layout): scores
// scale·(q·k) for the visible positions, softmax, Σ p·v.
struct AttnCachedTask {
  const float* q = nullptr;  // [rows][q_ld]: head h at h·head_dim
  int64_t q_ld = 0;
  const float* kt = nullptr;  // [kv_heads][head_dim][cap]
  const float* v = nullptr;   // [kv_heads][cap][head_dim]
  float* out = nullptr;       // [rows][out_ld]
  int64_t out_ld = 0;
  int64_t cap = 0, pos0 = 0, r0 = 0, r1 = 0;
  int head_dim = 0, group = 1, kv_head = 0, window = 0;
  float scale = 1.0f;
  float* scores = nullptr;  // scratch: at least the visible positions of one row + 64 floats
};
using AttnCachedFn = void (*)(const AttnCachedTask& t);


// ---- blocked causal attention (kernels/attention.cpp: the driver; simd_attn_impl.h: the kernels) --

// Geometry of one attention() call. Keys and head_dim are padded to 16 floats for both widths.
struct AttnGeom {
  int64_t T, qs, ks, vs, os;  // row strides of q, k, v, out
  int G, hd, nv;              // nv = 16-float blocks per head_dim
  int window;
  float scale;
  bool bf16;    // bf16-rounded Q, K, P, V (AttnDims::bf16)
  bool pairs;   // bf16 as packed pairs for dot-product instructions (Kernels::attn_bf16_pairs)
  int64_t Tp;   // row stride of the transposed K: keys padded to 16, an odd number of cache lines
  int64_t ldv;  // row stride of the packed V: 16·nv
  int64_t kc;   // keys per chunk
  int64_t lds;  // row stride of the S tile: kc + 16 (again an odd number of cache lines)
};
// A task's scratch (the driver sizes it, attention.cpp): rows = G·(query positions).
struct AttnWork {
  float *s, *o, *m, *l, *alpha, *qp;  // s: rows·lds, o: rows·ldv, qp: rows·hd
  uint32_t *q2, *p2;                  // pairs path: rows·hd2, rows·lds/2
  int64_t *pos, *pos_max;             // rows each
};
// Packs K and V of one (sequence, kv head) for the task kernel: f32 kt [hd][Tp] + vp [Tp][ldv], or
// (g.pairs) bf16 pairs kt2 [hd/2][Tp] + v2 [Tp/2][ldv]. tmp: T·hd/2 words of scratch.
using AttnPackFn = void (*)(const float* k, const float* v, const AttnGeom& g, void* kt, void* vp, uint32_t* tmp);
// Query positions [i0, i1) of the G heads sharing kv head `kvh` (qb/ob: the sequence's q/out rows).
using AttnTaskFn = void (*)(const float* qb, float* ob, const void* kt, const void* vp, int kvh, int64_t i0,
                            int64_t i1, const AttnGeom& g, const AttnWork& w);

// ---- row kernels of kernels/ops.h (simd_ops_impl.h; the same formulas as the *_ref) -------------
using RmsNormFn = void (*)(const float* x, int64_t rows, int64_t n, const float* w, float eps, float* y);
using LayerNormFn = void (*)(const float* x, int64_t rows, int64_t n, const float* w, const float* b, float eps,
                             float* y);
// act: 0 SiLU, 1 ReLU, 2 GELU-tanh (GELU-erf stays scalar).
using GatedActFn = void (*)(float* g, const float* u, int64_t n, int act);
using ActFn = void (*)(float* x, int64_t n, int act);
using RopeFn = void (*)(float* x, int64_t rows, int heads, int dim, const int32_t* pos, const float* cos,
                        const float* sin, int half, int64_t ld);
// dst[i] = bf16(src[i]), round to nearest even (one thread).
using CvtBf16Fn = void (*)(const float* src, uint16_t* dst, int64_t n);

struct Kernels {
  AttnCachedFn attn_cached;
  AttnPackFn attn_pack;
  AttnTaskFn attn_task;
  bool attn_bf16_pairs;  // native bf16 dot products (AVX512-BF16); else bf16 is rounded f32
  RmsNormFn rms_norm;
  LayerNormFn layer_norm;
  GatedActFn gated_act;
  ActFn act_inplace;
  RopeFn rope;
  CvtBf16Fn cvt_bf16;
};
const Kernels& kernels_avx512();
const Kernels& kernels_avx2();
// The table for `isa`, or null for Isa::Scalar.
inline const Kernels* kernels_for(Isa isa) {
  return isa == Isa::Avx512 ? &kernels_avx512() : isa == Isa::Avx2 ? &kernels_avx2() : nullptr;
}

}  // namespace calq::sk
