#include "model/synthetic.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "io/checkpoint.h"
#include "util/error.h"
#include "util/progress.h"

namespace calq {

namespace {

struct PresetShape {
  const char* name;
  const char* description;
  const char* model_type;  // llama | mistral
  int hidden, intermediate, layers, heads, kv_heads, vocab, max_position;
  double rope_theta, norm_eps;
  int sliding_window;
};

// Shapes from the public config.json of each model family (rounded names, synthetic weights).
constexpr PresetShape kPresets[] = {
    {"llama-1b", "Llama-shaped ~1.1B: hidden 2048, 16 layers, 32/8 heads, ffn 8192, vocab 32000, untied", "llama",
     2048, 8192, 16, 32, 8, 32000, 2048, 10000.0, 1e-5, 0},
    {"llama-7b", "Llama-2-7B shape: hidden 4096, 32 layers, 32 heads (MHA), ffn 11008, vocab 32000", "llama", 4096,
     11008, 32, 32, 32, 32000, 4096, 10000.0, 1e-5, 0},
    {"mistral-7b", "Mistral-7B-v0.1 shape: hidden 4096, 32 layers, 32/8 heads, ffn 14336, vocab 32000, window 4096",
     "mistral", 4096, 14336, 32, 32, 8, 32000, 32768, 10000.0, 1e-5, 4096},
    {"llama3-8b", "Llama-3-8B shape: hidden 4096, 32 layers, 32/8 heads, ffn 14336, vocab 128256, theta 5e5",
     "llama", 4096, 14336, 32, 32, 8, 128256, 8192, 500000.0, 1e-5, 0},
    {"llama-tiny", "small Llama for tests: hidden 256, 4 layers, 8/4 heads, ffn 688, vocab 2048", "llama", 256, 688,
     4, 8, 4, 2048, 2048, 10000.0, 1e-5, 0},
};

const PresetShape& find_preset(const std::string& name) {
  std::string known;
  for (const auto& p : kPresets) {
    if (name == p.name) return p;
    known += std::string(known.empty() ? "" : ", ") + p.name;
  }
  throw ArgError("unknown synthetic preset '" + name + "' (known: " + known + ")");
}

uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

enum class Fill { Normal, Ones, Zeros };

struct FillRule {
  Fill fill;
  double std;
};

FillRule rule_for(const SynthTensorSpec& s) {
  const std::string& n = s.name;
  auto ends_with = [&](const char* suf) {
    const size_t l = std::strlen(suf);
    return n.size() >= l && n.compare(n.size() - l, l, suf) == 0;
  };
  if (s.shape.size() == 2 && (n.find("embed_tokens") != std::string::npos || n.find("embed_positions") != std::string::npos))
    return {Fill::Normal, 1.0};
  if (s.shape.size() == 2) return {Fill::Normal, 1.0 / std::sqrt(double(s.shape[1]))};  // linear [out, in]
  const bool norm = n.find("norm") != std::string::npos || n.find("layer_norm") != std::string::npos;
  if (norm) return {ends_with(".bias") ? Fill::Zeros : Fill::Ones, 0.0};
  return {Fill::Normal, 0.02};  // linear biases
}

// Chunk c of a tensor draws from its own stream seeded by (seed, name, c): thread-count independent.
constexpr int64_t kChunk = 1 << 16;

void fill_normal(float* out, int64_t n, uint64_t key, double std) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(dynamic, 4)
  for (int64_t c = 0; c < chunks; ++c) {
    uint64_t s = key ^ (uint64_t(c) * 0xd1b54a32d192ed03ull);
    const int64_t b = c * kChunk, e = std::min(n, b + kChunk);
    for (int64_t i = b; i < e; i += 2) {
      // Box-Muller on two 24-bit uniforms: u1 in (0, 1], u2 in [0, 1).
      const uint64_t r = splitmix64(s);
      const float u1 = float((r >> 40) + 1) * (1.0f / 16777216.0f);
      const float u2 = float((r >> 16) & 0xffffff) * (1.0f / 16777216.0f);
      const float rad = std::sqrt(-2.0f * std::log(u1)) * float(std);
      const float th = 6.28318530717958648f * u2;
      out[i] = rad * std::cos(th);
      if (i + 1 < e) out[i + 1] = rad * std::sin(th);
    }
  }
}

}  // namespace

