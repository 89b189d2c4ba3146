// SmoothQuant (Xiao et al. 2022, "SmoothQuant: Accurate and Efficient Post-Training Quantization
// for Large Language Models"), mirroring mit-han-lab/smoothquant `smooth.py` + `fake_quant.py`:
//  * §4 Eq. 4: per input channel j of the linears after each norm,
//      s_j = max|X_j|^α / max|W_j|^(1-α)   (clamped to >= 1e-5; max|W_j| over all rows of all the
//    group's linears, clamped to >= 1e-5), with max|X_j| over every calibration token
//    (get_act_scales); the norm's weight (and bias) is divided by s, the linears' columns multiplied
//    by s (smooth_ln_fcs / smooth_ln_fcs_llama_like): the float function is unchanged;
//  * W8A8 (fake_quant.py W8A8Linear): every linear of the decoder layers gets 8-bit symmetric absmax
//    weights per output channel (quantize_weight_per_channel_absmax; or per tensor), and its input
//    is fake-quantized per token at run time (quantize_activation_per_token_absmax), or — the static
//    variant (the paper's O3 setting) — per tensor with a scale calibrated from max|X| over the
//    calibration set (get_static_decoder_layer_scales), saturating at int8 range.
//  * naive W8A8: the same quantization without smoothing (the paper's baseline).
// Deviations: the q·k / attn·v BMM inputs are not quantized (the reference does so only for OPT,
// quantize_bmm_input); lm_head stays float (as the reference). Activation statistics come from the
// float model layer by layer, which is what one full float pass gives.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "quant/act_quant.h"
#include "quant/layer_run.h"
#include "quant/qstate.h"
#include "quant/quantizer.h"
#include "quant/scale_groups.h"

namespace calq {

struct SmoothQuantConfig {
  bool smooth = true;  // false: naive W8A8 baseline
  double alpha = 0.5;  // migration strength
  int w_bits = 8, a_bits = 8;
  bool per_tensor_weights = false;
  ActGranularity act = ActGranularity::PerToken;

  void validate() const;
  QuantScheme weight_scheme() const;
  Json to_json() const;
  // {"bits", "granularity"} for state.json / config.json (modules filled in by the pipeline).
  Json activation_json() const;
};

// Per-channel max |x| of the inputs of layer i's linears over `x` (get_act_scales), by module name:
// the per-channel ranges ActStatsCollector keeps (observe/stats_collector.h). `next` (optional)
// receives the float layer output.
std::map<std::string, std::vector<float>> smoothquant_act_absmax(Decoder& m, int i, const LayerInputs& x,
                                                                  Tensor* next = nullptr);

// Smoothing factors of one group from its input's per-channel max |x|.
std::vector<float> smoothquant_scales(const ScaleGroup& g, const std::vector<float>& act_absmax, double alpha);

// The whole method on decoder layer i; `next` receives the float layer output.
LayerResult smoothquant_quantize_layer(Decoder& m, int i, const LayerInputs& x, const SmoothQuantConfig& cfg,
                                       Tensor* next);

}  // namespace calq
