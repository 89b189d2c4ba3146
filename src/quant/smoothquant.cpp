#include "quant/smoothquant.h"

#include <algorithm>
#include <cmath>

#include "observe/stats_collector.h"
#include "quant/layer_state.h"
#include "quant/metrics.h"
#include "util/error.h"

namespace calq {

void SmoothQuantConfig::validate() const {
  check_bits(w_bits, "smoothquant weights");
  check_bits(a_bits, "smoothquant activations");
  if (!(alpha >= 0.0 && alpha <= 1.0)) throw ArgError("smoothquant: alpha must be in [0, 1], got " + std::to_string(alpha));
  if (act == ActGranularity::None) throw ArgError("smoothquant: W8A8 needs an activation granularity");
}

QuantScheme SmoothQuantConfig::weight_scheme() const {
  QuantScheme s;
  s.bits = w_bits;
  s.sym = true;
  s.block = per_tensor_weights ? BlockShape::PerTensor : BlockShape::PerChannel;
  s.rule = RangeRule::Awq;  // absmax / (2^(b-1) - 1), clamped at 1e-5: quantize_weight_per_*_absmax
  s.f16_scales = false;
  return s;
}

Json SmoothQuantConfig::to_json() const {
  return {{"smooth", smooth}, {"alpha", alpha}, {"w_bits", w_bits}, {"a_bits", a_bits},
          {"weights", per_tensor_weights ? "per_tensor" : "per_channel"}, {"activations", act_granularity_name(act)}};
}

Json SmoothQuantConfig::activation_json() const { return {{"bits", a_bits}, {"granularity", act_granularity_name(act)}}; }

std::vector<float> smoothquant_scales(const ScaleGroup& g, const std::vector<float>& act, double alpha) {
  const int64_t in = g.layers[0]->in;
  if (int64_t(act.size()) != in) throw ArgError("smoothquant: activation scales do not match " + g.describe());
  require_finite(act.data(), 1, in, "the input absmax");
  std::vector<float> wmax(static_cast<size_t>(in), 0.0f);
  for (const Linear* l : g.layers) {
    const Tensor w = l->weight_f32();
    require_finite(w.f32(), l->out, in, l->name + ".weight");
    for (int64_t r = 0; r < l->out; ++r)
      for (int64_t c = 0; c < in; ++c) wmax[size_t(c)] = std::max(wmax[size_t(c)], std::fabs(w.f32()[r * in + c]));
  }
  const float a = float(alpha);
  std::vector<float> s(static_cast<size_t>(in));
  for (int64_t c = 0; c < in; ++c) {
    const float ws = std::max(wmax[size_t(c)], 1e-5f);
    s[size_t(c)] = std::max(std::pow(act[size_t(c)], a) / std::pow(ws, 1.0f - a), 1e-5f);
  }
  return s;
}

std::map<std::string, std::vector<float>> smoothquant_act_absmax(Decoder& m, int i, const LayerInputs& x,
                                                                  Tensor* next) {
  ActStatsOptions so;
  for (const Linear* l : m.layer(i).linears()) so.modules.push_back(l->name);
  so.topn = 0;
  ActStatsCollector col(m, so);
  Tensor y = run_layer_chunked(m, i, x, &col);
  if (next) *next = y;
  const ActStats st = col.result();
  std::map<std::string, std::vector<float>> r;
  for (const auto& name : so.modules) {
    const TensorStats* t = st.find(name);
    if (!t || t->count <= 0) throw ArgError("smoothquant: no input was observed for '" + name + "'");
    r[name] = t->absmax_vec();
  }
  return r;
}

LayerResult smoothquant_quantize_layer(Decoder& m, int i, const LayerInputs& x, const SmoothQuantConfig& cfg,
                                       Tensor* next) {
  cfg.validate();
  std::vector<ScaleGroup> groups;
  if (cfg.smooth) groups = smoothquant_groups(m, i);
  DecoderLayer& L = m.layer(i);
  LayerSnapshot snap(m, i);
  std::map<std::string, std::vector<float>> absmax = smoothquant_act_absmax(m, i, x, next);

  LayerResult res;
  res.layer = i;
  std::set<std::string> changed;
  Json sreport = Json::array();
  for (ScaleGroup& g : groups) {
    const std::vector<float> s =
        with_context(g.describe(), [&] { return smoothquant_scales(g, absmax[g.layers[0]->name], cfg.alpha); });
    apply_channel_scale(g, s, &changed);
    for (Linear* l : g.layers)  // inputs after smoothing: x_j / s_j (exact for the max)
      for (size_t c = 0; c < s.size(); ++c) absmax[l->name][c] /= s[c];
    const auto [mn, mx] = std::minmax_element(s.begin(), s.end());
    sreport.push_back({{"group", g.describe()}, {"s_min", *mn}, {"s_max", *mx}});
  }
  const QuantScheme sch = cfg.weight_scheme();
  Json lreport = Json::object();
  for (Linear* l : L.linears()) {
    const Tensor w = l->weight_f32();
    QuantizedWeight qw = with_context(l->name, [&] { return quantize_rtn(w.f32(), l->out, l->in, sch); });
    const auto& am = absmax[l->name];
    const float xmax = am.empty() ? 0.0f : *std::max_element(am.begin(), am.end());
    double amean = 0;  // with input_absmax: how far the largest channel stands out
    for (float v : am) amean += v;
    amean /= double(std::max<size_t>(am.size(), 1));
    lreport[l->name] = {{"rel_weight_error", relative_weight_error(w, qw.dequantize())}, {"input_absmax", xmax},
                        {"input_absmax_mean", amean}};
    if (cfg.act == ActGranularity::PerTensorStatic) res.input_scales[l->name] = static_scale_for_absmax(xmax, cfg.a_bits);
    res.weights[l->name] = std::move(qw);
  }
  for (const auto& name : changed) res.replaced[name] = layer_tensor(m, i, name).clone();
  res.report = {{"smoothing", sreport}, {"linears", lreport}};
  snap.restore();
  return res;
}

}  // namespace calq
