#include "model/decoder.h"

#include <omp.h>

#include <cmath>
#include <cstring>

#include "kernels/threads.h"
#include "kernels/attention_cached.h"
#include "kernels/vec.h"
#include "util/error.h"

namespace calq {

Tensor MapSource::get(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) throw FormatError(describe() + ": missing tensor '" + name + "'");
  return it->second;
}

std::vector<Linear*> DecoderLayer::linears() {
  std::vector<Linear*> r = {&q, &k, &v, &o};
  if (gate.out) r.push_back(&gate);
  r.push_back(&up);
  r.push_back(&down);
  return r;
}

namespace {

ActKind act_kind(Activation a) {
  switch (a) {
    case Activation::SiLU: return ActKind::SiLU;
    case Activation::ReLU: return ActKind::ReLU;
    case Activation::GELU: return ActKind::GELU;
    case Activation::GELUTanh: return ActKind::GELUTanh;
  }
  return ActKind::SiLU;
}

// Llama-3.1 frequency-dependent RoPE scaling (HF modeling_rope_utils._compute_llama3_parameters).
void scale_llama3(std::vector<double>& f, const RopeScaling& s) {
  const double old_ctx = s.original_max_position;
  const double low_wavelen = old_ctx / s.low_freq_factor, high_wavelen = old_ctx / s.high_freq_factor;
  for (double& x : f) {
    const double wavelen = 2 * M_PI / x;
    if (wavelen > low_wavelen) {
      x /= s.factor;
    } else if (wavelen >= high_wavelen) {  // medium band: smooth interpolation
      const double smooth = (old_ctx / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      x = (1 - smooth) * x / s.factor + smooth * x;
    }
  }
}

// Tensor `name` from the source, checked: the shape config.json implies, a float dtype, and finite
// values. The finiteness test is the one pass over the tensor's bytes at load (the weights stay
// mapped in their file dtype until first use), so a corrupt weight is named here, with its file,
// instead of surfacing as NaN logits later (bench/bench_load.cpp measures the cost).
Tensor fetch(const TensorSource& src, const std::string& name, const Shape& want) {
  Tensor t = src.get(name);
  if (t.shape() != want)
    throw FormatError(src.where(name) + " has shape " + shape_str(t.shape()) + ", config.json implies " +
                      shape_str(want));
  if (!is_float_dtype(t.dtype())) throw FormatError(src.where(name) + " has non-float dtype " + dtype_name(t.dtype()));
  if (const int64_t k = find_non_finite(t); k >= 0)
    throw NonFiniteError(src.where(name) + " holds a non-finite value (" + describe_non_finite(t, k) +
                         "): the file is corrupt or was saved from a diverged model");
  return t;
}

Tensor new_rows(int64_t rows, int64_t cols) { return Tensor::empty(DType::F32, {rows, cols}); }

// dst[j] = src row keep[j] ([rows, cols] row-major, keep.size() rows out).
void gather_rows(const float* src, int64_t cols, const std::vector<int64_t>& keep, float* dst) {
  for (size_t j = 0; j < keep.size(); ++j)
    std::memcpy(dst + int64_t(j) * cols, src + keep[j] * cols, size_t(cols) * sizeof(float));
}

Tensor gather_rows(const Tensor& t, const std::vector<int64_t>& keep) {
  Tensor r = new_rows(int64_t(keep.size()), t.dim(1));
  gather_rows(t.f32(), t.dim(1), keep, r.f32_mut());
  return r;
}

}  // namespace

std::unique_ptr<Decoder> Decoder::load(const std::string& dir, ComputeType compute) {
  auto ckpt = std::make_shared<const Checkpoint>(Checkpoint::open(dir));
  const ModelConfig cfg = ModelConfig::from_json(ckpt->config(), path_join(dir, "config.json"));
  auto d = from_source(cfg, std::make_shared<CheckpointSource>(ckpt), compute);
  d->checkpoint_ = ckpt;
  return d;
}

std::unique_ptr<Decoder> Decoder::from_source(const ModelConfig& cfg, std::shared_ptr<const TensorSource> src,
                                              ComputeType compute) {
  std::unique_ptr<Decoder> d(new Decoder());
  d->cfg_ = cfg;
  d->compute_ = compute;
  d->build(std::move(src));
  return d;
}

void Decoder::load_linear(Linear& l, const std::string& name, int64_t out, int64_t in, bool bias, bool required) {
  l.name = name;
  l.in = in;
  l.out = out;
  const std::string wn = name + ".weight";
  if (!required && !src_->has(wn)) {
    l.out = 0;
    return;
  }
  if (std::shared_ptr<QuantPackedWeight> q = src_->quantized_linear(name, compute_)) {
    if (q->n() != out || q->k() != in)
      throw FormatError(src_->where(wn) + ": quantized weight is [" + std::to_string(q->n()) + ", " +
                        std::to_string(q->k()) + "], config.json implies " + shape_str({out, in}));
    l.set_quantized(std::move(q));
  } else {
    l.set_weight(fetch(*src_, wn, {out, in}));
    // Re-read on demand after release (values were checked finite by the first fetch).
    l.set_weight_source([src = src_, wn] { return src->get(wn); });
  }
  if (bias) {
    const std::string bn = name + ".bias";
    l.bias = fetch(*src_, bn, {out}).to(DType::F32);
  }
}

Norm Decoder::load_norm(const std::string& name, int64_t n, bool bias) const {
  Norm r;
  r.weight = fetch(*src_, name + ".weight", {n}).to(DType::F32);
  if (bias) r.bias = fetch(*src_, name + ".bias", {n}).to(DType::F32);
  return r;
}

// With tied embeddings the input embedding and lm_head are one matrix, and a checkpoint may hold it
// under either name: transformers ties the two parameters before loading, so either key fills
// both, and safetensors' save_model keeps only one of duplicate names (TinyStories-656K stores
// just "lm_head.weight", with {"model.embed_tokens.weight": "lm_head.weight"} in its metadata).
std::string Decoder::embedding_tensor_name() const {
  const std::string embed = names_.embed_tokens + ".weight", head = names_.lm_head + ".weight";
  if (cfg_.tie_embeddings && !src_->has(embed) && src_->has(head)) return head;
  return embed;
}

void Decoder::build(std::shared_ptr<const TensorSource> src) {
  src_ = std::move(src);
  const ModelConfig& c = cfg_;
  names_ = ModuleNames::for_checkpoint(c, [&](const std::string& n) { return src_->has(n); });
  const int64_t H = c.hidden_size, E = c.family == Family::OPT ? c.word_embed_proj_dim : H;

  const std::string embed_name = embedding_tensor_name();
  embed_rows_ = src_->embedding_rows(embed_name);
  if (embed_rows_) {
    if (embed_rows_->rows() != c.vocab_size || embed_rows_->cols() != E)
      throw FormatError(src_->where(embed_name) + " has shape " +
                        shape_str({embed_rows_->rows(), embed_rows_->cols()}) + ", config.json implies " +
                        shape_str({c.vocab_size, E}));
  } else {
    embed_tokens_ = fetch(*src_, embed_name, {c.vocab_size, E});
  }
  if (c.pos == PosKind::Learned)
    embed_positions_ = fetch(*src_, names_.embed_positions + ".weight", {c.max_position + c.position_offset, H});
  has_project_ = E != H;
  if (has_project_) {
    load_linear(project_in_, names_.project_in, H, E, false);
    load_linear(project_out_, names_.project_out, E, H, false);
  }
  const bool ln_bias = c.norm == NormKind::LayerNorm && c.norm_bias;
  for (int i = 0; i < c.num_layers; ++i) {
    auto L = std::make_unique<DecoderLayer>();
    L->index = i;
    auto at = [&](const std::string& rel) { return names_.in_layer(i, rel); };
    L->attn_norm = load_norm(at(names_.attn_norm), H, ln_bias);
    if (!c.parallel_block) L->mlp_norm = load_norm(at(names_.mlp_norm), H, ln_bias);
    load_linear(L->q, at(names_.q), c.q_dim(), H, c.qkv_bias);
    load_linear(L->k, at(names_.k), c.kv_dim(), H, c.qkv_bias);
    load_linear(L->v, at(names_.v), c.kv_dim(), H, c.qkv_bias);
    load_linear(L->o, at(names_.o), H, c.q_dim(), c.o_bias);
    if (c.gated_mlp) load_linear(L->gate, at(names_.gate), c.intermediate_size, H, c.mlp_bias);
    load_linear(L->up, at(names_.up), c.intermediate_size, H, c.mlp_bias);
    load_linear(L->down, at(names_.down), H, c.intermediate_size, c.mlp_bias);
    if (c.qk_norm) {
      L->q_norm = fetch(*src_, at(names_.q_norm) + ".weight", {c.num_heads, c.head_dim}).to(DType::F32);
      L->k_norm = fetch(*src_, at(names_.k_norm) + ".weight", {c.num_kv_heads, c.head_dim}).to(DType::F32);
    }
    layers_.push_back(std::move(L));
  }
  if (c.final_norm) final_norm_ = load_norm(names_.final_norm, H, ln_bias);
  lm_head_.name = names_.lm_head;
  lm_head_.in = E;
  lm_head_.out = c.vocab_size;
  if (c.tie_embeddings) {
    if (std::shared_ptr<QuantPackedWeight> q = src_->quantized_linear(embed_name.substr(0, embed_name.size() - 7), compute_)) {
      lm_head_.set_quantized(std::move(q));
    } else {
      lm_head_.set_weight(embed_tokens());
      if (!embed_rows_) lm_head_.set_weight_source([src = src_, embed_name] { return src->get(embed_name); });
    }
  } else {
    load_linear(lm_head_, names_.lm_head, c.vocab_size, E, false);
  }
  if (c.pos == PosKind::Rope) {
    inv_freq_ = rope_inv_freq(c.rope_theta, c.head_dim);
    if (c.rope_scaling.type == "llama3") scale_llama3(inv_freq_, c.rope_scaling);
    if (c.rope_scaling.type == "linear")
      for (double& f : inv_freq_) f /= c.rope_scaling.factor;
  }
}

std::shared_ptr<const RopeTable> Decoder::rope_table(int64_t seq) const {
  std::lock_guard<std::mutex> lock(rope_mu_);
  const RopeScaling& s = cfg_.rope_scaling;
  if (s.type == "dynamic" && seq > cfg_.max_position) {
    // Dynamic NTK scaling (HF _compute_dynamic_ntk_parameters): a larger base once seq exceeds the context.
    const double dim = cfg_.head_dim;
    const double base = cfg_.rope_theta * std::pow(s.factor * double(seq) / cfg_.max_position - (s.factor - 1),
                                                   dim / (dim - 2));
    rope_ = std::make_shared<RopeTable>(make_rope_table(rope_inv_freq(base, cfg_.head_dim), int(seq), 1.0));
    return rope_;
  }
  if (!rope_ || rope_->positions < seq || (s.type == "dynamic" && rope_->positions > cfg_.max_position))
    rope_ = std::make_shared<RopeTable>(make_rope_table(inv_freq_, int(std::max<int64_t>(seq, 64)), 1.0));
  return rope_;
}

Tensor Decoder::embed_tokens() const {
  if (!embed_rows_) return embed_tokens_;
  Tensor t = Tensor::empty(DType::F32, {embed_rows_->rows(), embed_rows_->cols()});
  for (int64_t r = 0; r < embed_rows_->rows(); ++r) embed_rows_->row(r, t.f32_mut() + r * embed_rows_->cols());
  return t;
}

void Decoder::embed_rows(const int32_t* ids, int64_t rows, float* x) const {
  const ModelConfig& c = cfg_;
  for (int64_t r = 0; r < rows; ++r)
    if (ids[r] < 0 || ids[r] >= c.vocab_size)
      throw ArgError("token id " + std::to_string(ids[r]) + " out of range for vocab_size " +
                     std::to_string(c.vocab_size));
  if (embed_rows_) {
    const int64_t E = embed_rows_->cols();
    for (int64_t r = 0; r < rows; ++r) embed_rows_->row(ids[r], x + r * E);
    return;
  }
  const int64_t E = embed_tokens_.dim(1);
  const size_t row_bytes = size_t(E) * dtype_size(embed_tokens_.dtype());
  const auto* base = static_cast<const uint8_t*>(embed_tokens_.raw());
  for (int64_t r = 0; r < rows; ++r)
    convert_to_f32(base + size_t(ids[r]) * row_bytes, embed_tokens_.dtype(), x + r * E, size_t(E));
}

// Row r of x is position pos0 + r % seq (OPT's learned position embeddings).
void Decoder::add_positions(float* x, int64_t rows, int64_t seq, int64_t pos0) const {
  const ModelConfig& c = cfg_;
  const int64_t H = c.hidden_size;
  const auto* pb = static_cast<const uint8_t*>(embed_positions_.raw());
  const size_t prow = size_t(H) * dtype_size(embed_positions_.dtype());
  std::vector<float> tmp(static_cast<size_t>(H));
  for (int64_t r = 0; r < rows; ++r) {
    convert_to_f32(pb + size_t(pos0 + r % seq + c.position_offset) * prow, embed_positions_.dtype(), tmp.data(), size_t(H));
    for (int64_t j = 0; j < H; ++j) x[r * H + j] += tmp[size_t(j)];
  }
}

Tensor Decoder::embed(const int32_t* ids, int64_t batch, int64_t seq) const {
  const ModelConfig& c = cfg_;
  const int64_t rows = batch * seq, E = c.family == Family::OPT ? c.word_embed_proj_dim : c.hidden_size;
  const int64_t H = c.hidden_size;
  if (c.pos == PosKind::Learned && seq > c.max_position)
    throw ArgError("sequence of " + std::to_string(seq) + " tokens exceeds max_position_embeddings " +
                   std::to_string(c.max_position));
  Tensor x = new_rows(rows, E);
  embed_rows(ids, rows, x.f32_mut());
  if (has_project_) {
    Tensor y = new_rows(rows, H);
    linear_forward(project_in_, x.f32(), rows, y.f32_mut(), compute_);
    x = y;
  }
  if (c.pos == PosKind::Learned) add_positions(x.f32_mut(), rows, seq, 0);
  return x;
}

// Buffers of one forward pass, grown on demand and reused by every layer, so the hot path does
// not allocate (and page-fault) fresh megabytes per linear layer. Freed when the pass ends.
struct Decoder::Scratch {
  KvQuant kv;  // ForwardOptions::kv of the pass
  Tensor xn, qkv, attn, gu, act, attn_keep, xn_keep;
  std::vector<uint16_t> x16, up16, act16;
  std::vector<int32_t> pos;
  static float* get(Tensor& t, int64_t n) {
    if (!t.defined() || t.numel() < n) t = Tensor::empty(DType::F32, {std::max<int64_t>(n, 1)});
    return t.f32_mut();
  }
};

void Decoder::norm_into(const Norm& n, const float* x, int64_t rows, float* y) const {
  const int64_t cols = cfg_.hidden_size;
  if (cfg_.norm == NormKind::RMSNorm)
    rms_norm(x, rows, cols, n.weight.f32(), float(cfg_.norm_eps), y);
  else
    layer_norm(x, rows, cols, n.weight.f32(), n.bias.defined() ? n.bias.f32() : nullptr, float(cfg_.norm_eps), y);
}

Tensor Decoder::apply_norm(const Norm& n, const Tensor& x) const {
  const int64_t rows = x.dim(0), cols = x.dim(1);
  Tensor y = new_rows(rows, cols);
  if (cfg_.norm == NormKind::RMSNorm)
    rms_norm(x.f32(), rows, cols, n.weight.f32(), float(cfg_.norm_eps), y.f32_mut());
  else
    layer_norm(x.f32(), rows, cols, n.weight.f32(), n.bias.defined() ? n.bias.f32() : nullptr,
               float(cfg_.norm_eps), y.f32_mut());
  return y;
}

namespace {
// Runs a linear layer, reporting its input to the observer first.
Tensor run_linear(const Linear& l, const Tensor& x, Observer* obs, ComputeType c) {
  const int64_t rows = x.dim(0);
  if (obs && obs->wants(l.name)) obs->on_linear_input(l.name, x.f32(), rows, l.in);
  Tensor y = Tensor::empty(DType::F32, {rows, l.out});
  linear_forward(l, x.f32(), rows, y.f32_mut(), c);
  return y;
}

void observe_input(Observer* obs, const Linear& l, const float* x, int64_t rows) {
  if (obs && obs->wants(l.name)) obs->on_linear_input(l.name, x, rows, l.in);
}

// Per-head LayerNorm over head_dim without bias (Cohere use_qk_norm), weight [heads, head_dim];
// rows of x are ld floats apart.
void head_layer_norm(float* x, int64_t rows, int64_t ld, int heads, int hd, const Tensor& w, float eps) {
  for (int64_t r = 0; r < rows; ++r)
    for (int h = 0; h < heads; ++h) {
      float* v = x + r * ld + int64_t(h) * hd;
      layer_norm(v, 1, hd, w.f32() + int64_t(h) * hd, nullptr, eps, v);
    }
}
}  // namespace

void Decoder::attention_into(int i, const float* xn, int64_t batch, int64_t seq, Observer* obs, Scratch& s,
                             float* out, bool accumulate, KvCache* cache, const std::vector<int64_t>* keep) const {
  const ModelConfig& c = cfg_;
  const DecoderLayer& L = layer(i);
  const int64_t rows = batch * seq, qd = c.q_dim(), kvd = c.kv_dim(), w = qd + 2 * kvd;
  observe_input(obs, L.q, xn, rows);
  observe_input(obs, L.k, xn, rows);
  observe_input(obs, L.v, xn, rows);
  float* buf = Scratch::get(s.qkv, rows * w);
  // q|k|v as one GEMM into [rows, q+k+v] (each a column block, row stride w), or three GEMMs into
  // three dense blocks when they cannot be fused (an input transform on one of them).
  float *q, *k, *v;
  int64_t qld, kld, vld;
  if (auto f = fused_linear({&L.q, &L.k, &L.v}, compute_)) {
    gemm_packed(xn, rows, *f->packed, f->bias.empty() ? nullptr : f->bias.data(), buf);
    q = buf, k = buf + qd, v = buf + qd + kvd;
    qld = kld = vld = w;
  } else {
    q = buf, k = buf + rows * qd, v = k + rows * kvd;
    qld = qd, kld = vld = kvd;
    linear_forward(L.q, xn, rows, q, compute_);
    linear_forward(L.k, xn, rows, k, compute_);
    linear_forward(L.v, xn, rows, v, compute_);
  }
  if (c.qk_norm) {
    head_layer_norm(q, rows, qld, c.num_heads, c.head_dim, L.q_norm, float(c.norm_eps));
    head_layer_norm(k, rows, kld, c.num_kv_heads, c.head_dim, L.k_norm, float(c.norm_eps));
  }
  const int64_t pos0 = cache ? cache->length() : 0;
  if (c.pos == PosKind::Rope) {
    const std::shared_ptr<const RopeTable> table = rope_table(pos0 + seq);
    const RopeTable& t = *table;
    s.pos.resize(size_t(rows));
    for (int64_t r = 0; r < rows; ++r) s.pos[size_t(r)] = int32_t(pos0 + r % seq);
    const bool inter = c.rope_style == RopeStyle::Interleaved;
    apply_rope(q, rows, c.num_heads, c.head_dim, s.pos.data(), t, inter, qld);
    apply_rope(k, rows, c.num_kv_heads, c.head_dim, s.pos.data(), t, inter, kld);
  }
  if (s.kv.enabled()) {  // what a quantized KV cache would hold: K after RoPE, V (kernels/kv_quant.h)
    kv_fake_quant(k, rows, c.num_kv_heads, c.head_dim, kld, s.kv);
    kv_fake_quant(v, rows, c.num_kv_heads, c.head_dim, vld, s.kv);
  }
  float* a = Scratch::get(s.attn, rows * qd);
  const int window = c.sliding_window.empty() ? 0 : c.sliding_window[size_t(i)];
  if (cache) cache->store(i, k, kld, v, vld, rows);
  if (cache && pos0 > 0) {  // new rows against every cached position
    const KvCache::LayerView kv = cache->layer(i);
    CachedAttnDims d;
    d.heads = c.num_heads;
    d.kv_heads = c.num_kv_heads;
    d.head_dim = c.head_dim;
    d.window = window;
    d.scale = float(1.0 / std::sqrt(double(c.head_dim)));
    d.pos0 = pos0;
    d.n = rows;
    d.cap = kv.cap;
    d.q_ld = qld;
    attention_cached(q, kv.kt, kv.v, a, d);
    observe_input(obs, L.o, a, rows);
    linear_forward(L.o, a, rows, out, compute_, accumulate);
    return;
  }
  AttnDims d;
  d.batch = batch;
  d.seq = seq;
  d.heads = c.num_heads;
  d.kv_heads = c.num_kv_heads;
  d.head_dim = c.head_dim;
  d.window = window;
  d.scale = float(1.0 / std::sqrt(double(c.head_dim)));
  d.bf16 = compute_ == ComputeType::BF16;
  d.q_ld = qld, d.k_ld = kld, d.v_ld = vld;
  attention(q, k, v, a, d);
  if (keep) {  // o_proj on the kept rows only (their attention outputs gathered in order)
    float* ak = Scratch::get(s.attn_keep, int64_t(keep->size()) * qd);
    gather_rows(a, qd, *keep, ak);
    observe_input(obs, L.o, ak, int64_t(keep->size()));
    linear_forward(L.o, ak, int64_t(keep->size()), out, compute_, accumulate);
    return;
  }
  observe_input(obs, L.o, a, rows);
  linear_forward(L.o, a, rows, out, compute_, accumulate);
}

void Decoder::mlp_into(int i, const float* xn, int64_t rows, Observer* obs, Scratch& s, float* out,
                       bool accumulate) const {
  const DecoderLayer& L = layer(i);
  const ActKind act = act_kind(cfg_.act);
  const int64_t I = cfg_.intermediate_size;
  observe_input(obs, L.up, xn, rows);
  if (!cfg_.gated_mlp) {  // fc1 -> act -> fc2
    float* u = Scratch::get(s.act, rows * I);
    linear_forward(L.up, xn, rows, u, compute_);
    act_inplace(u, rows * I, act);
    observe_input(obs, L.down, u, rows);
    linear_forward(L.down, u, rows, out, compute_, accumulate);
    return;
  }
  observe_input(obs, L.gate, xn, rows);
  const float* ub = L.up.bias.defined() ? L.up.bias.f32() : nullptr;
  const float* gb = L.gate.bias.defined() ? L.gate.bias.f32() : nullptr;
  if (L.up.input_transform || L.gate.input_transform) {  // each linear transforms its own copy
    float* u = Scratch::get(s.gu, rows * I);
    float* g = Scratch::get(s.act, rows * I);
    linear_forward(L.up, xn, rows, u, compute_);
    linear_forward(L.gate, xn, rows, g, compute_);
    gated_act(g, u, rows * I, act);
    observe_input(obs, L.down, g, rows);
    linear_forward(L.down, g, rows, out, compute_, accumulate);
    return;
  }
  const bool bf = compute_ == ComputeType::BF16;
  if (auto f = fused_quantized_linear({&L.gate, &L.up}, compute_)) {
    gated_mlp_stacked(L, *f, xn, rows, obs, s, out, accumulate);
    return;
  }
  // up = x·Wuᵀ, then the gate GEMM with act(·) ⊙ up fused as its epilogue (no separate pass over
  // the [rows, intermediate] products). In bf16 the input is converted once for both GEMMs.
  const uint16_t* x16 = nullptr;
  if (bf) {
    s.x16.resize(size_t(rows * cfg_.hidden_size));
    f32_to_bf16_n(xn, s.x16.data(), rows * cfg_.hidden_size);
    x16 = s.x16.data();
  }
  const float* xf = bf ? nullptr : xn;
  GemmEpilogue gated;
  gated.gated = true;
  gated.act = act;
  if (bf) {  // up in bf16: the gate epilogue reads half the bytes (it rounds act·up to bf16 anyway)
    s.up16.resize(size_t(rows * I));
    gemm_packed_ex(nullptr, x16, rows, L.up.packed(compute_), ub, GemmEpilogue{}, nullptr, s.up16.data());
    gated.mul_bf16 = s.up16.data();
  } else {
    float* u = Scratch::get(s.gu, rows * I);
    gemm_packed_ex(xf, nullptr, rows, L.up.packed(compute_), ub, GemmEpilogue{}, u);
    gated.mul = u;
  }
  const float* db = L.down.bias.defined() ? L.down.bias.f32() : nullptr;
  if (bf && !(obs && obs->wants(L.down.name)) && !L.down.input_transform) {
    // Nobody needs the f32 activations: the gate GEMM writes bf16, the down GEMM's input type.
    s.act16.resize(size_t(rows * I));
    gemm_packed_ex(nullptr, x16, rows, L.gate.packed(compute_), gb, gated, nullptr, s.act16.data());
    gemm_packed_bf16(s.act16.data(), rows, L.down.packed(compute_), db, out, accumulate);
    return;
  }
  float* g = Scratch::get(s.act, rows * I);
  gemm_packed_ex(xf, x16, rows, L.gate.packed(compute_), gb, gated, g);
  observe_input(obs, L.down, g, rows);
  linear_forward(L.down, g, rows, out, compute_, accumulate);
}

// Quantized gate|up as one product on their stacked codes ([rows, 2·I]: gate | up), then the
// same element-wise steps as the gated epilogue of the unfused path, in its order (bf16: up
// rounded to bf16 first, as the unfused path stores it), so both give the same bits.
void Decoder::gated_mlp_stacked(const DecoderLayer& L, const FusedLinear& f, const float* xn, int64_t rows,
                                Observer* obs, Scratch& s, float* out, bool accumulate) const {
  const int64_t I = cfg_.intermediate_size;
  const ActKind act = act_kind(cfg_.act);
  const bool bf = compute_ == ComputeType::BF16;
  float* gu = Scratch::get(s.gu, rows * 2 * I);
  gemm_packed(xn, rows, *f.packed, f.bias.empty() ? nullptr : f.bias.data(), gu);
  const float* db = L.down.bias.defined() ? L.down.bias.f32() : nullptr;
  // Nobody needs the f32 activations (as in mlp_into): bf16 straight into the down GEMM's input.
  const bool to_bf16 = bf && !(obs && obs->wants(L.down.name)) && !L.down.input_transform;
  float* g = to_bf16 ? nullptr : Scratch::get(s.act, rows * I);
  if (to_bf16) s.act16.resize(size_t(rows * I));
  // Element-wise, so any split across threads gives the same bits.
#pragma omp parallel for schedule(static) if (rows > 1 && !omp_in_parallel())
  for (int64_t r = 0; r < rows; ++r) {
    float* gr = gu + r * 2 * I;
    float* ur = gr + I;
    if (bf)
      for (int64_t j = 0; j < I; ++j) ur[j] = bf16_to_f32(f32_to_bf16(ur[j]));
    gated_act(gr, ur, I, act);
    if (to_bf16) f32_to_bf16_n(gr, s.act16.data() + r * I, I);
    else std::memcpy(g + r * I, gr, size_t(I) * 4);
  }
  if (to_bf16) {
    gemm_packed_bf16(s.act16.data(), rows, L.down.packed(compute_), db, out, accumulate);
    return;
  }
  observe_input(obs, L.down, g, rows);
  linear_forward(L.down, g, rows, out, compute_, accumulate);
}

Tensor Decoder::attention_block(int i, const Tensor& xn, int64_t batch, int64_t seq, Observer* obs) const {
  Scratch s;
  Tensor out = new_rows(xn.dim(0), cfg_.hidden_size);
  attention_into(i, xn.f32(), batch, seq, obs, s, out.f32_mut(), false);
  return out;
}

Tensor Decoder::mlp_block(int i, const Tensor& xn, Observer* obs) const {
  Scratch s;
  Tensor out = new_rows(xn.dim(0), cfg_.hidden_size);
  mlp_into(i, xn.f32(), xn.dim(0), obs, s, out.f32_mut(), false);
  return out;
}

void Decoder::run_layer(int i, Tensor& h, int64_t batch, int64_t seq, Observer* obs) const {
  h = layer_forward(i, h, batch, seq, obs);
}

Tensor Decoder::layer_forward(int i, const Tensor& x, int64_t batch, int64_t seq, Observer* obs) const {
  Tensor h = x.clone();
  Scratch s;
  run_layer(i, h, batch, seq, obs, s);
  if (find_non_finite(h.f32(), size_t(h.numel())) >= 0) throw_non_finite_layer(i, x, batch, seq, h);
  return h;
}

void Decoder::run_layer_unchecked(int i, Tensor& h, int64_t batch, int64_t seq, Observer* obs) const {
  Scratch s;
  run_layer(i, h, batch, seq, obs, s);
}

// The o and down GEMMs add their products straight into the residual stream h (accumulate).
void Decoder::run_layer(int i, Tensor& h, int64_t batch, int64_t seq, Observer* obs, Scratch& s, KvCache* cache) const {
  const DecoderLayer& L = layer(i);
  const int64_t rows = h.dim(0);
  float* hd = h.f32_mut();
  if (cfg_.parallel_block) {  // Cohere: h + attn(ln(h)) + mlp(ln(h))
    float* xn = Scratch::get(s.xn, rows * cfg_.hidden_size);
    norm_into(L.attn_norm, hd, rows, xn);
    attention_into(i, xn, batch, seq, obs, s, hd, true, cache);
    mlp_into(i, xn, rows, obs, s, hd, true);
  } else if (cfg_.pre_norm) {
    float* xn = Scratch::get(s.xn, rows * cfg_.hidden_size);
    norm_into(L.attn_norm, hd, rows, xn);
    attention_into(i, xn, batch, seq, obs, s, hd, true, cache);
    norm_into(L.mlp_norm, hd, rows, xn);
    mlp_into(i, xn, rows, obs, s, hd, true);
  } else {  // OPT post-LN (do_layer_norm_before = false): h reads as its own normed input
    attention_into(i, hd, batch, seq, obs, s, hd, true, cache);  // q/k/v read h before o adds into it
    norm_into(L.attn_norm, hd, rows, hd);
    mlp_into(i, hd, rows, obs, s, hd, true);
    norm_into(L.mlp_norm, hd, rows, hd);
  }
}

// The same steps as run_layer, with the residual stream of the kept rows gathered before o_proj
// adds into it: every kept row sees the same operations on the same values as in a full pass.
void Decoder::run_layer_rows(int i, Tensor& h, int64_t batch, int64_t seq, const std::vector<int64_t>& keep,
                             Scratch& s) const {
  const DecoderLayer& L = layer(i);
  const int64_t rows = h.dim(0), m = int64_t(keep.size()), H = cfg_.hidden_size;
  Tensor hk = gather_rows(h, keep);
  float* hd = hk.f32_mut();
  if (cfg_.parallel_block) {  // Cohere: h + attn(ln(h)) + mlp(ln(h))
    float* xn = Scratch::get(s.xn, rows * H);
    norm_into(L.attn_norm, h.f32(), rows, xn);
    attention_into(i, xn, batch, seq, nullptr, s, hd, true, nullptr, &keep);
    float* xk = Scratch::get(s.xn_keep, m * H);
    gather_rows(xn, H, keep, xk);
    mlp_into(i, xk, m, nullptr, s, hd, true);
  } else if (cfg_.pre_norm) {
    float* xn = Scratch::get(s.xn, rows * H);
    norm_into(L.attn_norm, h.f32(), rows, xn);
    attention_into(i, xn, batch, seq, nullptr, s, hd, true, nullptr, &keep);
    norm_into(L.mlp_norm, hd, m, xn);
    mlp_into(i, xn, m, nullptr, s, hd, true);
  } else {  // OPT post-LN: q/k/v read every row of h, o_proj adds into the kept ones
    attention_into(i, h.f32(), batch, seq, nullptr, s, hd, true, nullptr, &keep);
    norm_into(L.attn_norm, hd, m, hd);
    mlp_into(i, hd, m, nullptr, s, hd, true);
    norm_into(L.mlp_norm, hd, m, hd);
  }
  h = hk;
}

Tensor Decoder::final_hidden(const Tensor& h) const {
  Tensor x = cfg_.final_norm ? apply_norm(final_norm_, h) : h.clone();
  if (has_project_) {
    Tensor y = new_rows(x.dim(0), project_out_.out);
    linear_forward(project_out_, x.f32(), x.dim(0), y.f32_mut(), compute_);
    return y;
  }
  return x;
}

Tensor Decoder::lm_logits(const Tensor& fh, Observer* obs) const {
  Tensor y = run_linear(lm_head_, fh, obs, compute_);
  if (cfg_.logit_scale != 1.0) {
    const float s = float(cfg_.logit_scale);
    float* d = y.f32_mut();
    for (int64_t j = 0; j < y.numel(); ++j) d[j] *= s;
  }
  // One read of the logits: small beside lm_head's GEMM, and the last place a NaN could slip out.
  if (const int64_t k = find_non_finite(y.f32(), size_t(y.numel())); k >= 0) {
    const bool in_bad = find_non_finite(fh.f32(), size_t(fh.numel())) >= 0;
    throw NonFiniteError(std::string("non-finite logits (") + non_finite_kind(y.f32(), DType::F32, size_t(k)) +
                         " at row " + std::to_string(k / y.dim(1)) + "): first in " +
                         (in_bad ? "the input of " + lm_head_.name + " (the final norm" +
                                       (final_norm_.weight.defined() ? " " + names_.final_norm : std::string()) + ")"
                                 : "the output of " + lm_head_.name));
  }
  return y;
}

ForwardOutput Decoder::forward(const int32_t* ids, int64_t batch, int64_t seq, const ForwardOptions& opt) const {
  if (batch <= 0 || seq <= 0) throw ArgError("forward: empty batch");
  const ThreadScope threads(opt.threads);
  ForwardOutput out;
  const int64_t H = cfg_.hidden_size;
  if (opt.observer) opt.observer->on_batch(ids, batch, seq);
  Tensor h = embed(ids, batch, seq);
  if (opt.hidden_states) out.hidden_states.push_back(h.clone().reshaped({batch, seq, H}));
  const bool select = !opt.rows.empty();
  if (select) {
    if (opt.logits == ForwardOptions::Logits::Last || opt.hidden_states)
      throw ArgError("forward: selected rows go with Logits::All or None and without hidden states");
    for (int64_t r : opt.rows)
      if (r < 0 || r >= batch * seq)
        throw ArgError("forward: row " + std::to_string(r) + " outside the " + std::to_string(batch * seq) + " rows");
  }
  Scratch scratch;
  opt.kv.validate(cfg_.head_dim);
  scratch.kv = opt.kv;
  for (int i = 0; i < num_layers(); ++i) {
    // The last layer's work after attention only on the wanted rows (not with an observer: it
    // sees every row of a full pass).
    const bool trim = select && !opt.observer && i + 1 == num_layers();
    if (trim)
      run_layer_rows(i, h, batch, seq, opt.rows, scratch);
    else
      run_layer(i, h, batch, seq, opt.observer, scratch);
    if (find_non_finite(h.f32(), size_t(h.numel())) >= 0) {  // failure path: rebuild layer i's input
      Tensor x = embed(ids, batch, seq);
      for (int j = 0; j < i; ++j) run_layer_unchecked(j, x, batch, seq, nullptr);
      if (trim) {  // report on the full layer output (positions as in a full pass)
        h = x.clone();
        run_layer_unchecked(i, h, batch, seq, nullptr);
        if (find_non_finite(h.f32(), size_t(h.numel())) < 0)
          throw NonFiniteError("layer " + std::to_string(i) + " (" + names_.layer(i) +
                               ") produced non-finite activations (not reproduced when re-run on every row)");
      }
      throw_non_finite_layer(i, x, batch, seq, h);
    }
    const std::string mod = names_.layer(i);
    if (opt.observer && opt.observer->wants(mod)) opt.observer->on_layer_output(mod, i, h.f32(), h.dim(0), H);
    if (opt.hidden_states) out.hidden_states.push_back(h.clone().reshaped({batch, seq, H}));
  }
  if (select && h.dim(0) != int64_t(opt.rows.size())) h = gather_rows(h, opt.rows);  // observer: all rows ran
  if (select) {
    Tensor fh = final_hidden(h);
    const int64_t m = fh.dim(0);
    if (opt.logits == ForwardOptions::Logits::None) {
      out.last_hidden_state = fh.reshaped({1, m, fh.dim(1)});
      return out;
    }
    out.logits = lm_logits(fh, opt.observer).reshaped({1, m, cfg_.vocab_size});
    return out;
  }
  if (opt.logits == ForwardOptions::Logits::Last && !opt.hidden_states) {
    Tensor last = new_rows(batch, H);
    for (int64_t b = 0; b < batch; ++b)
      std::memcpy(last.f32_mut() + b * H, h.f32() + ((b + 1) * seq - 1) * H, size_t(H) * 4);
    h = last;
  }
  Tensor fh = final_hidden(h);
  if (opt.hidden_states || opt.logits == ForwardOptions::Logits::None)
    out.last_hidden_state = fh.reshaped({batch, seq, fh.dim(1)});
  if (opt.logits == ForwardOptions::Logits::None) return out;
  if (opt.logits == ForwardOptions::Logits::Last && opt.hidden_states) {
    Tensor last = new_rows(batch, fh.dim(1));
    for (int64_t b = 0; b < batch; ++b)
      std::memcpy(last.f32_mut() + b * fh.dim(1), fh.f32() + ((b + 1) * seq - 1) * fh.dim(1), size_t(fh.dim(1)) * 4);
    fh = last;
  }
  const int64_t pos = opt.logits == ForwardOptions::Logits::All ? seq : 1;
  out.logits = lm_logits(fh, opt.observer).reshaped({batch, pos, cfg_.vocab_size});
  return out;
}

// ---- incremental decoding ----------------------------------------------------------------------

KvCache Decoder::new_cache(int64_t max_positions) const {
  std::vector<int> windows(size_t(num_layers()), 0);
  for (int i = 0; i < num_layers() && !cfg_.sliding_window.empty(); ++i) windows[size_t(i)] = cfg_.sliding_window[size_t(i)];
  return KvCache(cfg_.num_kv_heads, cfg_.head_dim, windows, max_positions);
}

Tensor Decoder::cached_step(const int32_t* ids, int64_t n, KvCache& cache, const ForwardOptions& opt) const {
  const ModelConfig& c = cfg_;
  const int64_t pos0 = cache.length(), H = c.hidden_size;
  const int64_t E = c.family == Family::OPT ? c.word_embed_proj_dim : H;
  if (c.pos == PosKind::Learned && pos0 + n > c.max_position)
    throw ArgError("sequence of " + std::to_string(pos0 + n) + " tokens exceeds max_position_embeddings " +
                   std::to_string(c.max_position));
  Tensor h = new_rows(n, E);
  embed_rows(ids, n, h.f32_mut());
  if (has_project_) {
    Tensor y = new_rows(n, H);
    linear_forward(project_in_, h.f32(), n, y.f32_mut(), compute_);
    h = y;
  }
  if (c.pos == PosKind::Learned) add_positions(h.f32_mut(), n, n, pos0);
  cache.reserve(n);
  Scratch scratch;
  opt.kv.validate(c.head_dim);
  scratch.kv = opt.kv;  // KV fake-quant: keys/values are quantized before they are stored (quantize-on-store)
  for (int i = 0; i < num_layers(); ++i) run_layer(i, h, 1, n, nullptr, scratch, &cache);
  cache.advance(n);
  if (opt.logits == ForwardOptions::Logits::Last) {
    Tensor last = new_rows(1, H);
    std::memcpy(last.f32_mut(), h.f32() + (n - 1) * H, size_t(H) * 4);
    h = last;
  }
  return h;
}

ForwardOutput Decoder::forward_cached(const int32_t* ids, int64_t n, KvCache& cache, const ForwardOptions& opt) const {
  if (n <= 0) throw ArgError("forward_cached: no tokens");
  if (opt.observer || opt.hidden_states) throw ArgError("forward_cached: observers and hidden states need forward()");
  if (cache.num_layers() != num_layers() || cache.kv_heads() != cfg_.num_kv_heads || cache.head_dim() != cfg_.head_dim)
    throw ArgError("forward_cached: the cache was made for another model");
  const ThreadScope threads(opt.threads);
  ForwardOutput out;
  const bool all = opt.logits == ForwardOptions::Logits::All;
  std::vector<Tensor> parts;
  for (int64_t done = 0; done < n;) {
    const int64_t step = std::min(n - done, cache.max_step());
    ForwardOptions so = opt;
    if (!all) so.logits = done + step == n ? opt.logits : ForwardOptions::Logits::None;
    Tensor h = cached_step(ids + done, step, cache, so);
    if (all || done + step == n) parts.push_back(std::move(h));
    done += step;
  }
  Tensor h = parts.size() == 1 ? parts[0] : Tensor();
  if (!h.defined()) {
    int64_t rows = 0;
    for (const Tensor& p : parts) rows += p.dim(0);
    h = new_rows(rows, cfg_.hidden_size);
    int64_t at = 0;
    for (const Tensor& p : parts) {
      std::memcpy(h.f32_mut() + at * cfg_.hidden_size, p.f32(), p.nbytes());
      at += p.dim(0);
    }
  }
  Tensor fh = final_hidden(h);
  if (opt.logits == ForwardOptions::Logits::None) {
    out.last_hidden_state = fh.reshaped({1, fh.dim(0), fh.dim(1)});
    return out;
  }
  out.logits = lm_logits(fh).reshaped({1, fh.dim(0), cfg_.vocab_size});
  return out;
}

// ---- weights in memory ---------------------------------------------------------------------------

size_t Decoder::pack_weights() {
  const std::string embed_name = embedding_tensor_name();
  auto pack = [&](Linear& l, const std::string& tensor) {
    if (!l.out || l.quantized()) return;
    (void)l.packed(compute_);
    if (l.drop_float_weight()) src_->release(tensor);
  };
  for (auto& L : layers_) {
    const bool fused = fused_linear({&L->q, &L->k, &L->v}, compute_) != nullptr;  // what attention runs
    (void)fused_quantized_linear({&L->gate, &L->up}, compute_);  // what the MLP runs (quantized: no copy)
    for (Linear* l : L->linears()) {
      if (fused && (l == &L->q || l == &L->k || l == &L->v)) {
        if (l->drop_float_weight()) src_->release(l->name + ".weight");
      } else {
        pack(*l, l->name + ".weight");
      }
    }
  }
  if (has_project_) {
    pack(project_in_, project_in_.name + ".weight");
    pack(project_out_, project_out_.name + ".weight");
  }
  pack(lm_head_, cfg_.tie_embeddings ? embed_name : lm_head_.name + ".weight");
  return resident_weight_bytes();
}

size_t Decoder::resident_weight_bytes() const {
  auto owned = [](const Tensor& t) { return t.defined() && !t.readonly() ? t.nbytes() : size_t(0); };
  size_t b = owned(embed_tokens_) + owned(embed_positions_) + owned(final_norm_.weight) + owned(final_norm_.bias);
  for (const auto& L : layers_) {
    for (const Linear* l : {&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down}) b += l->resident_bytes() + owned(l->bias);
    b += owned(L->attn_norm.weight) + owned(L->mlp_norm.weight) + owned(L->q_norm) + owned(L->k_norm);
  }
  // The fused q|k|v (and quantized gate|up) copies, counted once per layer: what they hold beyond
  // the members' resident_bytes() (a quantized stack holds the members' codes: nothing more).
  for (const auto& L : layers_) {
    if (auto f = L->q.fused()) b += f->own_bytes;
    if (auto f = L->gate.fused()) b += f->own_bytes;
  }
  b += project_in_.resident_bytes() + project_out_.resident_bytes() + lm_head_.resident_bytes();
  return b;
}

Linear* Decoder::find_linear(const std::string& name) {
  for (Linear* l : all_linears(true))
    if (l->name == name) return l;
  return nullptr;
}

std::vector<Linear*> Decoder::all_linears(bool include_lm_head) {
  std::vector<Linear*> r;
  for (auto& L : layers_)
    for (Linear* l : L->linears()) r.push_back(l);
  if (include_lm_head) r.push_back(&lm_head_);
  return r;
}

int64_t Decoder::parameter_count() const {
  int64_t n = embed_tokens_.numel() + (embed_positions_.defined() ? embed_positions_.numel() : 0);
  auto lin = [](const Linear& l) { return l.out ? l.in * l.out + (l.bias.defined() ? l.out : 0) : 0; };
  auto norm = [](const Norm& x) {
    return (x.weight.defined() ? x.weight.numel() : 0) + (x.bias.defined() ? x.bias.numel() : 0);
  };
  if (has_project_) n += lin(project_in_) + lin(project_out_);
  for (const auto& L : layers_) {
    n += lin(L->q) + lin(L->k) + lin(L->v) + lin(L->o) + lin(L->gate) + lin(L->up) + lin(L->down);
    n += norm(L->attn_norm) + norm(L->mlp_norm);
    n += (L->q_norm.defined() ? L->q_norm.numel() + L->k_norm.numel() : 0);
  }
  n += norm(final_norm_);
  if (!cfg_.tie_embeddings) n += lin(lm_head_);
  return n;
}

}  // namespace calq