const std::vector<SynthPreset>& synth_presets() {
  static const std::vector<SynthPreset> v = [] {
    std::vector<SynthPreset> r;
    for (const auto& p : kPresets) r.push_back({p.name, p.description});
    return r;
  }();
  return v;
}

Json synth_config_json(const std::string& preset, int layers) {
  const PresetShape& p = find_preset(preset);
  const bool mistral = std::string(p.model_type) == "mistral";
  Json j = {{"architectures", {mistral ? "MistralForCausalLM" : "LlamaForCausalLM"}},
            {"model_type", p.model_type},
            {"hidden_size", p.hidden},
            {"intermediate_size", p.intermediate},
            {"num_hidden_layers", layers > 0 ? layers : p.layers},
            {"num_attention_heads", p.heads},
            {"num_key_value_heads", p.kv_heads},
            {"vocab_size", p.vocab},
            {"max_position_embeddings", p.max_position},
            {"rms_norm_eps", p.norm_eps},
            {"rope_theta", p.rope_theta},
            {"hidden_act", "silu"},
            {"tie_word_embeddings", false},
            {"bos_token_id", 1},
            {"eos_token_id", 2},
            {"torch_dtype", "float32"},
            {"calq_synthetic_preset", p.name}};
  if (mistral) j["sliding_window"] = p.sliding_window;
  return j;
}

ModelConfig synth_config(const std::string& preset, int layers) {
  return ModelConfig::from_json(synth_config_json(preset, layers), "synthetic preset " + preset);
}

std::vector<SynthTensorSpec> synth_tensor_specs(const ModelConfig& c) {
  const std::string root = c.family == Family::OPT ? "model.decoder" : "model";
  const ModuleNames n = ModuleNames::for_config(c, root);
  const int64_t H = c.hidden_size, E = c.family == Family::OPT ? c.word_embed_proj_dim : H;
  const int64_t I = c.intermediate_size;
  const bool ln_bias = c.norm == NormKind::LayerNorm && c.norm_bias;
  std::vector<SynthTensorSpec> v;
  auto linear = [&](const std::string& name, int64_t out, int64_t in, bool bias) {
    v.push_back({name + ".weight", {out, in}});
    if (bias) v.push_back({name + ".bias", {out}});
  };
  auto norm = [&](const std::string& name) {
    v.push_back({name + ".weight", {H}});
    if (ln_bias) v.push_back({name + ".bias", {H}});
  };
  v.push_back({n.embed_tokens + ".weight", {c.vocab_size, E}});
  if (c.pos == PosKind::Learned) v.push_back({n.embed_positions + ".weight", {c.max_position + c.position_offset, H}});
  if (E != H) {
    linear(n.project_in, H, E, false);
    linear(n.project_out, E, H, false);
  }
  for (int i = 0; i < c.num_layers; ++i) {
    auto at = [&](const std::string& rel) { return n.in_layer(i, rel); };
    norm(at(n.attn_norm));
    if (!c.parallel_block) norm(at(n.mlp_norm));
    linear(at(n.q), c.q_dim(), H, c.qkv_bias);
    linear(at(n.k), c.kv_dim(), H, c.qkv_bias);
    linear(at(n.v), c.kv_dim(), H, c.qkv_bias);
    linear(at(n.o), H, c.q_dim(), c.o_bias);
    if (c.qk_norm) {
      v.push_back({at(n.q_norm) + ".weight", {c.num_heads, c.head_dim}});
      v.push_back({at(n.k_norm) + ".weight", {c.num_kv_heads, c.head_dim}});
    }
    if (c.gated_mlp) linear(at(n.gate), I, H, c.mlp_bias);
    linear(at(n.up), I, H, c.mlp_bias);
    linear(at(n.down), H, I, c.mlp_bias);
  }
  if (c.final_norm) norm(n.final_norm);
  if (!c.tie_embeddings) linear(n.lm_head, c.vocab_size, E, false);
  return v;
}

