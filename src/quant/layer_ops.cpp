#include "quant/layer_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/gemm.h"
#include "quant/act_quant.h"
#include "util/error.h"

namespace calq {

Tensor f32_copy(const Tensor& t) { return t.dtype() == DType::F32 ? t.clone() : t.to(DType::F32).clone(); }

double relative_output_error(const Tensor& x, const Tensor& w_ref, const Tensor& w_q, int64_t max_rows) {
  const int64_t n = x.dim(0), in = x.dim(1), out = w_ref.dim(0);
  if (w_ref.dim(1) != in || w_q.shape() != w_ref.shape()) throw ArgError("relative_output_error: shape mismatch");
  const int64_t step = std::max<int64_t>(1, (n + max_rows - 1) / max_rows);
  const int64_t m = (n + step - 1) / step;
  std::vector<float> xs(static_cast<size_t>(m * in)), d(static_cast<size_t>(out * in));
  for (int64_t r = 0; r < m; ++r) std::memcpy(&xs[size_t(r * in)], x.f32() + r * step * in, size_t(in) * 4);
  const float* a = w_ref.f32();
  const float* b = w_q.f32();
  for (int64_t k = 0; k < out * in; ++k) d[size_t(k)] = a[k] - b[k];
  std::vector<float> y(static_cast<size_t>(m * out));
  auto sq = [&](const float* w) {
    sgemm(true, m, out, in, 1.0f, xs.data(), in, w, in, 0.0f, y.data(), out);
    double s = 0;
    for (float v : y) s += double(v) * v;
    return s;
  };
  const double err = sq(d.data()), ref = sq(a);
  return ref > 0 ? err / ref : 0.0;
}

Tensor map_chunks(const Tensor& x, int64_t n_seq, int64_t seq, int64_t batch,
                  const std::function<Tensor(const Tensor&, int64_t)>& f) {
  if (x.ndim() != 2 || x.dim(0) != n_seq * seq) throw ArgError("map_chunks: x is not [n_seq*seq, cols]");
  batch = std::max<int64_t>(1, batch);
  Tensor out;
  for (int64_t s0 = 0; s0 < n_seq; s0 += batch) {
    const int64_t b = std::min(batch, n_seq - s0);
    const Tensor y = f(x.slice_rows(s0 * seq, (s0 + b) * seq), b);
    if (!out.defined()) out = Tensor::empty(DType::F32, {n_seq * seq, y.dim(1)});
    std::memcpy(out.f32_mut() + s0 * seq * y.dim(1), y.f32(), y.nbytes());
  }
  return out;
}

Tensor run_layer_chunked(const Decoder& m, int i, const LayerInputs& in, Observer* obs) {
  int64_t row0 = 0;
  return map_chunks(in.x, in.n_seq, in.seq, in.batch, [&](const Tensor& xc, int64_t b) {
    Tensor h = xc.clone();
    if (obs && in.valid) {
      RowMaskObserver mo(obs, in.valid->data() + row0);
      m.run_layer(i, h, b, in.seq, &mo);
    } else {
      m.run_layer(i, h, b, in.seq, obs);
    }
    row0 += b * in.seq;
    return h;
  });
}

void RowMaskObserver::on_linear_input(const std::string& module, const float* x, int64_t rows, int64_t cols) {
  if (!inner_->wants(module)) return;
  if (x != last_src_ || cols != last_cols_) {
    buf_.clear();
    for (int64_t r = 0; r < rows; ++r)
      if (mask_[r]) buf_.insert(buf_.end(), x + r * cols, x + (r + 1) * cols);
    buf_rows_ = int64_t(buf_.size()) / std::max<int64_t>(cols, 1);
    last_src_ = x;
    last_cols_ = cols;
  }
  if (buf_rows_ > 0) inner_->on_linear_input(module, buf_.data(), buf_rows_, cols);
}

// ---- observers ---------------------------------------------------------------------------

InputCapture::InputCapture(const std::vector<std::vector<std::string>>& groups) {
  for (const auto& g : groups) {
    groups_.emplace_back();
    for (const auto& m : g) group_of_[m] = groups_.size() - 1;
  }
}

void InputCapture::on_linear_input(const std::string& module, const float* x, int64_t rows, int64_t cols) {
  auto it = group_of_.find(module);
  if (it == group_of_.end()) return;
  Group& g = groups_[it->second];
  if (x == g.last && !g.seen.count(module)) {  // same input reported by another member (q/k/v)
    g.seen.insert(module);
    return;
  }
  if (g.cols && g.cols != cols) throw ArgError("InputCapture: '" + module + "' changed width");
  g.cols = cols;
  g.data.insert(g.data.end(), x, x + rows * cols);
  g.last = x;
  g.seen = {module};
  g.t = Tensor();
}

Tensor InputCapture::input(const std::string& module) {
  auto it = group_of_.find(module);
  if (it == group_of_.end() || groups_[it->second].cols == 0)
    throw ArgError("InputCapture: no input was observed for '" + module + "'");
  Group& g = groups_[it->second];
  if (!g.t.defined()) {
    g.t = Tensor::from_f32(g.data, {int64_t(g.data.size()) / g.cols, g.cols});
    g.data.clear();
    g.data.shrink_to_fit();
  }
  return g.t;
}

AbsMaxCapture::AbsMaxCapture(std::vector<std::string> modules) {
  for (auto& m : modules) absmax_[m];
}

void AbsMaxCapture::on_linear_input(const std::string& module, const float* x, int64_t rows, int64_t cols) {
  auto it = absmax_.find(module);
  if (it == absmax_.end()) return;
  auto& a = it->second;
  if (a.empty()) a.assign(size_t(cols), 0.0f);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) a[size_t(c)] = std::max(a[size_t(c)], std::fabs(x[r * cols + c]));
}

