#include "quant/awq.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "observe/capture.h"
#include "quant/layer_state.h"
#include "quant/metrics.h"
#include "util/error.h"

namespace calq {

void AwqConfig::validate() const {
  check_bits(bits, "awq");
  if (group_size == 0 || group_size < -1)
    throw ArgError("awq: group size must be -1 (per channel) or >= 1, got " + std::to_string(group_size));
  if (n_grid < 1 || clip_grid < 1) throw ArgError("awq: grid sizes must be >= 1");
  if (!(max_shrink > 0.0 && max_shrink < 1.0)) throw ArgError("awq: max_shrink must be in (0, 1)");
  if (clip_tokens < 1) throw ArgError("awq: clip token subsample must be >= 1");
  if (fixed_alpha && !(*fixed_alpha >= 0.0 && *fixed_alpha <= 1.0)) throw ArgError("awq: alpha must be in [0, 1]");
}

QuantScheme AwqConfig::scheme() const {
  return QuantScheme::weights(bits, !zero_point, group_size, RangeRule::Awq, f16_scales);
}

Json AwqConfig::to_json() const {
  Json j = {{"bits", bits}, {"group_size", group_size}, {"zero_point", zero_point}, {"n_grid", n_grid},
            {"duo_scaling", duo_scaling}, {"clip", clip}, {"clip_grid", clip_grid}, {"max_shrink", max_shrink},
            {"clip_tokens", clip_tokens}, {"scale_dtype", f16_scales ? "f16" : "f32"}};
  if (fixed_alpha) j["fixed_alpha"] = *fixed_alpha;
  return j;
}

namespace {

// Q(W·s)/s for W [out, in] (AutoAWQ: fc.weight.mul_(s); pseudo_quantize(...) / s).
Tensor quantize_scaled(const Tensor& w, const std::vector<float>& s, const QuantScheme& sch) {
  const int64_t out = w.dim(0), in = w.dim(1);
  Tensor ws = f32_copy(w);
  float* d = ws.f32_mut();
  for (int64_t r = 0; r < out; ++r)
    for (int64_t c = 0; c < in; ++c) d[r * in + c] *= s[size_t(c)];
  Tensor q = quantize_rtn(d, out, in, sch).dequantize();
  float* qd = q.f32_mut();
  for (int64_t r = 0; r < out; ++r)
    for (int64_t c = 0; c < in; ++c) qd[r * in + c] /= s[size_t(c)];
  return q;
}

Tensor inspect_forward(const Decoder& m, int i, const ScaleGroup& g, const LayerInputs& x) {
  return map_chunks(x.x, x.n_seq, x.seq, x.batch, [&](const Tensor& xc, int64_t b) {
    switch (g.inspect) {
      case ScaleGroup::Inspect::Attention: return m.attention_block(i, xc, b, x.seq);
      case ScaleGroup::Inspect::Mlp: return m.mlp_block(i, xc);
      case ScaleGroup::Inspect::Linear: break;
    }
    const Linear& l = *g.layers[0];
    Tensor y = Tensor::empty(DType::F32, {xc.dim(0), l.out});
    linear_forward(l, xc.f32(), xc.dim(0), y.f32_mut(), m.compute());
    return y;
  });
}

// Mean squared difference over the real (unpadded) rows.
double mse(const Tensor& a, const Tensor& b, const LayerInputs& in) {
  double s = 0;
  const int64_t rows = a.dim(0), cols = a.dim(1);
  int64_t used = 0;
#pragma omp parallel for reduction(+ : s, used) schedule(static) if (rows * cols > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    if (!in.row_valid(r)) continue;
    const float* x = a.f32() + r * cols;
    const float* y = b.f32() + r * cols;
    for (int64_t c = 0; c < cols; ++c) s += double(x[c] - y[c]) * double(x[c] - y[c]);
    used += cols;
  }
  return s / double(std::max<int64_t>(used, 1));
}

// Mean over output rows of |w| / (max |w| of its group + 1e-6): AutoAWQ's w_mean (duo scaling).
std::vector<float> weight_mean(const ScaleGroup& g, int64_t group_size) {
  const int64_t in = g.layers[0]->in;
  const int64_t G = group_size > 0 ? group_size : in;
  std::vector<double> acc(static_cast<size_t>(in), 0.0);
  int64_t rows = 0;
  for (const Linear* l : g.layers) {
    const Tensor w = l->weight_f32();
    for (int64_t r = 0; r < l->out; ++r) {
      const float* row = w.f32() + r * in;
      for (int64_t c0 = 0; c0 < in; c0 += G) {
        const int64_t c1 = std::min(in, c0 + G);
        float mx = 0;
        for (int64_t c = c0; c < c1; ++c) mx = std::max(mx, std::fabs(row[c]));
        for (int64_t c = c0; c < c1; ++c) acc[size_t(c)] += std::fabs(row[c]) / (mx + 1e-6f);
      }
    }
    rows += l->out;
  }
  std::vector<float> r(static_cast<size_t>(in));
  for (int64_t c = 0; c < in; ++c) r[size_t(c)] = float(acc[size_t(c)] / double(rows));
  return r;
}

}  // namespace

