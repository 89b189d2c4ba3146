// The layer-reconstruction errors reported per linear in a run's state (state.json "reports").
#pragma once
#include <cstdint>

#include "tensor/tensor.h"

namespace calq {

// Relative output error ||X (W_ref - W_q)ᵀ||² / ||X W_refᵀ||² over every ⌈N/max_rows⌉-th row of
// x [N, in] (W [out, in] F32). The layer-reconstruction metric reported per linear.
double relative_output_error(const Tensor& x, const Tensor& w_ref, const Tensor& w_q, int64_t max_rows = 2048);

// Relative weight error ||W - W_q||² / ||W||² (both F32 [out, in], same shape).
double relative_weight_error(const Tensor& w, const Tensor& w_q);

}  // namespace calq
