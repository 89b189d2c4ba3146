#include "formats/gguf_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>
#include <vector>

#include "formats/gguf_names.h"
#include "formats/gguf_tokenizer.h"
#include "io/checkpoint.h"
#include "model/config.h"
#include "tensor/dtype.h"
#include "util/error.h"

namespace calq {

namespace {

constexpr uint32_t kQuantizationVersion = 2;  // GGML_QNT_VERSION

bool low_bit(ggml::Type t) {
  return t == ggml::Type::Q4_0 || t == ggml::Type::Q4_1 || t == ggml::Type::Q5_0 || t == ggml::Type::Q5_1;
}

// llama.cpp's llama_ftype for "mostly <type>" files.
uint32_t file_type(ggml::Type t) {
  switch (t) {
    case ggml::Type::F32: return 0;
    case ggml::Type::F16: return 1;
    case ggml::Type::Q4_0: return 2;
    case ggml::Type::Q4_1: return 3;
    case ggml::Type::Q8_0: return 7;
    case ggml::Type::Q5_0: return 8;
    case ggml::Type::Q5_1: return 9;
    case ggml::Type::BF16: return 32;
    default: throw UnsupportedError("calq cannot write GGUF files of type " + ggml::type_name(t));
  }
}

std::string arch_of(const ModelConfig& c, const std::string& what) {
  if (c.family == Family::Qwen2) return "qwen2";
  if (c.family == Family::Llama || c.family == Family::Mistral) return "llama";
  throw UnsupportedError(what + ": GGUF export supports the Llama family (llama, mistral, qwen2), not " +
                         family_name(c.family));
}

// Sort key keeping llama.cpp's usual order: token_embd, blk.0.*, blk.1.*, ..., output_norm, output.
std::pair<int64_t, std::string> order_key(const std::string& g) {
  if (g.rfind("token_embd.", 0) == 0) return {-1, g};
  if (g.rfind("blk.", 0) == 0) return {std::stoll(g.substr(4)), g};
  return {int64_t(1) << 40, g};
}

bool is_q(const std::string& hf) { return hf.find(".self_attn.q_proj.") != std::string::npos; }
bool is_k(const std::string& hf) { return hf.find(".self_attn.k_proj.") != std::string::npos; }

// llama.cpp's convert (LlamaModel.generate_extra_tensors): per-frequency divisors of Llama-3.1 RoPE.
std::vector<float> llama3_rope_factors(const ModelConfig& c) {
  const RopeScaling& s = c.rope_scaling;
  const double low_wavelen = s.original_max_position / s.low_freq_factor;
  const double high_wavelen = s.original_max_position / s.high_freq_factor;
  std::vector<float> f;
  for (int i = 0; i < c.head_dim; i += 2) {
    const double freq = 1.0 / std::pow(c.rope_theta, double(i) / c.head_dim);
    const double wavelen = 2 * M_PI / freq;
    if (wavelen < high_wavelen) {
      f.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      f.push_back(float(s.factor));
    } else {
      const double smooth = (s.original_max_position / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      f.push_back(float(1.0 / ((1 - smooth) / s.factor + smooth)));
    }
  }
  return f;
}

void set_arch_metadata(gguf::Writer& w, const ModelConfig& c, const std::string& arch, const std::string& what) {
  using gguf::Value;
  const std::string p = arch + ".";
  w.set(p + "vocab_size", Value::u32(uint32_t(c.vocab_size)));
  w.set(p + "context_length", Value::u32(uint32_t(c.max_position)));
  w.set(p + "embedding_length", Value::u32(uint32_t(c.hidden_size)));
  w.set(p + "block_count", Value::u32(uint32_t(c.num_layers)));
  w.set(p + "feed_forward_length", Value::u32(uint32_t(c.intermediate_size)));
  w.set(p + "attention.head_count", Value::u32(uint32_t(c.num_heads)));
  w.set(p + "attention.head_count_kv", Value::u32(uint32_t(c.num_kv_heads)));
  w.set(p + "rope.freq_base", Value::f32(float(c.rope_theta)));
  w.set(p + "attention.layer_norm_rms_epsilon", Value::f32(float(c.norm_eps)));
  w.set(p + "rope.dimension_count", Value::u32(uint32_t(c.head_dim)));
  w.set(p + "attention.key_length", Value::u32(uint32_t(c.head_dim)));
  w.set(p + "attention.value_length", Value::u32(uint32_t(c.head_dim)));
  const int window = c.sliding_window.empty() ? 0 : c.sliding_window.front();
  for (int s : c.sliding_window)
    if (s != window) throw UnsupportedError(what + ": per-layer sliding windows cannot be written to GGUF");
  if (window > 0) {
    if (arch != "llama") throw UnsupportedError(what + ": sliding-window attention for " + arch + " in GGUF");
    // llama.cpp's llama architecture ignores the key (as convert_hf_to_gguf.py does for Mistral);
    // calq reads it back so that the model it loads is the one it exported.
    w.set(p + "attention.sliding_window", Value::u32(uint32_t(window)));
  }
  const RopeScaling& rs = c.rope_scaling;
  if (rs.type == "linear") {
    w.set(p + "rope.scaling.type", Value::str("linear"));
    w.set(p + "rope.scaling.factor", Value::f32(float(rs.factor)));
  } else if (rs.type == "llama3") {
    // llama.cpp takes the rope_freqs tensor; calq keeps the exact HF parameters in its namespace.
    w.set("calq.rope_scaling.type", Value::str("llama3"));
    w.set("calq.rope_scaling.factor", Value::f64(rs.factor));
    w.set("calq.rope_scaling.low_freq_factor", Value::f64(rs.low_freq_factor));
    w.set("calq.rope_scaling.high_freq_factor", Value::f64(rs.high_freq_factor));
    w.set("calq.rope_scaling.original_max_position_embeddings", Value::u32(uint32_t(rs.original_max_position)));
  } else if (rs.type != "default") {
    throw UnsupportedError(what + ": rope_scaling type '" + rs.type + "' cannot be written to GGUF by calq");
  }
}

void check_supported(const ModelConfig& c, const std::string& what) {
  if (c.norm != NormKind::RMSNorm || !c.gated_mlp || c.act != Activation::SiLU || c.parallel_block || c.qk_norm ||
      c.rope_style != RopeStyle::RotateHalf || c.pos != PosKind::Rope)
    throw UnsupportedError(what + ": not a Llama-family layout (RMSNorm, SwiGLU, rotate_half RoPE)");
}

// The float weight calq exports for an HF tensor: the fake-quant weight when the run quantized it,
// the replaced tensor when the run changed it, else the model's.
Tensor float_tensor(const Checkpoint& ck, const QuantState* q, const std::string& name) {
  if (q) {
    if (name.ends_with(".weight"))
      if (auto w = q->weight(name.substr(0, name.size() - 7))) return w->dequantize();
    if (auto r = q->replaced(name)) return *r;
  }
  return ck.get(name);
}

// "gptq 3-bit g48" for a run (its method and its first quantized weight's settings).
std::string run_description(const QuantState& q) {
  std::string d = q.info().is_object() ? q.info().value("method", std::string("?")) : "?";
  const auto mods = q.quantized_modules();
  if (!mods.empty())
    if (auto w = q.weight(mods.front()))
      d += " " + std::to_string(w->bits) + "-bit" + (w->group_size > 0 ? " g" + std::to_string(w->group_size) : " per-channel");
  return d;
}

// A quantized model's weights written into a GGUF type that cannot hold them unchanged are
// quantized a second time: refused unless asked for (GgufExportOptions::requantize).
void check_requantize(const std::string& model_dir, const Checkpoint& ck, const QuantState* q, const GgufExportOptions& o) {
  if (o.requantize) return;
  const bool lossy = o.type != ggml::Type::F32 || (o.output_type && *o.output_type != ggml::Type::F32);
  if (!lossy) return;
  std::string what;
  if (q)
    what = q->dir() + " (" + run_description(*q) + ")";
  else if (ck.config().is_object() && ck.config().contains("calq_quant"))
    what = model_dir + " (a calq fake-quant checkpoint)";
  else
    return;  // a float model: quantizing it is the point
  throw ArgError(what + ": GGUF " + ggml::type_name(o.type) +
                 " cannot store this run's integer codes; writing it rounds the fake-quant weights again with "
                 "ggml's " + ggml::type_name(o.type) + " quantizer, a second quantization that changes the model. "
                 "Ask for that with --requantize; or write --type f32 (the fake-quant weights exactly), or "
                 "--format gptq/awq (the codes themselves)");
}

ExportReport export_impl(const std::string& model_dir, const QuantState* q, const std::string& out_path,
                         const GgufExportOptions& o) {
  check_new_output_file(out_path);
  if (q) q->require_complete();
  if (!ggml::can_quantize(o.type)) throw UnsupportedError("calq cannot write GGUF tensors of type " + ggml::type_name(o.type));
  auto ck = std::make_shared<const Checkpoint>(Checkpoint::open(model_dir));
  check_requantize(model_dir, *ck, q, o);
  const std::string what = path_join(model_dir, "config.json");
  const ModelConfig cfg = ModelConfig::from_json(ck->config(), what);
  check_supported(cfg, what);
  const std::string arch = arch_of(cfg, what);
  if (q)
    for (const auto& m : q->quantized_modules())
      if (!ck->has(m + ".weight")) throw UnsupportedError(q->dir() + ": quantized '" + m + "' has no weight in " + model_dir);

  ExportReport rep;
  rep.out = out_path;
  if (q) rep.warnings = run_warnings(*q, "GGUF");
  gguf::Writer w;
  using gguf::Value;
  w.set("general.architecture", Value::str(arch));
  std::string name = o.name;
  if (name.empty()) name = std::filesystem::path(model_dir).filename().string();
  if (name.empty()) name = std::filesystem::path(model_dir).parent_path().filename().string();
  w.set("general.name", Value::str(name));
  w.set("general.file_type", Value::u32(file_type(o.type)));
  if (o.type != ggml::Type::F32 && o.type != ggml::Type::F16 && o.type != ggml::Type::BF16)
    w.set("general.quantization_version", Value::u32(kQuantizationVersion));
  w.set("general.quantized_by", Value::str(std::string("calq ") + CALQ_VERSION));
  if (q) {
    const Json info = q->info();
    if (info.is_object() && info.contains("method") && info["method"].is_string())
      w.set("calq.source_method", Value::str(info["method"].get<std::string>()));
  }
  set_arch_metadata(w, cfg, arch, what);
  for (const std::string& warning : add_tokenizer_metadata(w, model_dir, cfg)) rep.warnings.push_back(warning);

  std::vector<std::pair<std::string, std::string>> tensors;  // (gguf, hf)
  // A tied checkpoint that stores its one matrix only as lm_head.weight (TinyStories-656K): GGUF's
  // tied layout is token_embd.weight without output.weight, as the decoder reads it (decoder.cpp).
  const bool head_is_embedding = cfg.tie_embeddings && !ck->has("model.embed_tokens.weight");
  for (const auto& hf : ck->names()) {
    if (head_is_embedding && hf == "lm_head.weight") {
      tensors.emplace_back("token_embd.weight", hf);
    } else if (auto g = hf_to_gguf_name(hf)) {
      tensors.emplace_back(*g, hf);
    } else {
      rep.warnings.push_back("tensor '" + hf + "' has no llama.cpp counterpart; not exported");
    }
  }
  // Tied embeddings stored only as lm_head.weight (TinyStories-656K): llama.cpp's tied layout is
  // token_embd alone (no output.weight), so that one matrix goes there.
  if (cfg.tie_embeddings && std::none_of(tensors.begin(), tensors.end(), [](const auto& t) { return t.first == "token_embd.weight"; }))
    for (auto& t : tensors)
      if (t.first == "output.weight") t.first = "token_embd.weight";
  std::sort(tensors.begin(), tensors.end(), [](const auto& a, const auto& b) { return order_key(a.first) < order_key(b.first); });
  std::set<std::string> quantized, replaced;  // names only: the codes are read when the tensor is written
  if (q) {
    for (const auto& m : q->quantized_modules()) quantized.insert(m);
    for (const auto& t : q->replaced_tensors()) replaced.insert(t);
  }
  const bool tied = cfg.tie_embeddings;
  const bool permute = arch == "llama";
  for (const auto& [g, hf] : tensors) {
    const Shape shape = ck->info(hf).shape;
    if (shape.empty() || shape.size() > 2) throw UnsupportedError(model_dir + ": tensor '" + hf + "' is not 1-D or 2-D");
    const ggml::Type t = gguf_tensor_type(g, shape.back(), int(shape.size()), tied, o);
    const int heads = is_q(hf) ? cfg.num_heads : is_k(hf) ? cfg.num_kv_heads : 0;
    std::vector<int64_t> ne(shape.rbegin(), shape.rend());
    w.add_lazy(g, t, ne, [ck, q, hf = hf, t, heads, permute] {
      Tensor f = float_tensor(*ck, q, hf);
      if (permute && heads) f = permute_qk_to_gguf(f, heads);
      return gguf::quantize_tensor(f, t);
    });
    if (hf.ends_with(".weight") && quantized.count(hf.substr(0, hf.size() - 7))) {
      ++rep.quantized;
    } else if (replaced.count(hf)) {
      ++rep.replaced;
    } else {
      ++rep.copied;
    }
  }
  if (cfg.rope_scaling.type == "llama3") {
    const std::vector<float> f = llama3_rope_factors(cfg);
    w.add("rope_freqs.weight", Tensor::from_f32(f, {int64_t(f.size())}), ggml::Type::F32);
  }
  w.write(out_path, o.progress);
  return rep;
}

}  // namespace

ggml::Type gguf_tensor_type(const std::string& gguf_name, int64_t ne0, int ndim, bool tied, const GgufExportOptions& o) {
  if (ndim <= 1) return ggml::Type::F32;
  ggml::Type t = o.type;
  const bool output = gguf_name == "output.weight" || (tied && gguf_name == "token_embd.weight");
  if (output && !o.pure) t = o.output_type.value_or(low_bit(o.type) ? ggml::Type::Q8_0 : o.type);
  if (ne0 % ggml::type_traits(uint32_t(t)).block_size != 0) return ggml::Type::F16;
  return t;
}

namespace {
Tensor permute_rows(const Tensor& w, int n_head, bool to_gguf) {
  const Tensor f = w.to(DType::F32);
  const int64_t rows = f.dim(0), rest = rows ? f.numel() / rows : 0;
  if (n_head <= 0 || rows % n_head != 0 || (rows / n_head) % 2 != 0)
    throw ArgError("q/k permutation: " + std::to_string(rows) + " rows do not split into " + std::to_string(n_head) +
                   " heads of even size");
  const int64_t hd = rows / n_head, half = hd / 2;
  Tensor out = Tensor::empty(DType::F32, f.shape());
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t j = 0; j < 2; ++j) {
        const int64_t hf_row = h * hd + j * half + i, gguf_row = h * hd + 2 * i + j;
        const int64_t src = to_gguf ? hf_row : gguf_row, dst = to_gguf ? gguf_row : hf_row;
        std::copy_n(f.f32() + src * rest, rest, out.f32_mut() + dst * rest);
      }
  return out;
}
}  // namespace

Tensor permute_qk_to_gguf(const Tensor& w, int n_head) { return permute_rows(w, n_head, true); }
Tensor permute_qk_from_gguf(const Tensor& w, int n_head) { return permute_rows(w, n_head, false); }

ExportReport export_gguf(const std::string& model_dir, const std::string& out_path, const GgufExportOptions& o) {
  return export_impl(model_dir, nullptr, out_path, o);
}

ExportReport export_gguf(const QuantState& q, const std::string& out_path, const GgufExportOptions& o) {
  return export_impl(q.source_model(), &q, out_path, o);
}

// ---- load -------------------------------------------------------------------------------------

Json gguf_to_hf_config(const gguf::File& f) {
  const std::string arch = f.get_string("general.architecture");
  if (arch != "llama" && arch != "qwen2")
    throw UnsupportedError(f.path() + ": GGUF architecture '" + arch + "' (calq loads llama and qwen2)");
  const std::string p = arch + ".";
  // Unsigned all the way into the JSON: ModelConfig::from_json range-checks every field, naming the value as stored.
  auto u = [&](const std::string& k) { return f.get_uint(p + k); };
  auto u_or = [&](const std::string& k, uint64_t d) { return f.find(p + k) ? f.get_uint(p + k) : d; };
  const gguf::TensorInfo* embd = f.find_tensor("token_embd.weight");
  if (!embd || embd->ne.size() != 2) throw FormatError(f.path() + ": missing 2-D tensor 'token_embd.weight'");
  Json j;
  const uint64_t hidden = u("embedding_length"), heads = u("attention.head_count");
  if (heads == 0) throw FormatError(f.path() + ": " + p + "attention.head_count must be positive");
  const uint64_t head_dim = u_or("attention.key_length", hidden / heads);
  if (u_or("rope.dimension_count", head_dim) != head_dim)
    throw UnsupportedError(f.path() + ": partial rotary embeddings (rope.dimension_count != head size)");
  const uint64_t window = arch == "llama" ? u_or("attention.sliding_window", 0) : 0;
  j["model_type"] = arch == "qwen2" ? "qwen2" : window > 0 ? "mistral" : "llama";
  j["architectures"] = {arch == "qwen2" ? "Qwen2ForCausalLM" : window > 0 ? "MistralForCausalLM" : "LlamaForCausalLM"};
  j["vocab_size"] = embd->ne[1];
  j["hidden_size"] = hidden;
  j["intermediate_size"] = u("feed_forward_length");
  j["num_hidden_layers"] = u("block_count");
  j["num_attention_heads"] = heads;
  j["num_key_value_heads"] = u_or("attention.head_count_kv", heads);
  j["head_dim"] = head_dim;
  j["max_position_embeddings"] = u_or("context_length", 2048);
  j["rms_norm_eps"] = double(float(f.get_float(p + "attention.layer_norm_rms_epsilon")));
  j["rope_theta"] = f.find(p + "rope.freq_base") ? double(float(f.get_float(p + "rope.freq_base"))) : 10000.0;
  j["hidden_act"] = "silu";
  j["tie_word_embeddings"] = f.find_tensor("output.weight") == nullptr;
  j["torch_dtype"] = "float32";
  if (window > 0) j["sliding_window"] = window;
  if (arch == "llama") {
    const bool qb = f.find_tensor("blk.0.attn_q.bias") != nullptr, ob = f.find_tensor("blk.0.attn_output.bias") != nullptr;
    if (qb != ob) throw UnsupportedError(f.path() + ": llama with q/k/v biases but no output bias (or the reverse)");
    j["attention_bias"] = qb;
    j["mlp_bias"] = f.find_tensor("blk.0.ffn_up.bias") != nullptr;
  }
  if (f.find("tokenizer.ggml.bos_token_id")) j["bos_token_id"] = f.get_int("tokenizer.ggml.bos_token_id");
  if (f.find("tokenizer.ggml.eos_token_id")) j["eos_token_id"] = f.get_int("tokenizer.ggml.eos_token_id");
  if (f.find("calq.rope_scaling.type")) {
    if (f.get_string("calq.rope_scaling.type") != "llama3") throw UnsupportedError(f.path() + ": unknown calq.rope_scaling.type");
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", f.get_float("calq.rope_scaling.factor")},
                         {"low_freq_factor", f.get_float("calq.rope_scaling.low_freq_factor")},
                         {"high_freq_factor", f.get_float("calq.rope_scaling.high_freq_factor")},
                         {"original_max_position_embeddings", f.get_uint("calq.rope_scaling.original_max_position_embeddings")}};
  } else if (f.find_tensor("rope_freqs.weight")) {
    throw UnsupportedError(f.path() + ": per-frequency RoPE factors (rope_freqs) are not supported when loading");
  } else if (f.find(p + "rope.scaling.type")) {
    const std::string t = f.get_string(p + "rope.scaling.type");
    if (t == "linear") {
      j["rope_scaling"] = {{"type", "linear"}, {"factor", double(float(f.get_float(p + "rope.scaling.factor")))}};
    } else if (t != "none") {
      throw UnsupportedError(f.path() + ": rope scaling '" + t + "' is not supported when loading");
    }
  }
  return j;
}