std::vector<float> awq_search_scale(Decoder& m, int layer, const ScaleGroup& g, const LayerInputs& x,
                                    const AwqConfig& cfg, AwqGroupReport* rep) {
  cfg.validate();
  const QuantScheme sch = cfg.scheme();
  const int64_t n = x.x.dim(0), in = x.x.dim(1);
  require_finite(x.x.f32(), n, in, "the input");
  for (const Linear* l : g.layers) require_finite(l->weight_f32().f32(), l->out, l->in, l->name + ".weight");
  // llm-awq get_act_scale: mean |x| per input channel.
  std::vector<double> xsum(static_cast<size_t>(in), 0.0);
  int64_t used = 0;
  for (int64_t t = 0; t < n; ++t) {
    if (!x.row_valid(t)) continue;
    for (int64_t c = 0; c < in; ++c) xsum[size_t(c)] += std::fabs(x.x.f32()[t * in + c]);
    ++used;
  }
  std::vector<float> x_mean(static_cast<size_t>(in));
  for (int64_t c = 0; c < in; ++c) x_mean[size_t(c)] = float(xsum[size_t(c)] / double(std::max<int64_t>(used, 1)));
  const std::vector<float> w_mean = cfg.duo_scaling ? weight_mean(g, cfg.group_size) : std::vector<float>();

  const Tensor org = inspect_forward(m, layer, g, x);
  std::vector<Tensor> orig_w;
  for (Linear* l : g.layers) orig_w.push_back(l->weight());

  std::vector<double> alphas;
  if (cfg.fixed_alpha) alphas.push_back(*cfg.fixed_alpha);
  else
    for (int r = 0; r < cfg.n_grid; ++r) alphas.push_back(double(r) / cfg.n_grid);

  double best = std::numeric_limits<double>::infinity();
  std::vector<float> best_s;
  std::vector<float> s(static_cast<size_t>(in));
  for (double alpha : alphas) {
    const float a = float(alpha);
    for (int64_t c = 0; c < in; ++c) {
      float v = std::pow(x_mean[size_t(c)], a);
      if (cfg.duo_scaling) v = v / (std::pow(w_mean[size_t(c)], 1.0f - a) + 1e-4f);
      s[size_t(c)] = std::max(v, 1e-4f);
    }
    const float mx = *std::max_element(s.begin(), s.end()), mn = *std::min_element(s.begin(), s.end());
    const float norm = std::sqrt(mx * mn);
    for (float& v : s) {
      v = v / norm;
      if (!std::isfinite(v)) v = 1.0f;  // AutoAWQ: inf / nan scales become 1
    }
    for (size_t k = 0; k < g.layers.size(); ++k) g.layers[k]->set_weight(quantize_scaled(orig_w[k], s, sch));
    const double loss = mse(inspect_forward(m, layer, g, x), org, x);
    for (size_t k = 0; k < g.layers.size(); ++k) g.layers[k]->set_weight(orig_w[k]);
    if (rep && alpha == 0.0) rep->loss_alpha0 = loss;
    if (loss < best) {
      best = loss;
      best_s = s;
      if (rep) rep->best_alpha = alpha;
    }
  }
  if (best_s.empty())
    throw Error("awq: scale search for " + g.describe() + " found no finite loss (NaN activations?)");
  if (rep) {
    rep->group = g.describe();
    rep->best_loss = best;
  }
  return best_s;
}

