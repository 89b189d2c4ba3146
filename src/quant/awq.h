// AWQ (Lin et al. 2023, "AWQ: Activation-aware Weight Quantization for LLM Compression and
// Acceleration"), mirroring mit-han-lab/llm-awq `auto_scale.py` / `auto_clip.py` and AutoAWQ
// `quantize/quantizer.py`:
//  1. §3.2 search of per-input-channel scales for each scale group (scale_groups.h awq_scale_groups):
//     s = mean_t|x_t|^α (llm-awq get_act_scale; with duo_scaling: / (w_mean^(1-α) + 1e-4)),
//     clamped to >= 1e-4 and normalized by sqrt(max(s)·min(s)), α on the grid {0, 1/20, ..., 19/20};
//     the loss is the mean squared difference of the group's block output (attention block for
//     q/k/v, MLP for gate/up, the linear itself otherwise) with Q(W·s)/s against the float output.
//     All scales are searched on the unscaled layer, then applied together (as the reference).
//  2. Clipping search (auto_clip): for every linear except q/k, per output channel and group, the
//     max |w| is shrunk by (1 - i/20), i < 10 (max_shrink 0.5), keeping the value that minimizes
//     the mean squared group output error over a subsample of ~512 calibration tokens (every
//     ⌊N/512⌋-th), with the scaled inputs. The error Σ_t (x_t·(q-w))² is evaluated through the
//     group's Gram matrix Xᵀ X (the same quantity, cheaper on CPU).
//  3. RTN with AutoAWQ's zero-point quantizer (RangeRule::Awq), 4-bit, group 128 by default.
// Calibration activations follow the reference: every layer sees the float model's activations
// (AutoAWQ computes layer i+1's inputs with layer i before scaling and quantization).
// Deviation: float32 on CPU (the reference runs fp16 on GPU); a group size that does not divide the
// input width gets a partial last group (AutoAWQ asserts divisibility).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "quant/layer_run.h"
#include "quant/qstate.h"
#include "quant/quantizer.h"
#include "quant/scale_groups.h"

namespace calq {

struct AwqConfig {
  int bits = 4;
  int group_size = 128;  // -1: per output channel
  bool zero_point = true;
  int n_grid = 20;
  bool duo_scaling = false;  // AutoAWQ >= 0.2 default; the paper and llm-awq use x only
  bool clip = true;
  int clip_grid = 20;
  double max_shrink = 0.5;
  int clip_tokens = 512;
  bool f16_scales = true;
  std::optional<double> fixed_alpha;  // search only this α (tests: α = 0 is RTN)

  void validate() const;
  QuantScheme scheme() const;
  Json to_json() const;
};

struct AwqGroupReport {
  std::string group;
  double best_alpha = 0, best_loss = 0, loss_alpha0 = 0;
};

// Searches the scale of one group over inputs x [N, in] (N = n_seq*seq rows) and returns it.
// Leaves the model unchanged.
std::vector<float> awq_search_scale(Decoder& m, int layer, const ScaleGroup& g, const LayerInputs& x,
                                    const AwqConfig& cfg, AwqGroupReport* rep = nullptr);
// Best clipping max |w| per (row, group) of W [rows, cols] for inputs x [N, cols] (rows with
// valid[r] == 0 are padding and left out; valid may be null).
std::vector<float> awq_search_clip(const float* w, int64_t rows, int64_t cols, const Tensor& x, const AwqConfig& cfg,
                                   const std::vector<uint8_t>* valid = nullptr);
// Clamps W to ±max_val per (row, group) in place.
void awq_apply_clip(float* w, int64_t rows, int64_t cols, const std::vector<float>& max_val, const AwqConfig& cfg);

// The whole method on decoder layer i (float inputs x): returns the quantized weights, the changed
// norms/biases and a report; `next` receives the float layer output (next layer's input).
LayerResult awq_quantize_layer(Decoder& m, int i, const LayerInputs& x, const AwqConfig& cfg, Tensor* next);

}  // namespace calq
