// Synthetic models: real architecture shapes (Llama-1B-like, Llama-2-7B, Mistral-7B, ...) with
// seeded random weights, for speed work and benchmarks where no pretrained weights exist.
// Weights are N(0, 1/fan_in) (std 1/sqrt(fan_in)) for every linear layer, N(0, 1) for the
// embeddings, 1 for norm weights and 0 for norm biases; linear biases (Qwen2) are N(0, 1/fan_in).
// Every tensor is a pure function of (seed, tensor name, element index), independent of the
// thread count, so a folder written by `calq synth` and an in-memory MapSource are identical.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/decoder.h"
#include "util/json.h"
#include "util/progress.h"

namespace calq {

struct SynthPreset {
  std::string name, description;
};
const std::vector<SynthPreset>& synth_presets();

// config.json of a preset as save_pretrained would write it. layers > 0 overrides
// num_hidden_layers (shallow copies of a real shape for quick runs). Throws ArgError on an
// unknown preset name (listing the known ones).
Json synth_config_json(const std::string& preset, int layers = 0);
ModelConfig synth_config(const std::string& preset, int layers = 0);

// Planted activation outliers, for a stand-in of the outlier-heavy models of the paper (OPT): gains
// on the tensors that feed each linear's input, so that input channel c of a linear is multiplied
// by gain[c] while the weights stay random:
//   q/k/v inputs: the attention norm's weight and bias;  up/gate (fc1) inputs: the MLP norm's;
//   o (out_proj) inputs: the rows of v (and its bias);    down (fc2) inputs: the rows of up (and bias).
// From a profile of real per-channel input max|x| (SmoothQuant's act_scales, e.g. OPT-125m's in the
// data pack, data/opt-125m-act-scales): gain[c] = scale[c] / median(scale) of the same linear in
// layer floor(i · L_profile / L) — the real profile's shape, the median channel at gain 1. Or fixed
// hidden channels × factor on both norms (the tiny OPT fixture's planting: channel 17, × 20).
struct OutlierPlan {
  std::string act_scales;          // path of an act_scales safetensors file ("" = none)
  std::vector<int64_t> channels;   // or these hidden channels...
  double factor = 20.0;            // ...times this gain
  bool empty() const { return act_scales.empty() && channels.empty(); }
};
// Tensor name -> gain per element (1-D tensors) or per row (2-D [out, in] tensors).
using SynthGains = std::map<std::string, std::vector<float>>;
// Throws ArgError/FormatError when the profile lacks a linear of `cfg` or its widths differ.
SynthGains outlier_gains(const ModelConfig& cfg, const OutlierPlan& plan);

struct SynthOptions {
  uint64_t seed = 0;
  DType dtype = DType::F32;  // F32, BF16 or F16 storage
  ProgressFn progress;       // write_synth_model: MiB written
  std::shared_ptr<const SynthGains> gains;  // planted outliers (outlier_gains), applied before the dtype cast
};

struct SynthTensorSpec {
  std::string name;
  Shape shape;
  // Embeddings of a tied model (it is also the lm_head): drawn with std 1/sqrt(hidden) like a head,
  // not 1, or the logits would have std ~sqrt(hidden) and every prediction be one-hot (perplexity
  // ~1e60 for OPT-125m's shape). Positions of such a model take the same scale.
  bool tied_head = false;
};
// The tensors the decoder loads for `cfg` (HF names), in a stable order (file order).
std::vector<SynthTensorSpec> synth_tensor_specs(const ModelConfig& cfg);
// One tensor's values in `o.dtype`.
Tensor synth_tensor(const SynthTensorSpec& spec, const SynthOptions& o);

// All tensors in memory (o.dtype storage).
std::shared_ptr<MapSource> synth_source(const ModelConfig& cfg, const SynthOptions& o);
std::unique_ptr<Decoder> synth_decoder(const ModelConfig& cfg, const SynthOptions& o,
                                       ComputeType compute = ComputeType::F32);

// Writes a Hugging Face folder: config.json + model.safetensors, generating one tensor at a time
// and streaming it to disk (peak memory: the largest tensor). The safetensors write is atomic
// (temp name, then rename). Reports progress through o.progress.
void write_synth_model(const Json& config, const SynthOptions& o, const std::string& dir);

}  // namespace calq
