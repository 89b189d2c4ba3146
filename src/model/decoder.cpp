#include "model/decoder.h"

#include <cmath>
#include <cstring>

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

void check_shape(const TensorSource& src, const std::string& name, const Tensor& t, const Shape& want) {
  if (t.shape() != want)
    throw FormatError(src.describe() + ": tensor '" + name + "' has shape " + shape_str(t.shape()) +
                      ", config.json implies " + shape_str(want));
  if (!is_float_dtype(t.dtype()))
    throw FormatError(src.describe() + ": tensor '" + name + "' has non-float dtype " + dtype_name(t.dtype()));
}

Tensor new_rows(int64_t rows, int64_t cols) { return Tensor::empty(DType::F32, {rows, cols}); }

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
  Tensor w = src_->get(wn);
  check_shape(*src_, wn, w, {out, in});
  l.set_weight(w);
  if (bias) {
    const std::string bn = name + ".bias";
    Tensor b = src_->get(bn);
    check_shape(*src_, bn, b, {out});
    l.bias = b.to(DType::F32);
  }
}

Norm Decoder::load_norm(const std::string& name, int64_t n, bool bias) const {
  Norm r;
  Tensor w = src_->get(name + ".weight");
  check_shape(*src_, name + ".weight", w, {n});
  r.weight = w.to(DType::F32);
  if (bias) {
    Tensor b = src_->get(name + ".bias");
    check_shape(*src_, name + ".bias", b, {n});
    r.bias = b.to(DType::F32);
  }
  return r;
}

