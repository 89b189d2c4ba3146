#include "formats/fakequant.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "formats/output.h"
#include "io/checkpoint.h"
#include "io/mapped_file.h"
#include "quant/act_quant.h"
#include "util/error.h"

namespace calq {

namespace fs = std::filesystem;

Json calq_quant_block(const QuantState& qs) {
  const Json& i = qs.info();
  Json b = {{"format", "calq-fakequant"},
            {"method", i.value("method", Json())},
            {"settings", i.value("settings", Json())},
            {"source_sha256", i.value("source_sha256", Json())}};
  const Json c = i.value("calib", Json());
  if (c.is_object()) b["calib"] = {{"sha256", c.value("sha256", Json())}, {"n", c.value("n", Json())}, {"seq", c.value("seq", Json())}};
  if (i.contains("activation") && !i["activation"].is_null()) b["activation"] = i["activation"];
  return b;
}

namespace {

std::string shard_name(size_t k, size_t n) {
  char b[64];
  std::snprintf(b, sizeof b, "model-%05zu-of-%05zu.safetensors", k + 1, n);
  return b;
}

// The name of the folder holding the state when it lies directly inside `out` ("" otherwise): the
// entry the output protocol keeps.
std::string state_entry(const QuantState& qs, const std::string& out) {
  auto norm = [](const std::string& p) {
    std::error_code ec;
    fs::path r = fs::weakly_canonical(p, ec);
    if (ec) r = fs::absolute(p).lexically_normal();
    return r.filename().empty() ? r.parent_path() : r;
  };
  const fs::path dir = norm(qs.dir());
  return dir.parent_path() == norm(out) ? dir.filename().string() : "";
}

}  // namespace

void write_fake_quant_checkpoint(const QuantState& qs, const std::string& out_dir, const FakeQuantOptions& opt) {
  qs.require_complete();
  const Checkpoint src = Checkpoint::open(qs.source_model());
  std::error_code ec;
  if (fs::exists(out_dir, ec) && fs::equivalent(src.dir(), out_dir, ec))
    throw ArgError(out_dir + ": the output folder must differ from the source model");
  std::vector<std::string> keep;
  if (const std::string e = state_entry(qs, out_dir); !e.empty()) keep.push_back(e);
  OutputDir out(out_dir, keep);

  std::vector<std::string> names = src.names();
  std::stable_sort(names.begin(), names.end(),
                   [](const std::string& a, const std::string& b) { return layer_of_name(a) < layer_of_name(b); });
  std::vector<std::string> tmp_files;
  std::vector<std::vector<std::string>> shard_tensors;
  SafetensorsWriter w;
  std::vector<std::string> cur;
  uint64_t bytes = 0;
  auto flush = [&] {
    if (cur.empty()) return;
    const std::string tmp = out.path(".calq-shard-" + std::to_string(tmp_files.size()) + ".part");
    w.write(tmp);
    tmp_files.push_back(tmp);
    shard_tensors.push_back(cur);
    w = SafetensorsWriter();
    cur.clear();
    bytes = 0;
  };
  auto add = [&](const std::string& name, const Tensor& t) {
    if (bytes > 0 && bytes + t.nbytes() > opt.shard_bytes) flush();
    w.add(name, t);
    cur.push_back(name);
    bytes += t.nbytes();
  };
  size_t n_quantized = 0;
  for (const auto& name : names) {
    if (name.ends_with(".weight")) {
      const std::string module = name.substr(0, name.size() - 7);
      if (auto qw = qs.weight(module)) {
        const TensorInfo& ti = src.info(name);
        if (ti.shape != Shape{qw->rows, qw->cols})
          throw FormatError(qs.dir() + ": quantized '" + module + "' is [" + std::to_string(qw->rows) + ", " +
                            std::to_string(qw->cols) + "], the source tensor " + shape_str(ti.shape));
        add(name, qw->dequantize());
        ++n_quantized;
        if (auto s = qs.input_scale(module)) add(module + ".input_scale", Tensor::from_f32({*s}, {1}));
        continue;
      }
    }
    if (auto t = qs.replaced(name)) {
      if (t->shape() != src.info(name).shape)
        throw FormatError(qs.dir() + ": replaced tensor '" + name + "' has shape " + shape_str(t->shape()) +
                          ", the source " + shape_str(src.info(name).shape));
      add(name, *t);
      continue;
    }
    add(name, src.get(name));
  }
  flush();
  const Json q = qs.info().value("quantized", Json::array());
  if (n_quantized != q.size())
    throw FormatError(qs.dir() + ": the state quantized " + std::to_string(q.size()) + " linears, the source has " +
                      std::to_string(n_quantized) + " of them");

  // The shards get their names once their number is known; then the index and config.json.
  if (tmp_files.size() == 1) {
    fs::rename(tmp_files[0], out.path("model.safetensors"));
  } else {
    Json wm = Json::object();
    for (size_t k = 0; k < tmp_files.size(); ++k) {
      const std::string sn = shard_name(k, tmp_files.size());
      fs::rename(tmp_files[k], out.path(sn));
      for (const auto& t : shard_tensors[k]) wm[t] = sn;
    }
    write_json_atomic(out.path("model.safetensors.index.json"), Json({{"metadata", Json::object()}, {"weight_map", wm}}), 1);
  }
  copy_side_files(src.dir(), out.tmp());
  Json cfg = src.config();
  cfg["calq_quant"] = calq_quant_block(qs);
  write_json_atomic(out.path("config.json"), cfg, 2);
  out.commit();
}

int apply_calq_quant_config(Decoder& model, const std::string& what) {
  const Checkpoint* ck = model.checkpoint();
  if (!ck) return 0;
  const Json& cfg = ck->config();
  auto cq = cfg.find("calq_quant");
  if (cq == cfg.end() || cq->is_null()) return 0;
  const std::string where = what + "/config.json: calq_quant";
  if (!cq->is_object()) throw ConfigError(where + ": expected an object");
  auto act = cq->find("activation");
  if (act == cq->end() || act->is_null()) return 0;
  if (!act->is_object()) throw ConfigError(where + ".activation: expected an object");
  const int bits = json_get<int>(*act, "bits", where + ".activation");
  if (bits < 2 || bits > 8) throw ConfigError(where + ".activation: bits must be in 2..8");
  const ActGranularity g = [&] {
    try {
      return parse_act_granularity(json_get<std::string>(*act, "granularity", where + ".activation"));
    } catch (const ArgError& e) {
      throw ConfigError(where + ".activation: " + e.what());
    }
  }();
  const auto modules = json_get<std::vector<std::string>>(*act, "modules", where + ".activation");
  int n = 0;
  for (const auto& m : modules) {
    Linear* l = model.find_linear(m);
    if (!l) throw ConfigError(where + ".activation: no linear layer named '" + m + "'");
    if (auto t = make_dynamic_act_quant(g, bits)) {
      l->input_transform = t;
    } else if (g == ActGranularity::PerTensorStatic) {
      const std::string name = m + ".input_scale";
      if (!ck->has(name)) throw FormatError(what + ": missing tensor '" + name + "' (per_tensor_static activations)");
      const Tensor t = ck->get(name).to(DType::F32);
      if (t.numel() != 1) throw FormatError(what + ": tensor '" + name + "' must have one element");
      const float s = t.f32()[0];
      if (!(s > 0.0f) || !std::isfinite(s)) throw FormatError(what + ": tensor '" + name + "' is not a positive scale");
      l->input_transform = std::make_shared<PerTensorStaticActQuant>(bits, s);
    } else {
      continue;
    }
    ++n;
  }
  return n;
}

}  // namespace calq
