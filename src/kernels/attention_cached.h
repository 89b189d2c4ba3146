// Attention of new query rows over a KV cache (incremental decoding, model/kv_cache.h): n rows at
// positions pos0 .. pos0 + n − 1 of one sequence attend to every cached position they may see.
// The fast path (AVX-512 / AVX2 at run time, simd_kernels.h; scalar otherwise) computes scores
// scale·(q·k) in f32, an exact row softmax and Σ p·v; attention_cached_ref is the scalar
// definition (double accumulation).
#pragma once
#include <cstdint>

namespace calq {

struct CachedAttnDims {
  int heads = 0, kv_heads = 0, head_dim = 0;  // query head h reads kv head h / (heads / kv_heads)
  int window = 0;        // > 0: position P sees positions P − window < p <= P; 0: all p <= P
  float scale = 1.0f;
  int64_t pos0 = 0, n = 0;  // the query rows' positions
  int64_t cap = 0;          // cache slots: position p is in slot p % cap
  // Row strides in floats (0: heads·head_dim), e.g. q inside a fused q|k|v product.
  int64_t q_ld = 0, out_ld = 0;
};

// q [n][q_ld], kt [kv_heads][head_dim][cap] (keys transposed), v [kv_heads][cap][head_dim],
// out [n][out_ld]. Every position a row sees must be in the cache (the row's own included).
void attention_cached(const float* q, const float* kt, const float* v, float* out, const CachedAttnDims& d);
void attention_cached_ref(const float* q, const float* kt, const float* v, float* out, const CachedAttnDims& d);

}  // namespace calq
