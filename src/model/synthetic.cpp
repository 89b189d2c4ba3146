#include "model/synthetic.h"
// GCC 12 false positive on AVX-512 intrinsics that use _mm512_undefined_ps (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"  // the same bug, with `#pragma GCC target`

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <immintrin.h>

#include "io/checkpoint.h"
#include "kernels/isa.h"
#include "io/safetensors.h"
#include "util/error.h"

namespace calq {

namespace {

struct PresetShape {
  const char* name;
  const char* description;
  const char* model_type;  // llama | mistral | opt | cohere
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
    {"llama2-7b", "Llama-2-7B (= llama-7b): hidden 4096, 32 layers, 32 heads (MHA), ffn 11008, vocab 32000, ctx 4096",
     "llama", 4096, 11008, 32, 32, 32, 32000, 4096, 10000.0, 1e-5, 0},
    {"mistral-7b", "Mistral-7B-v0.1 shape: hidden 4096, 32 layers, 32/8 heads, ffn 14336, vocab 32000, window 4096",
     "mistral", 4096, 14336, 32, 32, 8, 32000, 32768, 10000.0, 1e-5, 4096},
    {"llama3-8b", "Llama-3-8B shape: hidden 4096, 32 layers, 32/8 heads, ffn 14336, vocab 128256, theta 5e5",
     "llama", 4096, 14336, 32, 32, 8, 128256, 8192, 500000.0, 1e-5, 0},
    {"llama-tiny", "small Llama for tests: hidden 256, 4 layers, 8/4 heads, ffn 688, vocab 2048", "llama", 256, 688,
     4, 8, 4, 2048, 2048, 10000.0, 1e-5, 0},
    {"opt-125m", "OPT-125m shape: hidden 768, 12 layers, 12 heads, ffn 3072, vocab 50272, learned positions, ReLU",
     "opt", 768, 3072, 12, 12, 12, 50272, 2048, 0.0, 1e-5, 0},
    {"opt-6.7b", "OPT-6.7B shape: hidden 4096, 32 layers, 32 heads, ffn 16384, vocab 50272", "opt", 4096, 16384, 32,
     32, 32, 50272, 2048, 0.0, 1e-5, 0},
    {"command-r-35b", "Command-R (35B) shape: hidden 8192, 40 layers, 64 heads (MHA), ffn 22528, vocab 256000, "
     "parallel blocks", "cohere", 8192, 22528, 40, 64, 64, 256000, 8192, 8000000.0, 1e-5, 0},
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
  if (s.shape.size() == 2 && (n.find("embed_tokens") != std::string::npos || n.find("embed_positions") != std::string::npos))
    return {Fill::Normal, s.tied_head ? 1.0 / std::sqrt(double(s.shape[1])) : 1.0};
  if (s.shape.size() == 2) return {Fill::Normal, 1.0 / std::sqrt(double(s.shape[1]))};  // linear [out, in]
  const bool norm = n.find("norm") != std::string::npos || n.find("layer_norm") != std::string::npos;
  if (norm) return {n.ends_with(".bias") ? Fill::Zeros : Fill::Ones, 0.0};
  return {Fill::Normal, 0.02};  // linear biases
}

// Chunk c of a tensor draws from its own stream seeded by (seed, name, c): thread-count independent.
constexpr int64_t kChunk = 1 << 16;

inline float bits_to_float(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
inline uint32_t float_to_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// The math below uses only IEEE basic operations (+ - * / sqrt floor and explicit fma, no libm
// transcendental calls and no a·b+c the compiler could contract), so the AVX-512 version
// (normal_pairs16) and the scalar one (normal_pair) give bitwise the same numbers on any build.

// log(u) for normal u > 0, ~1 ulp: u = m·2^e with m in [sqrt(1/2), sqrt(2)),
// log(m) = 2·atanh(t) = 2t(1 + t²/3 + t⁴/5 + t⁶/7 + t⁸/9), t = (m-1)/(m+1), |t| <= 0.172.
inline float log_pos(float u) {
  const uint32_t b = float_to_bits(u);
  float m = bits_to_float((b & 0x7fffffu) | 0x3f800000u);  // [1, 2)
  float e = float(int32_t(b >> 23) - 127);
  const bool big = m > 1.41421356f;
  m = big ? m * 0.5f : m;
  e = big ? e + 1.0f : e;
  const float t = (m - 1.0f) / (m + 1.0f), t2 = t * t;
  float p = std::fma(t2, 1.0f / 9, 1.0f / 7);
  p = std::fma(p, t2, 1.0f / 5);
  p = std::fma(p, t2, 1.0f / 3);
  p = std::fma(p, t2, 1.0f);
  return std::fma(e, 0.693147180559945f, 2.0f * t * p);
}

// cos and sin of 2π·u for u in [0, 1): nearest quadrant q, φ = (4u - q)·π/2 in [-π/4, π/4],
// Taylor polynomials to φ⁹ / φ¹⁰ (error < 1e-7), then rotation by q·π/2.
inline void cos_sin_2pi(float u, float* c, float* s) {
  const float y = 4.0f * u;
  const float q = std::floor(y + 0.5f);
  const float f = (y - q) * 1.57079632679490f, f2 = f * f;
  float sp = std::fma(f2, 1.0f / 362880, -1.0f / 5040);
  sp = std::fma(sp, f2, 1.0f / 120);
  sp = std::fma(sp, f2, -1.0f / 6);
  const float sn = std::fma(sp * f2, f, f);
  float cp = std::fma(f2, -1.0f / 3628800, 1.0f / 40320);
  cp = std::fma(cp, f2, -1.0f / 720);
  cp = std::fma(cp, f2, 1.0f / 24);
  cp = std::fma(cp, f2, -0.5f);
  const float cs = std::fma(cp, f2, 1.0f);
  // Rotate by k·π/2: odd k swaps (cos, sin) -> (-sin, cos), k >= 2 negates both.
  const int k = int(q);
  const bool odd = (k & 1) != 0, neg = (k & 2) != 0;
  const float c1 = odd ? -sn : cs, s1 = odd ? cs : sn;
  *c = neg ? -c1 : c1;
  *s = neg ? -s1 : s1;
}

// Box-Muller: pair p of chunk c uses splitmix64 output p of the chunk's stream (counter-based:
// state s0 + (p+1)·γ), two 24-bit uniforms u1 in (0, 1], u2 in [0, 1) -> (rad·cos, rad·sin).
inline void normal_pair(uint64_t s0, int64_t p, float sd, float* a, float* b) {
  uint64_t z = s0 + uint64_t(p + 1) * 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  const float u1 = float(uint32_t(z >> 40) + 1u) * (1.0f / 16777216.0f);
  const float u2 = float(uint32_t(z >> 16) & 0xffffffu) * (1.0f / 16777216.0f);
  const float rad = std::sqrt(-2.0f * log_pos(u1)) * sd;
  float cs, sn;
  cos_sin_2pi(u2, &cs, &sn);
  *a = rad * cs;
  *b = rad * sn;
}

// normal_pair for pairs p .. p+15, op for op: AVX-512 (F, DQ) code in a binary of any baseline,
// called only when the CPU has it (kernels/isa.h; the AVX2 and scalar paths run normal_pair).
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,fma")
inline __m512 neg512(__m512 x) { return _mm512_xor_ps(x, _mm512_set1_ps(-0.0f)); }

inline __m512 log_pos512(__m512 u) {
  const __m512i b = _mm512_castps_si512(u);
  __m512 m = _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(b, _mm512_set1_epi32(0x7fffff)),
                                                 _mm512_set1_epi32(0x3f800000)));
  __m512 e = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(b, 23), _mm512_set1_epi32(127)));
  const __mmask16 big = _mm512_cmp_ps_mask(m, _mm512_set1_ps(1.41421356f), _CMP_GT_OQ);
  m = _mm512_mask_mul_ps(m, big, m, _mm512_set1_ps(0.5f));
  e = _mm512_mask_add_ps(e, big, e, _mm512_set1_ps(1.0f));
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 t = _mm512_div_ps(_mm512_sub_ps(m, one), _mm512_add_ps(m, one)), t2 = _mm512_mul_ps(t, t);
  __m512 p = _mm512_fmadd_ps(t2, _mm512_set1_ps(1.0f / 9), _mm512_set1_ps(1.0f / 7));
  p = _mm512_fmadd_ps(p, t2, _mm512_set1_ps(1.0f / 5));
  p = _mm512_fmadd_ps(p, t2, _mm512_set1_ps(1.0f / 3));
  p = _mm512_fmadd_ps(p, t2, one);
  return _mm512_fmadd_ps(e, _mm512_set1_ps(0.693147180559945f), _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(2.0f), t), p));
}

