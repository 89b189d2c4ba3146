#include "quant/gptq.h"
#include "quant/layer_state.h"
#include "quant/scale_groups.h"
#include "util/error.h"

namespace calq {

LayerResult gptq_quantize_layer(Decoder& m, int i, const LayerInputs& x, const GptqConfig& cfg, Tensor* next) {
  cfg.validate();
  DecoderLayer& L = m.layer(i);
  LayerSnapshot snap(m, i);
  const auto groups = input_groups(L);
  // true_sequential: one subset per input group, in execution order; else one subset of all.
  std::vector<std::vector<std::vector<Linear*>>> subsets;
  if (cfg.true_sequential)
    for (const auto& g : groups) subsets.push_back({g});
  else
    subsets.push_back(groups);

  LayerResult res;
  res.layer = i;
  Json report = Json::object();
  double hessian_s = 0;
  for (const auto& subset : subsets) {
    std::vector<std::vector<std::string>> names;
    for (const auto& g : subset) {
      names.emplace_back();
      for (const Linear* l : g) names.back().push_back(l->name);
    }
    HessianCollector hc(names);
    run_layer_chunked(m, i, x, &hc);
    for (Linear* l : L.linears()) l->release_packed();  // the solves need the memory more than the GEMMs
    for (const auto& g : subset)
      for (Linear* l : g) {
        const Tensor w = l->weight_f32();
        GptqResult r =
            with_context(l->name, [&] { return gptq_quantize(w.f32(), l->out, l->in, *hc.get(l->name), cfg); });
        l->set_weight(r.qw.dequantize());
        report[l->name] = {{"rel_error", r.rel_error()}, {"error", r.error}, {"gptq_loss", r.loss},
                           {"dead_columns", r.dead_columns}, {"f64_fallback", r.f64_fallback},
                           {"nsamples", hc.get(l->name)->nsamples},
                           {"seconds", r.seconds_inverse + r.seconds_quantize + r.seconds_error}};
        res.weights[l->name] = std::move(r.qw);
      }
    hessian_s += hc.seconds();
  }
  if (next) *next = run_layer_chunked(m, i, x);
  res.report = {{"linears", report}, {"hessian_seconds", hessian_s}};
  snap.restore();
  return res;
}

}  // namespace calq