void Decoder::build(std::shared_ptr<const TensorSource> src) {
  src_ = std::move(src);
  const ModelConfig& c = cfg_;
  std::string root = "model";
  if (c.family == Family::OPT)
    root = src_->has("decoder.embed_tokens.weight") && !src_->has("model.decoder.embed_tokens.weight")
               ? "decoder" : "model.decoder";
  names_ = ModuleNames::for_config(c, root);
  const int64_t H = c.hidden_size, E = c.family == Family::OPT ? c.word_embed_proj_dim : H;

  embed_tokens_ = src_->get(names_.embed_tokens + ".weight");
  check_shape(*src_, names_.embed_tokens + ".weight", embed_tokens_, {c.vocab_size, E});
  if (c.pos == PosKind::Learned) {
    embed_positions_ = src_->get(names_.embed_positions + ".weight");
    check_shape(*src_, names_.embed_positions + ".weight", embed_positions_,
                {c.max_position + c.position_offset, H});
  }
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
      L->q_norm = src_->get(at(names_.q_norm) + ".weight");
      check_shape(*src_, at(names_.q_norm) + ".weight", L->q_norm, {c.num_heads, c.head_dim});
      L->q_norm = L->q_norm.to(DType::F32);
      L->k_norm = src_->get(at(names_.k_norm) + ".weight");
      check_shape(*src_, at(names_.k_norm) + ".weight", L->k_norm, {c.num_kv_heads, c.head_dim});
      L->k_norm = L->k_norm.to(DType::F32);
    }
    layers_.push_back(std::move(L));
  }
  if (c.final_norm) final_norm_ = load_norm(names_.final_norm, H, ln_bias);
  lm_head_.name = names_.lm_head;
  lm_head_.in = E;
  lm_head_.out = c.vocab_size;
  if (c.tie_embeddings) {
    lm_head_.set_weight(embed_tokens_);
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

const RopeTable& Decoder::rope_table(int64_t seq) const {
  std::lock_guard<std::mutex> lock(rope_mu_);
  const RopeScaling& s = cfg_.rope_scaling;
  if (s.type == "dynamic" && seq > cfg_.max_position) {
    // Dynamic NTK scaling (HF _compute_dynamic_ntk_parameters): a larger base once seq exceeds the context.
    const double dim = cfg_.head_dim;
    const double base = cfg_.rope_theta * std::pow(s.factor * double(seq) / cfg_.max_position - (s.factor - 1),
                                                   dim / (dim - 2));
    rope_ = std::make_shared<RopeTable>(make_rope_table(rope_inv_freq(base, cfg_.head_dim), int(seq), 1.0));
    return *rope_;
  }
  if (!rope_ || rope_->positions < seq || (s.type == "dynamic" && rope_->positions > cfg_.max_position))
    rope_ = std::make_shared<RopeTable>(make_rope_table(inv_freq_, int(std::max<int64_t>(seq, 64)), 1.0));
  return *rope_;
}

Tensor Decoder::embed(const int32_t* ids, int64_t batch, int64_t seq) const {
  const ModelConfig& c = cfg_;
  const int64_t rows = batch * seq, E = embed_tokens_.dim(1), H = c.hidden_size;
  if (c.pos == PosKind::Learned && seq > c.max_position)
    throw ArgError("sequence of " + std::to_string(seq) + " tokens exceeds max_position_embeddings " +
                   std::to_string(c.max_position));
  for (int64_t r = 0; r < rows; ++r)
    if (ids[r] < 0 || ids[r] >= c.vocab_size)
      throw ArgError("token id " + std::to_string(ids[r]) + " out of range for vocab_size " +
                     std::to_string(c.vocab_size));
  Tensor x = new_rows(rows, E);
  const size_t row_bytes = size_t(E) * dtype_size(embed_tokens_.dtype());
  const auto* base = static_cast<const uint8_t*>(embed_tokens_.raw());
  for (int64_t r = 0; r < rows; ++r)
    convert_to_f32(base + size_t(ids[r]) * row_bytes, embed_tokens_.dtype(), x.f32_mut() + r * E, size_t(E));
  if (has_project_) {
    Tensor y = new_rows(rows, H);
    linear_forward(project_in_, x.f32(), rows, y.f32_mut(), compute_);
    x = y;
  }
  if (c.pos == PosKind::Learned) {
    const auto* pb = static_cast<const uint8_t*>(embed_positions_.raw());
    const size_t prow = size_t(H) * dtype_size(embed_positions_.dtype());
    std::vector<float> tmp(static_cast<size_t>(H));
    float* xd = x.f32_mut();
    for (int64_t r = 0; r < rows; ++r) {
      convert_to_f32(pb + size_t(r % seq + c.position_offset) * prow, embed_positions_.dtype(), tmp.data(), size_t(H));
      for (int64_t j = 0; j < H; ++j) xd[r * H + j] += tmp[size_t(j)];
    }
  }
  return x;
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

// Per-head LayerNorm over head_dim without bias (Cohere use_qk_norm), weight [heads, head_dim].
void head_layer_norm(Tensor& x, int heads, int hd, const Tensor& w, float eps) {
  const int64_t rows = x.dim(0);
  float* d = x.f32_mut();
  for (int64_t r = 0; r < rows; ++r)
    for (int h = 0; h < heads; ++h) {
      float* v = d + (r * heads + h) * hd;
      layer_norm(v, 1, hd, w.f32() + int64_t(h) * hd, nullptr, eps, v);
    }
}
}  // namespace

Tensor Decoder::attention_block(int i, const Tensor& xn, int64_t batch, int64_t seq, Observer* obs) const {
  const ModelConfig& c = cfg_;
  const DecoderLayer& L = layer(i);
  const int64_t rows = xn.dim(0);
  Tensor q = run_linear(L.q, xn, obs, compute_);
  Tensor k = run_linear(L.k, xn, obs, compute_);
  Tensor v = run_linear(L.v, xn, obs, compute_);
  if (c.qk_norm) {
    head_layer_norm(q, c.num_heads, c.head_dim, L.q_norm, float(c.norm_eps));
    head_layer_norm(k, c.num_kv_heads, c.head_dim, L.k_norm, float(c.norm_eps));
  }
  if (c.pos == PosKind::Rope) {
    const RopeTable& t = rope_table(seq);
    std::vector<int32_t> pos(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) pos[size_t(r)] = int32_t(r % seq);
    const bool inter = c.rope_style == RopeStyle::Interleaved;
    apply_rope(q.f32_mut(), rows, c.num_heads, c.head_dim, pos.data(), t, inter);
    apply_rope(k.f32_mut(), rows, c.num_kv_heads, c.head_dim, pos.data(), t, inter);
  }
  Tensor a = new_rows(rows, c.q_dim());
  AttnDims d;
  d.batch = batch;
  d.seq = seq;
  d.heads = c.num_heads;
  d.kv_heads = c.num_kv_heads;
  d.head_dim = c.head_dim;
  d.window = c.sliding_window.empty() ? 0 : c.sliding_window[size_t(i)];
  d.scale = float(1.0 / std::sqrt(double(c.head_dim)));
  attention(q.f32(), k.f32(), v.f32(), a.f32_mut(), d);
  return run_linear(L.o, a, obs, compute_);
}

Tensor Decoder::mlp_block(int i, const Tensor& xn, Observer* obs) const {
  const DecoderLayer& L = layer(i);
  const ActKind act = act_kind(cfg_.act);
  Tensor u = run_linear(L.up, xn, obs, compute_);
  if (cfg_.gated_mlp) {
    Tensor g = run_linear(L.gate, xn, obs, compute_);
    gated_act(g.f32_mut(), u.f32(), g.numel(), act);
    return run_linear(L.down, g, obs, compute_);
  }
  act_inplace(u.f32_mut(), u.numel(), act);
  return run_linear(L.down, u, obs, compute_);
}

void Decoder::run_layer(int i, Tensor& h, int64_t batch, int64_t seq, Observer* obs) const {
  const DecoderLayer& L = layer(i);
  const int64_t n = h.numel();
  auto add = [n](Tensor& dst, const Tensor& src) {
    float* d = dst.f32_mut();
    const float* s = src.f32();
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t j = 0; j < n; ++j) d[j] += s[j];
  };
  if (cfg_.parallel_block) {  // Cohere: h + attn(ln(h)) + mlp(ln(h))
    const Tensor xn = apply_norm(L.attn_norm, h);
    const Tensor a = attention_block(i, xn, batch, seq, obs);
    const Tensor m = mlp_block(i, xn, obs);
    add(h, a);
    add(h, m);
  } else if (cfg_.pre_norm) {
    add(h, attention_block(i, apply_norm(L.attn_norm, h), batch, seq, obs));
    add(h, mlp_block(i, apply_norm(L.mlp_norm, h), obs));
  } else {  // OPT post-LN (do_layer_norm_before = false)
    add(h, attention_block(i, h, batch, seq, obs));
    h = apply_norm(L.attn_norm, h);
    add(h, mlp_block(i, h, obs));
    h = apply_norm(L.mlp_norm, h);
  }
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
  return y;
}