inline void cos_sin_2pi512(__m512 u, __m512* c, __m512* s) {
  const __m512 y = _mm512_mul_ps(_mm512_set1_ps(4.0f), u);
  const __m512 q = _mm512_roundscale_ps(_mm512_add_ps(y, _mm512_set1_ps(0.5f)), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_mul_ps(_mm512_sub_ps(y, q), _mm512_set1_ps(1.57079632679490f)), f2 = _mm512_mul_ps(f, f);
  __m512 sp = _mm512_fmadd_ps(f2, _mm512_set1_ps(1.0f / 362880), _mm512_set1_ps(-1.0f / 5040));
  sp = _mm512_fmadd_ps(sp, f2, _mm512_set1_ps(1.0f / 120));
  sp = _mm512_fmadd_ps(sp, f2, _mm512_set1_ps(-1.0f / 6));
  const __m512 sn = _mm512_fmadd_ps(_mm512_mul_ps(sp, f2), f, f);
  __m512 cp = _mm512_fmadd_ps(f2, _mm512_set1_ps(-1.0f / 3628800), _mm512_set1_ps(1.0f / 40320));
  cp = _mm512_fmadd_ps(cp, f2, _mm512_set1_ps(-1.0f / 720));
  cp = _mm512_fmadd_ps(cp, f2, _mm512_set1_ps(1.0f / 24));
  cp = _mm512_fmadd_ps(cp, f2, _mm512_set1_ps(-0.5f));
  const __m512 cs = _mm512_fmadd_ps(cp, f2, _mm512_set1_ps(1.0f));
  const __m512i k = _mm512_cvttps_epi32(q);
  const __mmask16 odd = _mm512_test_epi32_mask(k, _mm512_set1_epi32(1));
  const __mmask16 neg = _mm512_test_epi32_mask(k, _mm512_set1_epi32(2));
  const __m512 c1 = _mm512_mask_blend_ps(odd, cs, neg512(sn)), s1 = _mm512_mask_blend_ps(odd, sn, cs);
  *c = _mm512_mask_blend_ps(neg, c1, neg512(c1));
  *s = _mm512_mask_blend_ps(neg, s1, neg512(s1));
}

inline __m512i mix64(__m512i z) {
  z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)), _mm512_set1_epi64(int64_t(0xbf58476d1ce4e5b9ull)));
  z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)), _mm512_set1_epi64(int64_t(0x94d049bb133111ebull)));
  return _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
}