const std::vector<float>& AbsMaxCapture::absmax(const std::string& module) const {
  auto it = absmax_.find(module);
  if (it == absmax_.end() || it->second.empty())
    throw ArgError("AbsMaxCapture: no input was observed for '" + module + "'");
  return it->second;
}

// ---- groups ------------------------------------------------------------------------------

std::vector<std::vector<Linear*>> input_groups(DecoderLayer& L) {
  std::vector<std::vector<Linear*>> g = {{&L.q, &L.k, &L.v}, {&L.o}};
  if (L.gate.out) g.push_back({&L.gate, &L.up});
  else g.push_back({&L.up});
  g.push_back({&L.down});
  return g;
}

std::vector<std::vector<std::string>> input_group_names(DecoderLayer& L) {
  std::vector<std::vector<std::string>> r;
  for (const auto& g : input_groups(L)) {
    r.emplace_back();
    for (const Linear* l : g) r.back().push_back(l->name);
  }
  return r;
}

std::string ScaleGroup::describe() const {
  std::string s = prev_name + " -> ";
  for (size_t k = 0; k < layers.size(); ++k) s += (k ? "," : "") + layers[k]->name.substr(layers[k]->name.rfind('.') + 1);
  return s;
}

namespace {

std::string arch_of(const Decoder& m) {
  return m.config().model_type.empty() ? family_name(m.config().family) : m.config().model_type;
}

ScaleGroup norm_group(Decoder& m, int i, bool attn, std::vector<Linear*> layers, ScaleGroup::Inspect insp) {
  DecoderLayer& L = m.layer(i);
  ScaleGroup g;
  g.prev_name = m.names().in_layer(i, attn ? m.names().attn_norm : m.names().mlp_norm);
  g.prev_norm = attn ? &L.attn_norm : &L.mlp_norm;
  g.layers = std::move(layers);
  g.inspect = insp;
  return g;
}

ScaleGroup linear_group(Linear* prev, Linear* next) {
  ScaleGroup g;
  g.prev_name = prev->name;
  g.prev_linear = prev;
  g.layers = {next};
  g.inspect = ScaleGroup::Inspect::Linear;
  return g;
}

}  // namespace

std::vector<ScaleGroup> awq_scale_groups(Decoder& m, int i) {
  const ModelConfig& c = m.config();
  if (c.parallel_block)
    throw UnsupportedError("awq: no scale groups for " + arch_of(m) +
                           " (attention and MLP read one norm in parallel; AutoAWQ defines no groups for it)");
  if (!c.pre_norm)
    throw UnsupportedError("awq: no scale groups for post-LayerNorm " + arch_of(m) +
                           " (do_layer_norm_before=false: q/k/v do not read a norm output)");
  if (c.qk_norm) throw UnsupportedError("awq: no scale groups for " + arch_of(m) + " with QK-norm");
  DecoderLayer& L = m.layer(i);
  std::vector<ScaleGroup> g;
  g.push_back(norm_group(m, i, true, {&L.q, &L.k, &L.v}, ScaleGroup::Inspect::Attention));
  if (L.v.out == L.o.out && L.v.in == L.o.in) g.push_back(linear_group(&L.v, &L.o));
  if (c.gated_mlp) {
    g.push_back(norm_group(m, i, false, {&L.gate, &L.up}, ScaleGroup::Inspect::Mlp));
  } else {
    g.push_back(norm_group(m, i, false, {&L.up}, ScaleGroup::Inspect::Linear));
  }
  // up -> down: valid for any activation when the MLP is gated (act(gate) * up is linear in up);
  // for OPT fc1 -> fc2 it relies on ReLU(x / s) = ReLU(x) / s (s > 0), as AutoAWQ does.
  if (!c.gated_mlp && c.act != Activation::ReLU)
    throw UnsupportedError("awq: fc1 -> fc2 scaling needs a ReLU MLP (" + arch_of(m) + " has another activation)");
  g.push_back(linear_group(&L.up, &L.down));
  return g;
}