std::vector<float> awq_search_clip(const float* w, int64_t rows, int64_t cols, const Tensor& x, const AwqConfig& cfg,
                                   const std::vector<uint8_t>* valid) {
  require_finite(w, rows, cols, "the weight");
  require_finite(x.f32(), x.dim(0), x.dim(1), "the input");
  const QuantScheme sch = cfg.scheme();
  const int maxq = sch.maxq();
  const int64_t G = cfg.group_size > 0 ? cfg.group_size : cols, ng = QuantizedWeight::groups_for(cols, cfg.group_size);
  std::vector<int64_t> real;
  for (int64_t t = 0; t < x.dim(0); ++t)
    if (!valid || (*valid)[size_t(t)]) real.push_back(t);
  const int64_t n = int64_t(real.size());
  const int64_t step = std::max<int64_t>(1, n / cfg.clip_tokens);  // input_feat[:, ::step]
  std::vector<int64_t> tokens;
  for (int64_t k = 0; k < n; k += step) tokens.push_back(real[size_t(k)]);
  const int64_t nt = std::max<int64_t>(1, int64_t(tokens.size()));
  // Gram matrix of each group's inputs over the token subsample, C_g = Σ_t x_tg x_tgᵀ / nt.
  std::vector<std::vector<double>> gram(static_cast<size_t>(ng));
#pragma omp parallel for schedule(dynamic) if (ng * G * G * nt > (1 << 20))
  for (int64_t g = 0; g < ng; ++g) {
    const int64_t c0 = g * G, gs = std::min(cols, c0 + G) - c0;
    auto& C = gram[size_t(g)];
    C.assign(size_t(gs * gs), 0.0);
    for (int64_t t : tokens) {
      const float* xr = x.f32() + t * cols + c0;
      for (int64_t a = 0; a < gs; ++a)
        for (int64_t b = a; b < gs; ++b) C[size_t(a * gs + b)] += double(xr[a]) * xr[b];
    }
    for (int64_t a = 0; a < gs; ++a)
      for (int64_t b = a; b < gs; ++b) C[size_t(b * gs + a)] = C[size_t(a * gs + b)] /= double(nt);
  }
  std::vector<float> best(static_cast<size_t>(rows * ng));
  const int n_shrink = int(cfg.max_shrink * cfg.clip_grid);
#pragma omp parallel for schedule(static) if (rows * cols * G > (1 << 18))
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<float> cur(static_cast<size_t>(G));
    std::vector<double> d(static_cast<size_t>(G));
    for (int64_t g = 0; g < ng; ++g) {
      const int64_t c0 = g * G, gs = std::min(cols, c0 + G) - c0;
      const float* wg = w + r * cols + c0;
      float org_max = 0;
      for (int64_t c = 0; c < gs; ++c) org_max = std::max(org_max, std::fabs(wg[c]));
      float best_max = org_max;
      double min_err = 1e9;
      const auto& C = gram[size_t(g)];
      for (int i_s = 0; i_s < n_shrink; ++i_s) {
        const float mv = org_max * float(1.0 - double(i_s) / cfg.clip_grid);
        for (int64_t c = 0; c < gs; ++c) cur[size_t(c)] = std::clamp(wg[c], -mv, mv);
        const AffineParams p = find_params(cur.data(), gs, 1, sch);
        for (int64_t c = 0; c < gs; ++c) d[size_t(c)] = double(fake_quant_value(cur[size_t(c)], p, maxq)) - wg[c];
        double err = 0;
        for (int64_t a = 0; a < gs; ++a) {
          double t = 0;
          for (int64_t b = 0; b < gs; ++b) t += C[size_t(a * gs + b)] * d[size_t(b)];
          err += d[size_t(a)] * t;
        }
        if (err < min_err) {
          min_err = err;
          best_max = mv;
        }
      }
      best[size_t(r * ng + g)] = best_max;
    }
  }
  return best;
}