// 2 x 8 uint64 -> 16 uint32 (low halves).
inline __m512i join(__m512i lo, __m512i hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(lo)), _mm512_cvtepi64_epi32(hi), 1);
}

void normal_pairs16(uint64_t s0, int64_t p, float sd, float* a, float* b) {
  const __m512i lane = _mm512_set_epi64(8, 7, 6, 5, 4, 3, 2, 1);
  const __m512i g = _mm512_set1_epi64(int64_t(0x9e3779b97f4a7c15ull));
  const __m512i base = _mm512_set1_epi64(int64_t(s0 + uint64_t(p) * 0x9e3779b97f4a7c15ull));
  const __m512i z0 = mix64(_mm512_add_epi64(base, _mm512_mullo_epi64(lane, g)));
  const __m512i z1 = mix64(_mm512_add_epi64(base, _mm512_mullo_epi64(_mm512_add_epi64(lane, _mm512_set1_epi64(8)), g)));
  const __m512i r1 = _mm512_add_epi32(join(_mm512_srli_epi64(z0, 40), _mm512_srli_epi64(z1, 40)), _mm512_set1_epi32(1));
  const __m512i r2 = _mm512_and_si512(join(_mm512_srli_epi64(z0, 16), _mm512_srli_epi64(z1, 16)), _mm512_set1_epi32(0xffffff));
  const __m512 scale = _mm512_set1_ps(1.0f / 16777216.0f);
  const __m512 u1 = _mm512_mul_ps(_mm512_cvtepi32_ps(r1), scale), u2 = _mm512_mul_ps(_mm512_cvtepi32_ps(r2), scale);
  const __m512 rad = _mm512_mul_ps(_mm512_sqrt_ps(_mm512_mul_ps(_mm512_set1_ps(-2.0f), log_pos512(u1))), _mm512_set1_ps(sd));
  __m512 cs, sn;
  cos_sin_2pi512(u2, &cs, &sn);
  _mm512_storeu_ps(a, _mm512_mul_ps(rad, cs));
  _mm512_storeu_ps(b, _mm512_mul_ps(rad, sn));
}
#pragma GCC pop_options