Tensor synth_tensor(const SynthTensorSpec& spec, const SynthOptions& o) {
  if (o.dtype != DType::F32 && o.dtype != DType::BF16 && o.dtype != DType::F16)
    throw ArgError(std::string("synthetic weights: unsupported dtype ") + dtype_name(o.dtype) + " (F32, BF16, F16)");
  Tensor t = Tensor::empty(DType::F32, spec.shape);
  const FillRule r = rule_for(spec);
  float* d = t.f32_mut();
  const int64_t n = t.numel();
  if (r.fill == Fill::Normal) {
    uint64_t s = o.seed ^ fnv1a(spec.name);
    fill_normal(d, n, splitmix64(s), r.std);
  } else {
    std::fill(d, d + n, r.fill == Fill::Ones ? 1.0f : 0.0f);
  }
  return t.to(o.dtype);
}

std::shared_ptr<MapSource> synth_source(const ModelConfig& cfg, const SynthOptions& o) {
  auto src = std::make_shared<MapSource>();
  for (const auto& s : synth_tensor_specs(cfg)) src->tensors[s.name] = synth_tensor(s, o);
  return src;
}

std::unique_ptr<Decoder> synth_decoder(const ModelConfig& cfg, const SynthOptions& o, ComputeType compute) {
  return Decoder::from_source(cfg, synth_source(cfg, o), compute);
}

void write_synth_model(const Json& config, const SynthOptions& o, const std::string& dir) {
  const ModelConfig cfg = ModelConfig::from_json(config, "synthetic config");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw IoError(dir + ": cannot create folder (" + ec.message() + ")");
  Json cj = config;
  cj["torch_dtype"] = o.dtype == DType::BF16 ? "bfloat16" : o.dtype == DType::F16 ? "float16" : "float32";
  cj["calq_synthetic_seed"] = o.seed;
  {
    const std::string p = path_join(dir, "config.json");
    std::ofstream f(p);
    f << cj.dump(2) << "\n";
    if (!f) throw IoError(p + ": write failed");
  }
  // safetensors header first (all shapes are known), then each tensor as it is generated.
  const auto specs = synth_tensor_specs(cfg);
  Json h = Json::object();
  h["__metadata__"] = {{"format", "pt"}, {"calq_synthetic_seed", std::to_string(o.seed)}};
  uint64_t off = 0;
  for (const auto& s : specs) {
    const uint64_t bytes = uint64_t(shape_numel(s.shape)) * dtype_size(o.dtype);
    h[s.name] = {{"dtype", dtype_name(o.dtype)}, {"shape", s.shape}, {"data_offsets", {off, off + bytes}}};
    off += bytes;
  }
  std::string hdr = h.dump();
  hdr.append((8 - hdr.size() % 8) % 8, ' ');
  const std::string path = path_join(dir, "model.safetensors"), tmp = path + ".tmp";
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) throw IoError(tmp + ": cannot create");
  char len[8];
  for (int i = 0; i < 8; ++i) len[i] = char((uint64_t(hdr.size()) >> (8 * i)) & 0xff);
  out.write(len, 8);
  out.write(hdr.data(), std::streamsize(hdr.size()));
  Progress prog("synth " + dir, int64_t(off >> 20), "MiB");
  uint64_t written = 0;
  for (const auto& s : specs) {
    const Tensor t = synth_tensor(s, o);
    out.write(static_cast<const char*>(t.raw()), std::streamsize(t.nbytes()));
    written += t.nbytes();
    prog.update(int64_t(written >> 20));
  }
  out.flush();
  out.close();
  if (!out) {
    std::remove(tmp.c_str());
    throw IoError(tmp + ": write failed (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw IoError(path + ": cannot rename from " + tmp);
  }
  prog.finish();
}

}  // namespace calq
