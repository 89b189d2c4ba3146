#include "model/naming.h"

namespace calq {

ModuleNames ModuleNames::for_config(const ModelConfig& c, const std::string& root) {
  ModuleNames n;
  n.root = root;
  n.embed_tokens = root + ".embed_tokens";
  n.final_norm = root + ".norm";
  if (c.family == Family::OPT) {
    n.embed_positions = root + ".embed_positions";
    n.final_norm = root + ".final_layer_norm";
    n.project_in = root + ".project_in";
    n.project_out = root + ".project_out";
    n.o = "self_attn.out_proj";
    n.up = "fc1";
    n.down = "fc2";
    n.gate.clear();
    n.attn_norm = "self_attn_layer_norm";
    n.mlp_norm = "final_layer_norm";
  }
  if (c.parallel_block) n.mlp_norm.clear();
  return n;
}

std::string ModuleNames::root_for(const ModelConfig& c, const std::function<bool(const std::string&)>& has) {
  if (c.family != Family::OPT) return "model";
  return has("decoder.embed_tokens.weight") && !has("model.decoder.embed_tokens.weight") ? "decoder" : "model.decoder";
}

ModuleNames ModuleNames::for_checkpoint(const ModelConfig& c, const std::function<bool(const std::string&)>& has) {
  return for_config(c, root_for(c, has));
}

}  // namespace calq
