#include "kernels/vec.h"

#include "tensor/dtype.h"

namespace calq {

namespace {
void cvt_span(const float* s, uint16_t* d, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i), cvt_bf16_512(_mm512_loadu_ps(s + i)));
  if (i < n) {
    const __mmask16 m = __mmask16((1u << (n - i)) - 1);
    _mm256_mask_storeu_epi16(d + i, m, cvt_bf16_512(_mm512_maskz_loadu_ps(m, s + i)));
    return;
  }
#endif
  for (; i < n; ++i) d[i] = f32_to_bf16(s[i]);
}
}  // namespace

void f32_to_bf16_n(const float* src, uint16_t* dst, int64_t n) {
  constexpr int64_t kChunk = 1 << 14;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (chunks > 4)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t b = c * kChunk;
    cvt_span(src + b, dst + b, n - b < kChunk ? n - b : kChunk);
  }
}

}  // namespace calq
