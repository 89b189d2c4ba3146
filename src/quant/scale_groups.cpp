#include "quant/scale_groups.h"

#include "util/error.h"

namespace calq {

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

}  // namespace calq