// A chunk's first half holds the cosine draws, its second half the sine draws.
void fill_normal(float* out, int64_t n, uint64_t key, double std) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  const float sd = float(std);
  const bool avx512 = active_isa() == Isa::Avx512;
#pragma omp parallel for schedule(dynamic, 4)
  for (int64_t c = 0; c < chunks; ++c) {
    const uint64_t s0 = key ^ (uint64_t(c) * 0xd1b54a32d192ed03ull);
    const int64_t b = c * kChunk, len = std::min(n, b + kChunk) - b, h = (len + 1) / 2, full = len - h;
    float* lo = out + b;
    float* hi = out + b + h;
    int64_t p = 0;
    if (avx512)
      for (; p + 16 <= full; p += 16) normal_pairs16(s0, p, sd, lo + p, hi + p);
    for (; p < full; ++p) normal_pair(s0, p, sd, lo + p, hi + p);
    if (full < h) {  // odd length: the last pair's sine is not used
      float unused;
      normal_pair(s0, full, sd, lo + full, &unused);
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
  const std::string type = p.model_type;
  const int n_layers = layers > 0 ? layers : p.layers;
  if (type == "opt")  // as OPTForCausalLM.save_pretrained writes it (pre-LN, tied, biases)
    return {{"architectures", {"OPTForCausalLM"}}, {"model_type", "opt"}, {"hidden_size", p.hidden},
            {"ffn_dim", p.intermediate}, {"num_hidden_layers", n_layers}, {"num_attention_heads", p.heads},
            {"vocab_size", p.vocab}, {"max_position_embeddings", p.max_position}, {"word_embed_proj_dim", p.hidden},
            {"do_layer_norm_before", true}, {"activation_function", "relu"}, {"enable_bias", true},
            {"tie_word_embeddings", true}, {"bos_token_id", 2}, {"eos_token_id", 2}, {"pad_token_id", 1},
            {"torch_dtype", "float32"}, {"calq_synthetic_preset", p.name}};
  if (type == "cohere")
    return {{"architectures", {"CohereForCausalLM"}}, {"model_type", "cohere"}, {"hidden_size", p.hidden},
            {"intermediate_size", p.intermediate}, {"num_hidden_layers", n_layers},
            {"num_attention_heads", p.heads}, {"num_key_value_heads", p.kv_heads}, {"vocab_size", p.vocab},
            {"max_position_embeddings", p.max_position}, {"layer_norm_eps", p.norm_eps},
            {"rope_theta", p.rope_theta}, {"hidden_act", "silu"}, {"logit_scale", 0.0625},
            {"use_qk_norm", false}, {"tie_word_embeddings", true}, {"bos_token_id", 5}, {"eos_token_id", 255001},
            {"torch_dtype", "float32"}, {"calq_synthetic_preset", p.name}};
  const bool mistral = type == "mistral";
  Json j = {{"architectures", {mistral ? "MistralForCausalLM" : "LlamaForCausalLM"}},
            {"model_type", p.model_type},
            {"hidden_size", p.hidden},
            {"intermediate_size", p.intermediate},
            {"num_hidden_layers", n_layers},
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
  v.push_back({n.embed_tokens + ".weight", {c.vocab_size, E}, c.tie_embeddings});
  if (c.pos == PosKind::Learned)
    v.push_back({n.embed_positions + ".weight", {c.max_position + c.position_offset, H}, c.tie_embeddings});
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
  if (o.gains)
    if (auto g = o.gains->find(spec.name); g != o.gains->end()) {
      const int64_t rows = spec.shape[0], per_row = n / std::max<int64_t>(rows, 1);
      if (int64_t(g->second.size()) != rows) throw ArgError("synthetic outliers: gain size mismatch for " + spec.name);
      for (int64_t i = 0; i < n; ++i) d[i] *= g->second[size_t(i / per_row)];
    }
  return t.to(o.dtype);
}

namespace {

// "model.decoder.layers.7.fc1" -> 7, -1 outside the decoder layers.
int layer_index_of(const std::string& name) {
  const size_t p = name.find(".layers.");
  if (p == std::string::npos) return -1;
  size_t e = p + 8;
  int v = 0;
  bool any = false;
  while (e < name.size() && name[e] >= '0' && name[e] <= '9' && v < 1000000) v = v * 10 + (name[e++] - '0'), any = true;
  return any ? v : -1;
}

float median_of(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5f * (v[n / 2 - 1] + v[n / 2]);
}

// scale / median(scale) of one linear's input profile.
std::vector<float> profile_gain(const SafetensorsFile& f, const std::string& module, int64_t width,
                                const std::string& path) {
  if (!f.find(module)) throw FormatError(path + ": no act scale for '" + module + "'");
  const Tensor t = f.get(module).to(DType::F32);
  if (t.numel() != width)
    throw ArgError(path + ": act scale of '" + module + "' has " + std::to_string(t.numel()) +
                   " channels, the synthetic model's input has " + std::to_string(width));
  std::vector<float> g(t.f32(), t.f32() + width);
  const float med = median_of(g);
  if (!(med > 0.0f) || !std::isfinite(med)) throw FormatError(path + ": act scale of '" + module + "' has median 0");
  for (float& x : g) x /= med;
  return g;
}

}  // namespace

SynthGains outlier_gains(const ModelConfig& c, const OutlierPlan& plan) {
  SynthGains out;
  if (plan.empty()) return out;
  const std::string root = c.family == Family::OPT ? "model.decoder" : "model";
  const ModuleNames n = ModuleNames::for_config(c, root);
  const bool ln_bias = c.norm == NormKind::LayerNorm && c.norm_bias;
  auto norm_gain = [&](const std::string& norm, const std::vector<float>& g) {
    out[norm + ".weight"] = g;
    if (ln_bias) out[norm + ".bias"] = g;
  };
  auto rows_gain = [&](const std::string& lin, bool bias, const std::vector<float>& g) {
    out[lin + ".weight"] = g;
    if (bias) out[lin + ".bias"] = g;
  };
  if (plan.act_scales.empty()) {
    std::vector<float> g(size_t(c.hidden_size), 1.0f);
    for (int64_t ch : plan.channels) {
      if (ch < 0 || ch >= c.hidden_size)
        throw ArgError("synthetic outliers: channel " + std::to_string(ch) + " outside hidden size " +
                       std::to_string(c.hidden_size));
      g[size_t(ch)] = float(plan.factor);
    }
    for (int i = 0; i < c.num_layers; ++i) {
      norm_gain(n.in_layer(i, n.attn_norm), g);
      if (!c.parallel_block) norm_gain(n.in_layer(i, n.mlp_norm), g);
    }
    return out;
  }
  const auto f = SafetensorsFile::open(plan.act_scales);
  int profile_layers = 0;
  for (const TensorInfo& t : f->tensors()) profile_layers = std::max(profile_layers, layer_index_of(t.name) + 1);
  if (profile_layers == 0) throw FormatError(plan.act_scales + ": no decoder-layer act scales");
  for (int i = 0; i < c.num_layers; ++i) {
    const int src = int(int64_t(i) * profile_layers / c.num_layers);
    auto at = [&](const std::string& rel) { return n.in_layer(i, rel); };
    auto prof = [&](const std::string& rel, int64_t width) {
      return profile_gain(*f, n.in_layer(src, rel), width, plan.act_scales);
    };
    norm_gain(at(n.attn_norm), prof(n.q, c.hidden_size));
    if (!c.parallel_block) norm_gain(at(n.mlp_norm), prof(n.up, c.hidden_size));
    if (c.kv_dim() == c.q_dim()) rows_gain(at(n.v), c.qkv_bias, prof(n.o, c.q_dim()));
    rows_gain(at(n.up), c.mlp_bias, prof(n.down, c.intermediate_size));
  }
  return out;
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
  if (o.gains && !o.gains->empty()) cj["calq_synthetic_outliers"] = true;
  {
    const std::string p = path_join(dir, "config.json");
    std::ofstream f(p);
    f << cj.dump(2) << "\n";
    if (!f) throw IoError(p + ": write failed");
  }
  // Each tensor is generated while the file is written: one tensor in memory at a time.
  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  w.set_metadata("calq_synthetic_seed", std::to_string(o.seed));
  for (const auto& s : synth_tensor_specs(cfg))
    w.add_lazy(s.name, o.dtype, s.shape, [s, o] { return synth_tensor(s, o); });
  w.write(path_join(dir, "model.safetensors"), o.progress);
}

}  // namespace calq
