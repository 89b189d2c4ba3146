#include "kernels/vec.h"

#include "kernels/isa.h"
#include "kernels/simd_kernels.h"
#include "tensor/dtype.h"

namespace calq {

void f32_to_bf16_n(const float* src, uint16_t* dst, int64_t n) {
  constexpr int64_t kChunk = 1 << 14;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  const sk::Kernels* k = sk::kernels_for(active_isa());
#pragma omp parallel for schedule(static) if (chunks > 4)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t b = c * kChunk, len = n - b < kChunk ? n - b : kChunk;
    if (k) {
      k->cvt_bf16(src + b, dst + b, len);
    } else {
      for (int64_t i = b; i < b + len; ++i) dst[i] = f32_to_bf16(src[i]);
    }
  }
}

}  // namespace calq