GgufSource::GgufSource(std::shared_ptr<const gguf::File> f, const LoadOptions& o) : f_(std::move(f)), o_(o) {
  arch_ = f_->get_string("general.architecture");
  n_head_ = int(f_->get_uint(arch_ + ".attention.head_count"));
  n_head_kv_ = f_->find(arch_ + ".attention.head_count_kv") ? int(f_->get_uint(arch_ + ".attention.head_count_kv")) : n_head_;
}

const gguf::TensorInfo* GgufSource::info(const std::string& name) const {
  const auto g = hf_to_gguf_name(name);
  return g ? f_->find_tensor(*g) : nullptr;
}

bool GgufSource::permuted(const std::string& name) const { return arch_ == "llama" && (is_q(name) || is_k(name)); }
int GgufSource::heads_of(const std::string& name) const { return is_q(name) ? n_head_ : n_head_kv_; }

bool GgufSource::has(const std::string& name) const { return info(name) != nullptr; }

namespace {
bool is_float_type(ggml::Type t) { return t == ggml::Type::F32 || t == ggml::Type::F16 || t == ggml::Type::BF16; }
bool runs_quantized(ggml::Type t) {
  using ggml::Type;
  return t == Type::Q4_0 || t == Type::Q4_1 || t == Type::Q5_0 || t == Type::Q5_1 || t == Type::Q8_0;
}

// Rows of a quantized embedding table, dequantized on lookup.
class GgufRows final : public EmbeddingRows {
 public:
  GgufRows(std::shared_ptr<const gguf::File> f, const gguf::TensorInfo& t) : f_(std::move(f)), t_(t) {}
  int64_t rows() const override { return t_.ne[1]; }
  int64_t cols() const override { return t_.ne[0]; }
  void row(int64_t i, float* out) const override {
    const size_t rs = ggml::row_size(t_.type, t_.ne[0]);
    ggml::dequantize_row(t_.type, f_->tensor_data(t_) + size_t(i) * rs, out, t_.ne[0]);
  }

