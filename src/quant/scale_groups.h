// How the linears of a decoder layer group by shared input, and the per-architecture scale groups
// of AWQ and SmoothQuant: a preceding operator whose outputs are divided by per-channel scales s
// while the input channels of the linears after it are multiplied by s (the float function is
// unchanged).
#pragma once
#include <set>
#include <string>
#include <vector>

#include "model/decoder.h"

namespace calq {

// Linears of a layer grouped by shared input: {q,k,v}, {o}, {gate,up}, {down} (OPT: {fc1}, {fc2}).
std::vector<std::vector<Linear*>> input_groups(DecoderLayer& L);
std::vector<std::vector<std::string>> input_group_names(DecoderLayer& L);

// A group of linears whose input channels are scaled by s while the preceding operator's outputs
// are divided by s (AWQ Fig. / SmoothQuant Eq. 3): prev is a norm (scaled weight and bias) or a
// linear (scaled output rows and bias).
struct ScaleGroup {
  std::string prev_name;         // HF module name of the preceding op
  Norm* prev_norm = nullptr;
  Linear* prev_linear = nullptr;
  std::vector<Linear*> layers;   // scaled input channels
  enum class Inspect { Attention, Mlp, Linear } inspect = Inspect::Linear;  // AWQ loss target
  std::string describe() const;
};

// AutoAWQ's get_layers_for_scaling (llama/mistral/qwen2 and opt): attn norm -> q,k,v (attention
// output), v -> o (only when v_proj and o_proj have equal shapes: MHA), mlp norm -> gate,up (MLP
// output; OPT: -> fc1), up -> down (OPT: fc1 -> fc2). UnsupportedError for other blocks.
std::vector<ScaleGroup> awq_scale_groups(Decoder& m, int i);
// SmoothQuant smooth_lm: attn norm -> q,k,v and mlp norm -> gate,up / fc1; a parallel block
// (Cohere) has one norm -> q,k,v,gate,up. UnsupportedError for post-LN OPT.
std::vector<ScaleGroup> smoothquant_groups(Decoder& m, int i);

// Divides the prev op's outputs by s and multiplies the layers' input columns by s (on fresh F32
// copies; views of the checkpoint are never written). Adds to `changed` the HF names of the tensors
// that are not quantized afterwards (norm weight/bias, prev linear bias).
void apply_channel_scale(ScaleGroup& g, const std::vector<float>& s, std::set<std::string>* changed);

}  // namespace calq
