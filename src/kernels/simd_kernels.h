// Internal: calq's float kernels that run on every x86-64 CPU at its best width, one binary for
// all (the quantized GEMMs have their own table, qkern.h). Each kernel is written once
// (simd_impl.h) against a small float-vector vocabulary and compiled twice with `#pragma GCC
// target`: for AVX-512 (simd_avx512.cpp, 16 lanes) and for AVX2 + FMA (simd_avx2.cpp, 8 lanes),
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

struct Kernels {
  AttnCachedFn attn_cached;
};
const Kernels& kernels_avx512();
const Kernels& kernels_avx2();
// The table for `isa`, or null for Isa::Scalar.
inline const Kernels* kernels_for(Isa isa) {
  return isa == Isa::Avx512 ? &kernels_avx512() : isa == Isa::Avx2 ? &kernels_avx2() : nullptr;
}

}  // namespace calq::sk