 private:
  std::shared_ptr<const gguf::File> f_;
  gguf::TensorInfo t_;
};
}  // namespace

Tensor GgufSource::get(const std::string& name) const {
  const gguf::TensorInfo* t = info(name);
  if (!t) throw FormatError(f_->path() + ": missing tensor for '" + name + "'");
  if (permuted(name)) return permute_qk_from_gguf(f_->to_f32(t->name), heads_of(name));
  if (is_float_type(t->type) && !o_.float_weights) return f_->view(*t);
  return f_->to_f32(t->name);
}

// Q4_0..Q8_0 blocks start with their f16 scale d (Q4_1/Q5_1: then the f16 minimum m,
// ggml-common.h): the one place a non-finite value can hide in them. Packed blocks are never
// dequantized, so this is their load-time check (#9: non-finite weights are refused at load).
void GgufSource::check_block_scales(ggml::Type type, const uint8_t* data, size_t bytes, const std::string& name) const {
  const size_t bs = ggml::type_traits(uint32_t(type)).type_size;
  const bool has_min = type == ggml::Type::Q4_1 || type == ggml::Type::Q5_1;
  for (size_t b = 0; b * bs < bytes; ++b)
    for (int f = 0; f < (has_min ? 2 : 1); ++f) {
      uint16_t h;
      std::memcpy(&h, data + b * bs + size_t(f) * 2, 2);
      const float v = f16_to_f32(h);
      if (!std::isfinite(v))
        throw NonFiniteError(where(name) + " holds a non-finite block " + (f ? "minimum" : "scale") + " (" +
                             (std::isnan(v) ? "NaN" : v > 0 ? "inf" : "-inf") + " in block " + std::to_string(b) +
                             "): the file is corrupt");
    }
}

