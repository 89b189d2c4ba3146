// ModelConfig: everything the generic decoder needs, read from a Hugging Face config.json.
// Architecture differences are flags here (norm kind, position encoding, parallel block,
// biases, tied embeddings, ...), never separate forward passes.
#pragma once
#include <string>
#include <vector>

#include "util/json.h"

namespace calq {

enum class Family { Llama, Mistral, Qwen2, Cohere, OPT };
enum class NormKind { RMSNorm, LayerNorm };
enum class PosKind { Rope, Learned };
enum class RopeStyle { RotateHalf, Interleaved };  // pairs (i, i+d/2) vs (2i, 2i+1)
enum class Activation { SiLU, ReLU, GELU, GELUTanh };

const char* family_name(Family f);

struct RopeScaling {
  std::string type = "default";  // default | linear | dynamic | llama3
  double factor = 1.0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;
  int original_max_position = 0;
};

struct ModelConfig {
  std::string model_type;    // config.json "model_type"
  std::string architecture;  // first of "architectures"
  Family family = Family::Llama;

  int vocab_size = 0, hidden_size = 0, num_layers = 0;
  int num_heads = 0, num_kv_heads = 0, head_dim = 0, intermediate_size = 0;
  int max_position = 0;

  NormKind norm = NormKind::RMSNorm;
  bool norm_bias = false;  // LayerNorm with bias (OPT) or without (Cohere)
  double norm_eps = 1e-6;
  bool pre_norm = true;    // OPT do_layer_norm_before=false means post-LN (OPT-350m)
  bool final_norm = true;  // OPT _remove_final_layer_norm turns it off

  PosKind pos = PosKind::Rope;
  RopeStyle rope_style = RopeStyle::RotateHalf;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  int position_offset = 0;  // OPT learned positions use row position + 2

  bool gated_mlp = true;  // gate/up/down (SwiGLU) vs fc1/fc2
  Activation act = Activation::SiLU;
  bool parallel_block = false;  // Cohere: attention and MLP read one norm output
  bool qkv_bias = false, o_bias = false, mlp_bias = false;
  bool qk_norm = false;  // Cohere use_qk_norm: per-head LayerNorm on q and k

  bool tie_embeddings = false;
  double logit_scale = 1.0;  // Cohere multiplies logits
  int word_embed_proj_dim = 0;  // OPT: != hidden_size means project_in / project_out

  // Sliding-window attention per layer: 0 = full causal; W means query i sees keys (i-W, i].
  std::vector<int> sliding_window;

  int bos_token_id = -1;
  std::vector<int> eos_token_ids;
  std::string torch_dtype;

  // Throws ConfigError/UnsupportedError naming `what` (the config path) and the field at fault.
  static ModelConfig from_json(const Json& j, const std::string& what);
  int kv_dim() const { return num_kv_heads * head_dim; }
  int q_dim() const { return num_heads * head_dim; }
};

}  // namespace calq
