#include "model/config.h"

#include "util/error.h"

namespace calq {

const char* family_name(Family f) {
  switch (f) {
    case Family::Llama: return "llama";
    case Family::Mistral: return "mistral";
    case Family::Qwen2: return "qwen2";
    case Family::Cohere: return "cohere";
    case Family::OPT: return "opt";
  }
  return "?";
}

namespace {

Activation parse_activation(const std::string& s, const std::string& what) {
  if (s == "silu" || s == "swish") return Activation::SiLU;
  if (s == "relu") return Activation::ReLU;
  if (s == "gelu") return Activation::GELU;
  if (s == "gelu_new" || s == "gelu_pytorch_tanh" || s == "gelu_fast") return Activation::GELUTanh;
  throw UnsupportedError(what + ": unsupported activation '" + s + "'");
}

// Natural ranges of the integer fields (generous: the largest published models use a few percent of
// them), so that a value which would overflow a size computation is refused when it is read.
constexpr int64_t kMaxLayers = 100000;
constexpr int64_t kMaxHidden = int64_t(1) << 20;
constexpr int64_t kMaxIntermediate = int64_t(1) << 22;
constexpr int64_t kMaxVocab = int64_t(1) << 24;
constexpr int64_t kMaxHeads = 4096;    // and head_dim: heads * head_dim stays below 2^24
constexpr int64_t kMaxPositions = int64_t(1) << 26;
constexpr int64_t kMaxTokenId = INT32_MAX;

// Required integer field in [1, hi].
int dim(const Json& j, const char* key, const std::string& what, int64_t hi) {
  return int(json_get_int(j, key, what, 1, hi));
}
// Optional integer field in [lo, hi].
int int_or(const Json& j, const char* key, int64_t fallback, const std::string& what, int64_t lo, int64_t hi) {
  return int(json_get_int_or(j, key, fallback, what, lo, hi));
}

RopeScaling parse_rope_scaling(const Json& j, const std::string& what) {
  RopeScaling r;
  auto it = j.find("rope_scaling");
  if (it == j.end() || it->is_null()) return r;
  if (!it->is_object()) throw ConfigError(what + ": rope_scaling must be an object or null");
  const std::string at = what + " rope_scaling";
  r.type = json_get_or<std::string>(*it, "rope_type", json_get_or<std::string>(*it, "type", "default", at), at);
  if (r.type != "default" && r.type != "linear" && r.type != "dynamic" && r.type != "llama3")
    throw UnsupportedError(what + ": unsupported rope_scaling type '" + r.type + "'");
  r.factor = json_get_or<double>(*it, "factor", 1.0, at);
  if (r.factor <= 0) throw ConfigError(what + ": rope_scaling.factor must be positive");
  r.low_freq_factor = json_get_or<double>(*it, "low_freq_factor", 1.0, at);
  r.high_freq_factor = json_get_or<double>(*it, "high_freq_factor", 4.0, at);
  r.original_max_position = int_or(*it, "original_max_position_embeddings", 0, at, 0, kMaxPositions);
  if (r.type == "llama3" && (r.original_max_position <= 0 || r.high_freq_factor <= r.low_freq_factor))
    throw ConfigError(what + ": llama3 rope_scaling needs original_max_position_embeddings and "
                              "high_freq_factor > low_freq_factor");
  return r;
}

std::vector<int> parse_eos(const Json& j, const std::string& what) {
  auto it = j.find("eos_token_id");
  if (it == j.end() || it->is_null()) return {};
  if (!it->is_array()) return {int(json_int(*it, "eos_token_id", what, -1, kMaxTokenId))};
  std::vector<int> r;
  for (size_t k = 0; k < it->size(); ++k)
    r.push_back(int(json_int((*it)[k], "eos_token_id[" + std::to_string(k) + "]", what, -1, kMaxTokenId)));
  return r;
}

// Llama, Mistral and Qwen2 share one layout; only defaults and biases differ.
void read_llama_like(ModelConfig& c, const Json& j, const std::string& what) {
  c.hidden_size = dim(j, "hidden_size", what, kMaxHidden);
  c.intermediate_size = dim(j, "intermediate_size", what, kMaxIntermediate);
  c.num_layers = dim(j, "num_hidden_layers", what, kMaxLayers);
  c.num_heads = dim(j, "num_attention_heads", what, kMaxHeads);
  const int kv_default = c.family == Family::Mistral ? 8 : c.family == Family::Qwen2 ? 32 : c.num_heads;
  c.num_kv_heads = int_or(j, "num_key_value_heads", kv_default, what, 1, kMaxHeads);
  c.head_dim = int_or(j, "head_dim", c.hidden_size / c.num_heads, what, 1, kMaxHeads);
  c.max_position = int_or(j, "max_position_embeddings", 2048, what, 1, kMaxPositions);
  c.norm = NormKind::RMSNorm;
  c.norm_eps = json_get_or<double>(j, "rms_norm_eps", 1e-6, what);
  c.rope_theta = json_get_or<double>(j, "rope_theta", 10000.0, what);
  c.rope_scaling = parse_rope_scaling(j, what);
  c.act = parse_activation(json_get_or<std::string>(j, "hidden_act", "silu", what), what);
  c.tie_embeddings = json_get_or<bool>(j, "tie_word_embeddings", false, what);
  if (c.family == Family::Qwen2) {
    c.qkv_bias = true;
  } else if (c.family == Family::Llama) {
    c.qkv_bias = c.o_bias = json_get_or<bool>(j, "attention_bias", false, what);
    c.mlp_bias = json_get_or<bool>(j, "mlp_bias", false, what);
  }
  c.sliding_window.assign(size_t(std::max(c.num_layers, 0)), 0);
  if (c.family == Family::Mistral) {
    const int w = int_or(j, "sliding_window", 0, what, 0, kMaxPositions);
    for (auto& s : c.sliding_window) s = w;
  } else if (c.family == Family::Qwen2 && json_get_or<bool>(j, "use_sliding_window", false, what)) {
    // HF Qwen2: layers from max_window_layers on use the window.
    const int w = int_or(j, "sliding_window", 0, what, 0, kMaxPositions);
    const int from = int_or(j, "max_window_layers", 0, what, 0, kMaxLayers);
    for (int i = from; i < c.num_layers; ++i) c.sliding_window[size_t(i)] = w;
  }
}

void read_cohere(ModelConfig& c, const Json& j, const std::string& what) {
  c.hidden_size = dim(j, "hidden_size", what, kMaxHidden);
  c.intermediate_size = dim(j, "intermediate_size", what, kMaxIntermediate);
  c.num_layers = dim(j, "num_hidden_layers", what, kMaxLayers);
  c.num_heads = dim(j, "num_attention_heads", what, kMaxHeads);
  c.num_kv_heads = int_or(j, "num_key_value_heads", c.num_heads, what, 1, kMaxHeads);
  c.head_dim = c.hidden_size / c.num_heads;
  c.max_position = int_or(j, "max_position_embeddings", 8192, what, 1, kMaxPositions);
  c.norm = NormKind::LayerNorm;
  c.norm_bias = false;
  c.norm_eps = json_get_or<double>(j, "layer_norm_eps", 1e-5, what);
  c.rope_style = RopeStyle::Interleaved;
  c.rope_theta = json_get_or<double>(j, "rope_theta", 10000.0, what);
  c.rope_scaling = parse_rope_scaling(j, what);
  c.act = parse_activation(json_get_or<std::string>(j, "hidden_act", "silu", what), what);
  c.parallel_block = true;
  c.qkv_bias = c.o_bias = json_get_or<bool>(j, "attention_bias", false, what);
  c.qk_norm = json_get_or<bool>(j, "use_qk_norm", false, what);
  c.logit_scale = json_get_or<double>(j, "logit_scale", 0.0625, what);
  c.tie_embeddings = json_get_or<bool>(j, "tie_word_embeddings", true, what);
  c.sliding_window.assign(size_t(std::max(c.num_layers, 0)), 0);
}

void read_opt(ModelConfig& c, const Json& j, const std::string& what) {
  c.hidden_size = dim(j, "hidden_size", what, kMaxHidden);
  c.intermediate_size = dim(j, "ffn_dim", what, kMaxIntermediate);
  c.num_layers = dim(j, "num_hidden_layers", what, kMaxLayers);
  c.num_heads = dim(j, "num_attention_heads", what, kMaxHeads);
  c.num_kv_heads = c.num_heads;
  c.head_dim = c.hidden_size / c.num_heads;
  c.max_position = int_or(j, "max_position_embeddings", 2048, what, 1, kMaxPositions);
  c.norm = NormKind::LayerNorm;
  c.norm_bias = true;
  c.norm_eps = 1e-5;  // OPT has no config key for it
  c.pre_norm = json_get_or<bool>(j, "do_layer_norm_before", true, what);
  c.final_norm = c.pre_norm && !json_get_or<bool>(j, "_remove_final_layer_norm", false, what);
  c.pos = PosKind::Learned;
  c.position_offset = 2;
  c.gated_mlp = false;
  c.act = parse_activation(json_get_or<std::string>(j, "activation_function", "relu", what), what);
  const bool bias = json_get_or<bool>(j, "enable_bias", true, what);
  c.qkv_bias = c.o_bias = c.mlp_bias = bias;
  c.tie_embeddings = json_get_or<bool>(j, "tie_word_embeddings", true, what);
  c.word_embed_proj_dim = int_or(j, "word_embed_proj_dim", c.hidden_size, what, 1, kMaxHidden);
  c.sliding_window.assign(size_t(std::max(c.num_layers, 0)), 0);
}

}  // namespace

ModelConfig ModelConfig::from_json(const Json& j, const std::string& what) {
  if (!j.is_object()) throw ConfigError(what + ": expected a JSON object");
  ModelConfig c;
  c.model_type = json_get<std::string>(j, "model_type", what);
  if (auto a = j.find("architectures"); a != j.end() && a->is_array() && !a->empty() && (*a)[0].is_string())
    c.architecture = (*a)[0].get<std::string>();
  if (c.model_type == "llama") {
    c.family = Family::Llama;
  } else if (c.model_type == "mistral") {
    c.family = Family::Mistral;
  } else if (c.model_type == "qwen2") {
    c.family = Family::Qwen2;
  } else if (c.model_type == "cohere") {
    c.family = Family::Cohere;
  } else if (c.model_type == "opt") {
    c.family = Family::OPT;
  } else {
    throw UnsupportedError(what + ": unknown model_type '" + c.model_type +
                           "' (supported: llama, mistral, qwen2, cohere, opt)");
  }
  c.vocab_size = dim(j, "vocab_size", what, kMaxVocab);
  if (c.family == Family::Cohere) {
    read_cohere(c, j, what);
  } else if (c.family == Family::OPT) {
    read_opt(c, j, what);
  } else {
    read_llama_like(c, j, what);
  }
  if (c.head_dim <= 0)  // derived as hidden_size / num_attention_heads where the config has no head_dim
    throw ConfigError(what + ": hidden_size " + std::to_string(c.hidden_size) + " is smaller than num_attention_heads " +
                      std::to_string(c.num_heads));
  if (c.num_heads % c.num_kv_heads != 0)
    throw ConfigError(what + ": num_attention_heads must be a multiple of num_key_value_heads");
  if (c.pos == PosKind::Rope && c.head_dim % 2 != 0) throw ConfigError(what + ": head_dim must be even for RoPE");
  c.bos_token_id = int_or(j, "bos_token_id", -1, what, -1, kMaxTokenId);
  c.eos_token_ids = parse_eos(j, what);
  c.torch_dtype = json_get_or<std::string>(j, "torch_dtype", "", what);
  return c;
}

}  // namespace calq
