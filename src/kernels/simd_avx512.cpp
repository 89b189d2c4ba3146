// AVX-512 instances of the kernels of simd_kernels.h (simd_impl.h, simd_attn_impl.h,
// simd_ops_impl.h on 16-lane vectors), compiled for AVX-512 whatever the build's -march; internal
// linkage only, the table is the one export.
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/simd_kernels.h"
#include "tensor/dtype.h"

#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 bug 105593 (AVX-512 intrinsics)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c,bmi2")
#endif

#define CALQ_SIMD_BF16_PAIRS 1  // simd_attn_impl.h: vdpbf16ps products
namespace calq::sk {
namespace {
#include "kernels/simd_avx512.h"
#include "kernels/simd_impl.h"
#include "kernels/simd_attn_impl.h"
#include "kernels/simd_ops_impl.h"
}  // namespace
}  // namespace calq::sk

#if defined(__GNUC__)
#pragma GCC pop_options
#endif

namespace calq::sk {

// The table itself is compiled for the baseline: callers on any CPU may ask for it.
const Kernels& kernels_avx512() {
  static const Kernels k = {attn_cached, attn_pack, attn_task, true, rms_norm_v, layer_norm_v,
                            gated_act_v, act_inplace_v, rope_v, cvt_bf16_v};
  return k;
}

}  // namespace calq::sk
