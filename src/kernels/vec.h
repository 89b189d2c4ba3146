// Vectorised helpers shared by the fast kernels: bf16 conversion at the CPU's best width (chosen
// at run time, simd_kernels.h), rounding to nearest even exactly like calq::f32_to_bf16.
#pragma once
#include <cstdint>

namespace calq {

// dst[i] = bf16(src[i]) (round to nearest even), n elements. Multi-threaded when n is large.
void f32_to_bf16_n(const float* src, uint16_t* dst, int64_t n);

}  // namespace calq
