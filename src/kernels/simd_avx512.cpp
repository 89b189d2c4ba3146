// AVX-512 instances of the kernels of simd_kernels.h (simd_impl.h on 16-lane vectors), compiled
// for AVX-512 whatever the build's -march; internal linkage only, the table is the one export.
#include <immintrin.h>

#include <cstdint>

#include "kernels/simd_kernels.h"

#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 bug 105593 (AVX-512 intrinsics)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c,bmi2")
#endif

namespace calq::sk {
namespace {
#include "kernels/simd_avx512.h"
#include "kernels/simd_impl.h"
}  // namespace
}  // namespace calq::sk

#if defined(__GNUC__)
#pragma GCC pop_options
#endif

namespace calq::sk {

// The table itself is compiled for the baseline: callers on any CPU may ask for it.
const Kernels& kernels_avx512() {
  static const Kernels k = {attn_cached};
  return k;
}

}  // namespace calq::sk