std::shared_ptr<QuantPackedWeight> GgufSource::quantized_linear(const std::string& module, ComputeType c) const {
  const std::string name = module + ".weight";
  const gguf::TensorInfo* t = info(name);
  if (!t || o_.float_weights || !runs_quantized(t->type) || t->ne.size() != 2) return nullptr;
  const int64_t n = t->ne[1], k = t->ne[0];
  const size_t rs = ggml::row_size(t->type, k);
  const uint8_t* data = f_->tensor_data(*t);
  std::vector<uint8_t> rows;
  if (permuted(name)) {  // GGUF row 2i + j of a head is HF row j·(d/2) + i (permute_qk_from_gguf)
    const int heads = heads_of(name);
    if (heads <= 0 || n % heads != 0 || (n / heads) % 2 != 0)
      throw FormatError(f_->path() + ": '" + t->name + "' rows do not split into " + std::to_string(heads) + " heads");
    const int64_t hd = n / heads, half = hd / 2;
    rows.resize(size_t(n) * rs);
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < half; ++i)
        for (int64_t j = 0; j < 2; ++j)
          std::memcpy(rows.data() + size_t(h * hd + j * half + i) * rs, data + size_t(h * hd + 2 * i + j) * rs, rs);
    data = rows.data();
  }
  check_block_scales(t->type, data, size_t(n) * rs, name);
  const bool int8_ok = t->type == ggml::Type::Q4_0 || t->type == ggml::Type::Q4_1 || t->type == ggml::Type::Q8_0;
  const QActs acts = o_.acts == QActs::Int8 && int8_ok ? QActs::Int8 : QActs::Float;
  auto w = pack_ggml(t->type, data, n, k, c, (f_->path() + ": " + t->name).c_str(), acts);
  f_->release(*t);
  return w;
}

