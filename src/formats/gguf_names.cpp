#include "formats/gguf_names.h"

#include <cctype>

namespace calq {

namespace {

struct Pair {
  const char* hf;
  const char* gguf;
};
// Whole-model tensors (module names without the suffix).
constexpr Pair kGlobal[] = {{"model.embed_tokens", "token_embd"}, {"model.norm", "output_norm"}, {"lm_head", "output"}};
// Per-layer modules, relative to model.layers.N / blk.N.
constexpr Pair kLayer[] = {
    {"input_layernorm", "attn_norm"},       {"self_attn.q_proj", "attn_q"}, {"self_attn.k_proj", "attn_k"},
    {"self_attn.v_proj", "attn_v"},         {"self_attn.o_proj", "attn_output"},
    {"post_attention_layernorm", "ffn_norm"}, {"mlp.gate_proj", "ffn_gate"}, {"mlp.up_proj", "ffn_up"},
    {"mlp.down_proj", "ffn_down"},
};

// Splits "<module>.weight" / "<module>.bias".
bool split_suffix(const std::string& name, std::string* module, std::string* suffix) {
  for (const char* s : {".weight", ".bias"}) {
    const std::string sfx = s;
    if (name.size() > sfx.size() && name.compare(name.size() - sfx.size(), sfx.size(), sfx) == 0) {
      *module = name.substr(0, name.size() - sfx.size());
      *suffix = sfx;
      return true;
    }
  }
  return false;
}

// "<prefix><digits>.<rest>" -> layer number and rest.
bool split_layer(const std::string& module, const std::string& prefix, std::string* layer, std::string* rest) {
  if (module.compare(0, prefix.size(), prefix) != 0) return false;
  size_t i = prefix.size(), j = i;
  while (j < module.size() && std::isdigit(static_cast<unsigned char>(module[j]))) ++j;
  if (j == i || j >= module.size() || module[j] != '.' || j - i > 9) return false;
  if (module[i] == '0' && j - i > 1) return false;  // no leading zeros: one name per layer
  *layer = module.substr(i, j - i);
  *rest = module.substr(j + 1);
  return true;
}

}  // namespace

std::optional<std::string> hf_to_gguf_name(const std::string& hf) {
  std::string module, suffix, layer, rest;
  if (!split_suffix(hf, &module, &suffix)) return std::nullopt;
  for (const auto& p : kGlobal)
    if (module == p.hf) return std::string(p.gguf) + suffix;
  if (split_layer(module, "model.layers.", &layer, &rest))
    for (const auto& p : kLayer)
      if (rest == p.hf) return "blk." + layer + "." + p.gguf + suffix;
  return std::nullopt;
}

std::optional<std::string> gguf_to_hf_name(const std::string& gguf) {
  std::string module, suffix, layer, rest;
  if (!split_suffix(gguf, &module, &suffix)) return std::nullopt;
  for (const auto& p : kGlobal)
    if (module == p.gguf) return std::string(p.hf) + suffix;
  if (split_layer(module, "blk.", &layer, &rest))
    for (const auto& p : kLayer)
      if (rest == p.gguf) return "model.layers." + layer + "." + p.hf + suffix;
  return std::nullopt;
}

}  // namespace calq
