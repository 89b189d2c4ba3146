#include "quant/method_options.h"

#include <set>

#include "util/error.h"

namespace calq {

MethodConfig MethodOptions::to_method() const {
  MethodConfig m = parse_method(method);
  const bool f16 = scale_dtype.empty() ? true : scale_dtype == "f16";
  if (!scale_dtype.empty() && scale_dtype != "f16" && scale_dtype != "f32")
    throw ArgError("scale dtype must be f16 or f32, got '" + scale_dtype + "'");
  const bool w8a8 = std::holds_alternative<SmoothQuantConfig>(m);
  const int b = bits ? bits : (w8a8 ? 8 : 4);
  if (group_size == 0 || group_size < -1)
    throw ArgError("group size must be -1 (per output channel) or >= 1, got " + std::to_string(group_size));
  if (auto* c = std::get_if<RtnConfig>(&m)) {
    QuantScheme& r = c->scheme;
    r.bits = b;
    r.sym = sym;
    r.block = per_tensor ? BlockShape::PerTensor : (group_size == -1 ? BlockShape::PerChannel : BlockShape::PerGroup);
    r.group_size = group_size;
    r.f16_scales = f16;
  } else if (auto* g = std::get_if<GptqConfig>(&m)) {
    g->bits = b;
    g->group_size = group_size;
    g->sym = sym;
    g->percdamp = percdamp;
    g->block_size = block_size;
    g->desc_act = desc_act;
    g->static_groups = static_groups;
    g->true_sequential = true_sequential;
    g->f16_scales = f16;
  } else if (auto* a = std::get_if<AwqConfig>(&m)) {
    a->bits = b;
    a->group_size = group_size;
    a->zero_point = !sym;
    a->clip = awq_clip;
    a->duo_scaling = awq_duo_scaling;
    a->n_grid = awq_grid;
    a->f16_scales = f16;
  } else {
    auto& sq = std::get<SmoothQuantConfig>(m);  // smooth: set by the method name
    sq.w_bits = b;
    sq.a_bits = a_bits;
    sq.alpha = alpha;
    sq.per_tensor_weights = per_tensor;
    sq.act = parse_act_granularity(act);
  }
  return m;
}

namespace {

template <class T>
void read(const Json& j, const char* key, T* out, const std::string& what) {
  auto it = j.find(key);
  if (it == j.end()) return;
  try {
    *out = it->get<T>();
  } catch (const Json::exception&) {
    throw ConfigError(what + ": '" + key + "' has the wrong type (" + it->dump() + ")");
  }
}

}  // namespace

MethodOptions MethodOptions::from_json(const Json& j, const std::string& what) {
  if (!j.is_object()) throw ConfigError(what + ": expected a table of method settings");
  static const std::set<std::string> known = {"method", "bits", "group_size", "sym", "per_tensor", "scale_dtype",
                                              "percdamp", "block_size", "desc_act", "static_groups",
                                              "true_sequential", "awq_clip", "awq_duo_scaling", "awq_grid", "alpha",
                                              "act", "a_bits"};
  for (const auto& [k, v] : j.items())
    if (!known.count(k)) throw ConfigError(what + ": unknown method setting '" + k + "'");
  MethodOptions o;
  read(j, "method", &o.method, what);
  read(j, "bits", &o.bits, what);
  read(j, "group_size", &o.group_size, what);
  read(j, "sym", &o.sym, what);
  read(j, "per_tensor", &o.per_tensor, what);
  read(j, "scale_dtype", &o.scale_dtype, what);
  read(j, "percdamp", &o.percdamp, what);
  read(j, "block_size", &o.block_size, what);
  read(j, "desc_act", &o.desc_act, what);
  read(j, "static_groups", &o.static_groups, what);
  read(j, "true_sequential", &o.true_sequential, what);
  read(j, "awq_clip", &o.awq_clip, what);
  read(j, "awq_duo_scaling", &o.awq_duo_scaling, what);
  read(j, "awq_grid", &o.awq_grid, what);
  read(j, "alpha", &o.alpha, what);
  read(j, "act", &o.act, what);
  read(j, "a_bits", &o.a_bits, what);
  return o;
}

Json MethodOptions::to_json() const {
  const MethodConfig m = to_method();
  const std::string name = method_name(m);
  Json j = {{"method", name}};
  if (const auto* c = std::get_if<RtnConfig>(&m)) {
    j["bits"] = c->scheme.bits;
    j["group_size"] = group_size;
    j["sym"] = sym;
    j["per_tensor"] = per_tensor;
  } else if (const auto* g = std::get_if<GptqConfig>(&m)) {
    j.update({{"bits", g->bits}, {"group_size", g->group_size}, {"sym", g->sym}, {"percdamp", g->percdamp},
              {"block_size", g->block_size}, {"desc_act", g->desc_act}, {"static_groups", g->static_groups},
              {"true_sequential", g->true_sequential}});
  } else if (const auto* a = std::get_if<AwqConfig>(&m)) {
    j.update({{"bits", a->bits}, {"group_size", a->group_size}, {"sym", sym}, {"awq_clip", a->clip},
              {"awq_duo_scaling", a->duo_scaling}, {"awq_grid", a->n_grid}});
  } else {
    const auto& sq = std::get<SmoothQuantConfig>(m);
    j.update({{"bits", sq.w_bits}, {"a_bits", sq.a_bits}, {"act", act_granularity_name(sq.act)},
              {"per_tensor", sq.per_tensor_weights}});
    if (sq.smooth) j["alpha"] = sq.alpha;
  }
  if (!std::holds_alternative<SmoothQuantConfig>(m)) j["scale_dtype"] = scale_dtype.empty() ? "f16" : scale_dtype;
  return j;
}

}  // namespace calq