std::shared_ptr<const EmbeddingRows> GgufSource::embedding_rows(const std::string& name) const {
  const gguf::TensorInfo* t = info(name);
  if (!t || o_.float_weights || is_float_type(t->type) || t->ne.size() != 2 || !ggml::can_dequantize(t->type)) return nullptr;
  // The rows are dequantized only on lookup: refuse a non-finite value now, at load (#9). The
  // types with one f16 scale (and minimum) per block: their scales; the others: every row.
  const size_t rs = ggml::row_size(t->type, t->ne[0]);
  const uint8_t* data = f_->tensor_data(*t);
  if (runs_quantized(t->type)) {
    check_block_scales(t->type, data, size_t(t->ne[1]) * rs, name);
  } else {
    std::vector<float> row(size_t(t->ne[0]));
    for (int64_t i = 0; i < t->ne[1]; ++i) {
      ggml::dequantize_row(t->type, data + size_t(i) * rs, row.data(), t->ne[0]);
      for (int64_t j = 0; j < t->ne[0]; ++j)
        if (!std::isfinite(row[size_t(j)]))
          throw NonFiniteError(where(name) + " holds a non-finite value at [" + std::to_string(i) + ", " +
                               std::to_string(j) + "]: the file is corrupt");
    }
  }
  return std::make_shared<GgufRows>(f_, *t);
}

void GgufSource::release(const std::string& name) const {
  if (const gguf::TensorInfo* t = info(name)) f_->release(*t);
}

std::string GgufSource::where(const std::string& name) const {
  const auto g = hf_to_gguf_name(name);
  return f_->path() + ": tensor '" + (g ? *g + "' (" + name + ")" : name + "'");
}

std::unique_ptr<Decoder> load_gguf_model(const std::string& path, ComputeType compute, const LoadOptions& o) {
  std::shared_ptr<const gguf::File> f = gguf::File::open(path);
  const Json j = gguf_to_hf_config(*f);
  const ModelConfig cfg = ModelConfig::from_json(j, path);
  return Decoder::from_source(cfg, std::make_shared<GgufSource>(f, o), compute);
}

}  // namespace calq