std::vector<ScaleGroup> smoothquant_groups(Decoder& m, int i) {
  const ModelConfig& c = m.config();
  if (!c.pre_norm)
    throw UnsupportedError("smoothquant: post-LayerNorm " + arch_of(m) +
                           " (do_layer_norm_before=false) has no norm before q/k/v to fold the smoothing into");
  DecoderLayer& L = m.layer(i);
  std::vector<ScaleGroup> g;
  if (c.parallel_block) {
    std::vector<Linear*> all = {&L.q, &L.k, &L.v};
    if (L.gate.out) all.push_back(&L.gate);
    all.push_back(&L.up);
    g.push_back(norm_group(m, i, true, all, ScaleGroup::Inspect::Linear));
    return g;
  }
  g.push_back(norm_group(m, i, true, {&L.q, &L.k, &L.v}, ScaleGroup::Inspect::Attention));
  if (L.gate.out) g.push_back(norm_group(m, i, false, {&L.gate, &L.up}, ScaleGroup::Inspect::Mlp));
  else g.push_back(norm_group(m, i, false, {&L.up}, ScaleGroup::Inspect::Linear));
  return g;
}

void apply_channel_scale(ScaleGroup& g, const std::vector<float>& s, std::set<std::string>* changed) {
  const int64_t n = int64_t(s.size());
  auto div_vec = [&](Tensor& t) {
    Tensor c = f32_copy(t);
    if (c.numel() != n) throw ArgError("apply_channel_scale: " + g.prev_name + " has " + std::to_string(c.numel()) +
                                       " outputs, scales " + std::to_string(n));
    for (int64_t j = 0; j < n; ++j) c.f32_mut()[j] /= s[size_t(j)];
    t = c;
  };
  if (g.prev_norm) {
    div_vec(g.prev_norm->weight);
    if (changed) changed->insert(g.prev_name + ".weight");
    if (g.prev_norm->bias.defined()) {
      div_vec(g.prev_norm->bias);
      if (changed) changed->insert(g.prev_name + ".bias");
    }
  } else {
    Linear* p = g.prev_linear;
    if (p->out < n) throw ArgError("apply_channel_scale: " + p->name + " has fewer outputs than scales");
    Tensor w = f32_copy(p->weight());
    const int64_t r0 = p->out - n;  // AutoAWQ scale_fc_fc: the last s.size() output rows
    for (int64_t r = 0; r < n; ++r)
      for (int64_t c = 0; c < p->in; ++c) w.f32_mut()[(r0 + r) * p->in + c] /= s[size_t(r)];
    p->set_weight(w);
    if (p->bias.defined()) {
      Tensor b = f32_copy(p->bias);
      for (int64_t r = 0; r < n; ++r) b.f32_mut()[r0 + r] /= s[size_t(r)];
      p->bias = b;
      if (changed) changed->insert(p->name + ".bias");
    }
  }
  for (Linear* l : g.layers) {
    if (l->in != n) throw ArgError("apply_channel_scale: " + l->name + " has " + std::to_string(l->in) + " inputs");
    Tensor w = f32_copy(l->weight());
    float* d = w.f32_mut();
    for (int64_t r = 0; r < l->out; ++r)
      for (int64_t c = 0; c < n; ++c) d[r * n + c] *= s[size_t(c)];
    l->set_weight(w);
  }
}

// ---- snapshot / install ------------------------------------------------------------------

LayerSnapshot::LayerSnapshot(Decoder& m, int i) : L_(&m.layer(i)), attn_(L_->attn_norm), mlp_(L_->mlp_norm) {
  for (Linear* l : L_->linears()) lins_.push_back({l, l->weight(), l->bias, l->input_transform});
}

