// GPTQ (Frantar, Ashkboos, Hoefler, Alistarh 2022, "GPTQ: Accurate Post-Training Quantization for
// Generative Pre-trained Transformers", Algorithm 1), mirroring IST-DASLab/gptq `gptq.py` and
// AutoGPTQ `quantization/gptq.py` (static_groups, g_idx):
//  * dead inputs (H_ii = 0): H_ii = 1 and W[:, i] = 0;
//  * act-order (`desc_act`, §4 "act-order" heuristic): columns in order of decreasing H_ii;
//  * dampening λ = percdamp · mean(diag H) added to the diagonal (§4 "Cholesky reformulation");
//  * Hinv = upper Cholesky factor of H⁻¹ (step 3 of §4), float32 LAPACK, float64 retry;
//  * lazy batch updates over blocks of `block_size` columns (§4 "Lazy batch-updates");
//  * groups of G columns: parameters from the group's columns *as they stand when the group starts*;
//    like the reference, within a block that is the block-start state of W (the reference reads
//    W[:, i:i+G], not the block copy W1). static_groups: all group parameters from the (dead-zeroed)
//    W before any update, in natural column order, so g_idx stays c / G under act-order.
// Deviations: act-order uses a stable sort (torch.argsort leaves ties unspecified); scales are
// rounded to fp16 by default (see QuantScheme::f16_scales).
#pragma once
#include <cstdint>

#include "observe/hessian.h"
#include "quant/layer_run.h"
#include "quant/qstate.h"
#include "quant/quantizer.h"

namespace calq {

struct GptqConfig {
  int bits = 4;
  int group_size = 128;  // -1: one group per output channel
  bool sym = false;      // IST-DASLab gptq default (AutoGPTQ defaults to sym=True)
  double percdamp = 0.01;
  int block_size = 128;
  bool desc_act = false;
  bool static_groups = false;
  bool true_sequential = true;  // pipeline: q/k/v, then o, then gate/up, then down, each on updated inputs
  bool f16_scales = true;
  bool report_error = true;     // compute tr((W-Q) H (W-Q)ᵀ) (costs one [rows, cols]x[cols, cols] GEMM)

  void validate() const;  // ArgError naming the setting
  QuantScheme scheme() const;
  Json to_json() const;
};

struct GptqResult {
  QuantizedWeight qw;
  double loss = 0;       // gptq.py "Losses": Σ (w - q)² / (2 d²)
  double error = 0;      // tr((W-Q) H (W-Q)ᵀ) = (2/N) ||(W-Q) Xᵀ||² with the undamped H
  double reference = 0;  // tr(W H Wᵀ) = (2/N) ||W Xᵀ||²
  double rel_error() const { return reference > 0 ? error / reference : 0.0; }
  int dead_columns = 0;
  bool f64_fallback = false;
  double seconds_inverse = 0, seconds_quantize = 0, seconds_error = 0;
};

// Quantizes W [rows, cols] (row-major float32) given the symmetrized Hessian of its input.
// Throws ArgError on shape mismatches, Error when H + λI is not positive definite even in float64.
GptqResult gptq_quantize(const float* w, int64_t rows, int64_t cols, const Hessian& h, const GptqConfig& cfg);

// GPTQ on decoder layer i with inputs x (from the already-quantized layers before it, as gptq.py's
// sequential loop): Hessians of every linear through the observer API (one per shared input),
// with true_sequential the groups {q,k,v}, {o}, {gate,up}, {down} in turn, each on the outputs of
// the groups already quantized. `next` receives the output of the quantized layer. The model is
// left unchanged.
LayerResult gptq_quantize_layer(Decoder& m, int i, const LayerInputs& x, const GptqConfig& cfg, Tensor* next);

// tr((A) H (A)ᵀ) for A [rows, cols], H [cols, cols] symmetric (blocked GEMM).
double quadratic_trace(const float* a, int64_t rows, int64_t cols, const float* h);

}  // namespace calq
