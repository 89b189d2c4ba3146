#include "formats/hf_quant_export.h"

#include <map>
#include <set>

#include "formats/export_rules.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/naming.h"
#include "util/error.h"

namespace calq {

namespace {

enum class Format { Gptq, Awq };

// The decoder's linear modules (HF names) in layer order, and lm_head.
std::vector<std::string> linear_modules(const ModelConfig& c, const Checkpoint& ck) {
  const ModuleNames n = ModuleNames::for_checkpoint(c, [&](const std::string& t) { return ck.has(t); });
  std::vector<std::string> r;
  for (int i = 0; i < c.num_layers; ++i)
    for (const std::string* rel : {&n.q, &n.k, &n.v, &n.o, &n.gate, &n.up, &n.down})
      if (!rel->empty()) r.push_back(n.in_layer(i, *rel));
  return r;
}

struct Common {
  int bits = 0, group_size = 0;
  bool sym = false, act_order = false;
};

// Every decoder linear must be quantized with one (bits, group_size, sym): both formats describe
// the model with one quantization_config.
Common check_modules(const QuantState& q, const Checkpoint& ck, const std::vector<std::string>& linears,
                     const std::set<std::string>& quantized, Format f) {
  std::vector<std::string> missing;
  for (const auto& m : linears)
    if (!quantized.count(m)) missing.push_back(m);
  if (!missing.empty())
    throw UnsupportedError(q.dir() + ": " + std::to_string(missing.size()) + " of " + std::to_string(linears.size()) +
                           " decoder linears are not quantized (first: " + missing.front() +
                           "); GPTQ/AWQ checkpoints need every linear of every block quantized");
  Common c;
  bool first = true;
  std::vector<LinearShape> shapes;
  for (const auto& m : quantized) {
    if (!ck.has(m + ".weight")) {
      if (m == "lm_head") throw UnsupportedError(q.dir() + ": lm_head is quantized but tied to the embeddings; untie it first");
      throw FormatError(q.dir() + ": quantized module '" + m + "' has no weight in " + ck.dir());
    }
    if (f == Format::Awq && m == "lm_head") throw UnsupportedError(q.dir() + ": AWQ checkpoints keep lm_head in float");
    const QuantizedWeight w = *q.weight(m);
    if (first) {
      c.bits = w.bits;
      c.group_size = w.group_size;
      c.sym = w.sym;
      first = false;
    } else if (w.bits != c.bits || w.group_size != c.group_size || w.sym != c.sym) {
      throw UnsupportedError(q.dir() + ": '" + m + "' uses bits/group_size/sym " + std::to_string(w.bits) + "/" +
                             std::to_string(w.group_size) + "/" + (w.sym ? "true" : "false") +
                             ", other modules " + std::to_string(c.bits) + "/" + std::to_string(c.group_size) + "/" +
                             (c.sym ? "true" : "false") + "; one quantization_config cannot describe both");
    }
    for (int64_t k = 0; k < w.cols && !c.act_order; ++k)
      if (w.g_idx[size_t(k)] != (w.group_size > 0 ? k / w.group_size : 0)) c.act_order = true;
    shapes.push_back({m, w.rows, w.cols});
  }
  // The loaders' rules, for every module before anything is packed (formats/export_rules.h).
  check_exportable(f == Format::Gptq ? "gptq" : "awq", shapes, c.bits, c.group_size, c.act_order);
  return c;
}

Json quantization_config(const QuantState& q, const Common& c, Format f, GptqZeroFormat zeros, bool lm_head) {
  const Json info = q.info();
  const Json settings = info.is_object() && info.contains("settings") && info["settings"].is_object() ? info["settings"] : Json::object();
  const std::string what = q.dir() + " settings";
  Json meta = {{"quantizer", {std::string("calq:") + CALQ_VERSION}},
               {"calq_method", info.is_object() && info.contains("method") ? info["method"] : Json(nullptr)}};
  if (f == Format::Awq)
    return {{"quant_method", "awq"}, {"bits", 4}, {"group_size", c.group_size}, {"zero_point", true},
            {"version", "gemm"}, {"modules_to_not_convert", nullptr}, {"meta", meta}};
  return {{"quant_method", "gptq"},
          {"bits", c.bits},
          {"group_size", c.group_size},
          {"desc_act", json_get_or<bool>(settings, "desc_act", false, what) || c.act_order},
          {"sym", c.sym},
          {"static_groups", json_get_or<bool>(settings, "static_groups", false, what)},
          {"true_sequential", json_get_or<bool>(settings, "true_sequential", true, what)},
          {"damp_percent", json_get_or<double>(settings, "damp_percent", json_get_or<double>(settings, "percdamp", 0.01, what), what)},
          {"lm_head", lm_head},
          {"checkpoint_format", zeros == GptqZeroFormat::V1 ? "gptq" : "gptq_v2"},
          {"model_name_or_path", nullptr},
          {"model_file_base_name", "model"},
          {"meta", meta}};
}

ExportReport fill_and_write(const QuantState& q, const Checkpoint& ck, const std::set<std::string>& quantized,
                            const Common& common, Format f, const HfExportOptions& o, const OutputDir& out);

ExportReport export_hf(const QuantState& q, const std::string& out_dir, Format f, const HfExportOptions& o) {
  q.require_complete();
  const std::string model_dir = q.source_model();
  const Checkpoint ck = Checkpoint::open(model_dir);
  const ModelConfig cfg = ModelConfig::from_json(ck.config(), path_join(model_dir, "config.json"));
  const std::vector<std::string> linears = linear_modules(cfg, ck);
  const std::vector<std::string> qm = q.quantized_modules();
  const std::set<std::string> quantized(qm.begin(), qm.end());
  const Common common = check_modules(q, ck, linears, quantized, f);
  for (const auto& t : q.replaced_tensors())
    if (!ck.has(t)) throw FormatError(q.dir() + ": replaced tensor '" + t + "' does not exist in " + model_dir);

  OutputDir out(out_dir);  // fail fast when `out_dir` is taken
  ExportReport rep = fill_and_write(q, ck, quantized, common, f, o, out);
  rep.out = out_dir;
  out.commit();
  return rep;
}

ExportReport fill_and_write(const QuantState& q, const Checkpoint& ck, const std::set<std::string>& quantized,
                            const Common& common, Format f, const HfExportOptions& o, const OutputDir& out) {
  const std::string model_dir = ck.dir();
  const GptqZeroFormat zeros = o.zeros;
  ExportReport rep;
  rep.warnings = run_warnings(q, f == Format::Gptq ? "GPTQ" : "AWQ");
  SafetensorsWriter w;
  w.set_metadata("format", "pt");  // transformers refuses safetensors files without it
  const std::vector<std::string> names = ck.names();
  int64_t done = 0;
  for (const auto& name : names) {
    report_progress(o.progress, ++done, int64_t(names.size()), "tensors");
    const std::string module = name.ends_with(".weight") ? name.substr(0, name.size() - 7) : "";
    if (!module.empty() && quantized.count(module)) {
      const QuantizedWeight qw = *q.weight(module);
      const Tensor src = ck.get(name);
      if (src.shape() != Shape{qw.rows, qw.cols})
        throw FormatError(q.dir() + ": '" + module + "' is quantized as [" + std::to_string(qw.rows) + ", " +
                          std::to_string(qw.cols) + "], the model's weight is " + shape_str(src.shape()));
      if (f == Format::Gptq) {
        GptqTensors t = gptq_pack(qw, zeros, module, &rep.stats);
        w.add(module + ".qweight", t.qweight);
        w.add(module + ".qzeros", t.qzeros);
        w.add(module + ".scales", t.scales);
        w.add(module + ".g_idx", t.g_idx);
      } else {
        AwqTensors t = awq_pack(qw, module, &rep.stats);
        w.add(module + ".qweight", t.qweight);
        w.add(module + ".qzeros", t.qzeros);
        w.add(module + ".scales", t.scales);
      }
      ++rep.quantized;
    } else if (auto r = q.replaced(name)) {
      const Tensor src = ck.get(name);
      if (r->shape() != src.shape())
        throw FormatError(q.dir() + ": replaced tensor '" + name + "' has shape " + shape_str(r->shape()) +
                          ", the model's is " + shape_str(src.shape()));
      w.add(name, r->to(DType::F32));  // F32 as the run stored it: bitwise round trip
      ++rep.replaced;
    } else {
      w.add(name, ck.get(name));
      ++rep.copied;
    }
  }
  report_progress(o.progress, done, int64_t(names.size()), "tensors", "", true);
  if (rep.stats.scales_rounded)
    rep.warnings.push_back(std::to_string(rep.stats.scales_rounded) +
                           " scales were not fp16 values and were rounded: the export is not bitwise the fake-quant model "
                           "(see docs/formats.md, scale contract)");
  if (f == Format::Gptq && zeros == GptqZeroFormat::V1 && rep.stats.zero_is_zero)
    rep.warnings.push_back(std::to_string(rep.stats.zero_is_zero) +
                           " groups have zero point 0, stored as 2^bits-1 in GPTQ v1; calq decodes it exactly, but "
                           "AutoGPTQ/exllama-style kernels read it as 2^bits (use --gptq-format v2 for GPTQModel)");

  Json config = ck.config();
  const bool lm_head = quantized.count("lm_head") != 0;
  config["quantization_config"] = quantization_config(q, common, f, zeros, lm_head);

  w.write(out.path("model.safetensors"));
  write_json_atomic(out.path("config.json"), config, 2);
  if (f == Format::Gptq) write_json_atomic(out.path("quantize_config.json"), config["quantization_config"], 2);
  copy_side_files(model_dir, out.tmp());
  return rep;
}

}  // namespace

ExportReport export_gptq(const QuantState& q, const std::string& out_dir, const HfExportOptions& o) {
  return export_hf(q, out_dir, Format::Gptq, o);
}

ExportReport export_awq(const QuantState& q, const std::string& out_dir, const HfExportOptions& o) {
  return export_hf(q, out_dir, Format::Awq, o);
}

}  // namespace calq