ForwardOutput Decoder::forward(const int32_t* ids, int64_t batch, int64_t seq, const ForwardOptions& opt) const {
  if (batch <= 0 || seq <= 0) throw ArgError("forward: empty batch");
  ForwardOutput out;
  const int64_t H = cfg_.hidden_size;
  if (opt.observer) opt.observer->on_batch(ids, batch, seq);
  Tensor h = embed(ids, batch, seq);
  if (opt.hidden_states) out.hidden_states.push_back(h.clone().reshaped({batch, seq, H}));
  for (int i = 0; i < num_layers(); ++i) {
    run_layer(i, h, batch, seq, opt.observer);
    const std::string mod = names_.layer(i);
    if (opt.observer && opt.observer->wants(mod)) opt.observer->on_layer_output(mod, i, h.f32(), h.dim(0), H);
    if (opt.hidden_states) out.hidden_states.push_back(h.clone().reshaped({batch, seq, H}));
  }
  if (opt.logits == ForwardOptions::Logits::Last && !opt.hidden_states) {
    Tensor last = new_rows(batch, H);
    for (int64_t b = 0; b < batch; ++b)
      std::memcpy(last.f32_mut() + b * H, h.f32() + ((b + 1) * seq - 1) * H, size_t(H) * 4);
    h = last;
  }
  Tensor fh = final_hidden(h);
  if (opt.hidden_states) out.last_hidden_state = fh.reshaped({batch, seq, fh.dim(1)});
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
