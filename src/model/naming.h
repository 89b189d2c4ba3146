// Hugging Face module names per family. These names are the one address of a tensor or
// observer point everywhere in calq (stats files, logs, exports).
#pragma once
#include <functional>
#include <string>

#include "model/config.h"

namespace calq {

struct ModuleNames {
  std::string root;           // "model" or "model.decoder" (OPT)
  std::string embed_tokens;   // "<root>.embed_tokens"
  std::string embed_positions;  // OPT only
  std::string final_norm;     // "model.norm" / "model.decoder.final_layer_norm"
  std::string project_in, project_out;  // OPT-350m style
  std::string lm_head = "lm_head";
  // Per layer, relative to layer(i):
  std::string q = "self_attn.q_proj", k = "self_attn.k_proj", v = "self_attn.v_proj", o = "self_attn.o_proj";
  std::string gate = "mlp.gate_proj", up = "mlp.up_proj", down = "mlp.down_proj";
  std::string attn_norm = "input_layernorm", mlp_norm = "post_attention_layernorm";
  std::string q_norm = "self_attn.q_norm", k_norm = "self_attn.k_norm";

  std::string layer(int i) const { return root + ".layers." + std::to_string(i); }
  std::string in_layer(int i, const std::string& rel) const { return layer(i) + "." + rel; }

  // `root` is "model" (or "model.decoder" for OPT); OPT hub files without the "model." prefix
  // pass root "decoder".
  static ModuleNames for_config(const ModelConfig& c, const std::string& root);
  // The root a checkpoint uses: "model"; for OPT "model.decoder", or "decoder" when the file has
  // "decoder.embed_tokens.weight" but not "model.decoder.embed_tokens.weight" (`has` asks the file).
  static std::string root_for(const ModelConfig& c, const std::function<bool(const std::string&)>& has);
  // for_config(c, root_for(c, has)).
  static ModuleNames for_checkpoint(const ModelConfig& c, const std::function<bool(const std::string&)>& has);
};

}  // namespace calq