void awq_apply_clip(float* w, int64_t rows, int64_t cols, const std::vector<float>& max_val, const AwqConfig& cfg) {
  const int64_t G = cfg.group_size > 0 ? cfg.group_size : cols, ng = QuantizedWeight::groups_for(cols, cfg.group_size);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const float mv = max_val[size_t(r * ng + c / G)];
      w[r * cols + c] = std::clamp(w[r * cols + c], -mv, mv);
    }
}

LayerResult awq_quantize_layer(Decoder& m, int i, const LayerInputs& x, const AwqConfig& cfg, Tensor* next) {
  cfg.validate();
  std::vector<ScaleGroup> groups = awq_scale_groups(m, i);  // fails fast on unsupported blocks
  DecoderLayer& L = m.layer(i);
  LayerSnapshot snap(m, i);
  InputCapture cap(input_group_names(L));
  LayerInputs full = x;  // block forwards need whole sequences: capture padding rows too, skip them in the statistics
  full.valid = nullptr;
  Tensor y = run_layer_chunked(m, i, full, &cap);
  if (next) *next = y;

  LayerResult res;
  res.layer = i;
  Json greport = Json::array();
  std::vector<std::vector<float>> scales;
  for (const ScaleGroup& g : groups) {
    const LayerInputs gi{cap.input(g.layers[0]->name), x.n_seq, x.seq, x.batch, x.valid};
    AwqGroupReport rep;
    scales.push_back(with_context(g.describe(), [&] { return awq_search_scale(m, i, g, gi, cfg, &rep); }));
    greport.push_back({{"group", rep.group}, {"alpha", rep.best_alpha}, {"loss", rep.best_loss},
                       {"loss_alpha0", rep.loss_alpha0}});
  }
  // Apply every scale (weights, norms, and the captured inputs used by the clip search).
  std::set<std::string> changed;
  for (size_t k = 0; k < groups.size(); ++k) {
    apply_channel_scale(groups[k], scales[k], &changed);
    Tensor in = cap.input(groups[k].layers[0]->name);
    float* d = in.f32_mut();
    const int64_t cols = in.dim(1);
    for (int64_t t = 0; t < in.dim(0); ++t)
      for (int64_t c = 0; c < cols; ++c) d[t * cols + c] /= scales[k][size_t(c)];
  }
  const QuantScheme sch = cfg.scheme();
  Json lreport = Json::object();
  for (Linear* l : L.linears()) {
    Tensor w = f32_copy(l->weight());
    const Tensor xin = cap.input(l->name);
    const Tensor w_scaled = w.clone();
    QuantizedWeight qw = with_context(l->name, [&] {
      // auto_clip skips q and k: "due to qk bmm, it is hard to clip precisely".
      if (cfg.clip && l != &L.q && l != &L.k)
        awq_apply_clip(w.f32_mut(), l->out, l->in, awq_search_clip(w.f32(), l->out, l->in, xin, cfg, x.valid.get()),
                       cfg);
      return quantize_rtn(w.f32(), l->out, l->in, sch);
    });
    lreport[l->name] = {{"rel_output_error", relative_output_error(xin, w_scaled, qw.dequantize())}};
    res.weights[l->name] = std::move(qw);
  }
  for (const auto& name : changed) res.replaced[name] = layer_tensor(m, i, name).clone();
  res.report = {{"scale_groups", greport}, {"linears", lreport}};
  snap.restore();
  return res;
}

}  // namespace calq