void LayerSnapshot::restore() {
  for (auto& s : lins_) {
    s.l->set_weight(s.w);
    s.l->bias = s.b;
    s.l->input_transform = s.t;
    s.l->release_packed();
  }
  L_->attn_norm = attn_;
  L_->mlp_norm = mlp_;
}

namespace {

struct Target {
  Linear* lin = nullptr;
  Norm* norm = nullptr;
  bool bias = false;
};

Target find_target(Decoder& m, int i, const std::string& name) {
  DecoderLayer& L = m.layer(i);
  auto ends = [&](const std::string& prefix, const char* sfx) { return name == prefix + sfx; };
  for (Linear* l : L.linears()) {
    if (ends(l->name, ".weight")) return {l, nullptr, false};
    if (ends(l->name, ".bias")) return {l, nullptr, true};
  }
  const std::string an = m.names().in_layer(i, m.names().attn_norm), mn = m.names().in_layer(i, m.names().mlp_norm);
  if (ends(an, ".weight")) return {nullptr, &L.attn_norm, false};
  if (ends(an, ".bias")) return {nullptr, &L.attn_norm, true};
  if (!m.config().parallel_block) {
    if (ends(mn, ".weight")) return {nullptr, &L.mlp_norm, false};
    if (ends(mn, ".bias")) return {nullptr, &L.mlp_norm, true};
  }
  throw FormatError("layer " + std::to_string(i) + " has no tensor '" + name + "'");
}

}  // namespace

Tensor layer_tensor(Decoder& m, int i, const std::string& name) {
  const Target t = find_target(m, i, name);
  Tensor r = t.lin ? (t.bias ? t.lin->bias : t.lin->weight()) : (t.bias ? t.norm->bias : t.norm->weight);
  if (!r.defined()) throw FormatError("layer " + std::to_string(i) + ": tensor '" + name + "' is not present");
  return r.to(DType::F32);
}

void set_layer_tensor(Decoder& m, int i, const std::string& name, const Tensor& v) {
  const Target t = find_target(m, i, name);
  const Tensor cur = layer_tensor(m, i, name);
  if (v.shape() != cur.shape() || v.dtype() != DType::F32)
    throw FormatError("tensor '" + name + "' must be F32 " + shape_str(cur.shape()) + ", got " +
                      dtype_name(v.dtype()) + " " + shape_str(v.shape()));
  if (t.lin && !t.bias) t.lin->set_weight(v);
  else if (t.lin) t.lin->bias = v;
  else if (t.bias) t.norm->bias = v;
  else t.norm->weight = v;
}

void install_layer(Decoder& m, const LayerResult& r, const Json& activation) {
  for (const auto& [name, t] : r.replaced) set_layer_tensor(m, r.layer, name, t);
  for (const auto& [mod, qw] : r.weights) {
    Linear* l = m.find_linear(mod);
    if (!l) throw FormatError("quantization state names a linear '" + mod + "' the model does not have");
    l->set_weight(qw.dequantize());
  }
  if (activation.is_null() || !activation.is_object()) return;
  const int bits = activation.value("bits", 8);
  const ActGranularity g = parse_act_granularity(activation.value("granularity", std::string("none")));
  for (const auto& mod : activation.value("modules", std::vector<std::string>{})) {
    if (layer_of_name(mod) != r.layer) continue;
    Linear* l = m.find_linear(mod);
    if (!l) throw FormatError("quantization state names a linear '" + mod + "' the model does not have");
    if (g == ActGranularity::PerToken) {
      l->input_transform = std::make_shared<PerTokenActQuant>(bits);
    } else if (g == ActGranularity::PerTensorStatic) {
      auto it = r.input_scales.find(mod);
      if (it == r.input_scales.end()) throw FormatError("quantization state: no static input scale for '" + mod + "'");
      l->input_transform = std::make_shared<PerTensorStaticActQuant>(bits, it->second);
    }
  }
}

void apply_quant_state(Decoder& m, const QuantState& qs) {
  if (qs.num_layers() != m.num_layers())
    throw FormatError(qs.dir() + ": state has " + std::to_string(qs.num_layers()) + " layers, the model " +
                      std::to_string(m.num_layers()));
  const Json act = qs.info().contains("activation") ? qs.info()["activation"] : Json();
  for (int i : qs.layers_done()) install_layer(m, qs.layer(i), act);
  // Changes outside the decoder layers (extra.safetensors): quantized linears such as lm_head.
  for (Linear* l : {&m.lm_head()})
    if (auto qw = qs.weight(l->name)) l->set_weight(qw->dequantize());
}

}  // namespace calq
