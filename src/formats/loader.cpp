#include "formats/loader.h"

#include <fstream>

#include "formats/fakequant.h"
#include "formats/gguf_model.h"
#include "formats/load_quantized.h"
#include "formats/qstate_model.h"
#include "util/error.h"

namespace calq {

std::string detect_model_format(const std::string& path) {
  if (path.size() > 5 && path.ends_with(".gguf")) return "gguf";
  if (file_exists(path) && !file_exists(path_join(path, "."))) {  // a file, not a folder: sniff the magic
    std::ifstream in(path, std::ios::binary);
    char magic[4] = {};
    if (in.read(magic, 4) && std::string(magic, 4) == "GGUF") return "gguf";
    return "unknown";
  }
  const std::string cfg = path_join(path, "config.json");
  if (!file_exists(cfg)) return is_qstate_folder(path) ? "qstate" : "unknown";
  const Json j = load_json_file(cfg);
  if (auto q = j.find("quantization_config"); j.is_object() && q != j.end() && q->is_object()) {
    const std::string m = json_get_or<std::string>(*q, "quant_method", "", cfg);
    if (m == "gptq" || m == "awq") return m;
    throw UnsupportedError(cfg + ": unsupported quantization_config.quant_method '" + m + "'");
  }
  if (j.is_object() && j.contains("calq_quant")) return "fake-quant";  // calq quantize's output (formats/fakequant.h)
  return "hf-float";
}

ComputeType natural_compute(const Decoder& model) {
  auto& m = const_cast<Decoder&>(model);  // all_linears() is non-const; nothing is modified
  for (Linear* l : m.all_linears(true)) {
    if (!l->out) continue;
    if (l->quantized() || l->weight().dtype() != DType::F32) return ComputeType::BF16;
  }
  return ComputeType::F32;
}

std::string describe_compute(const Decoder& model) {
  const ComputeType nat = natural_compute(model), c = model.compute();
  const std::string why = nat == ComputeType::BF16 ? "the weights are bf16/f16 or quantized" : "the weights are f32";
  if (c == nat)
    return std::string(compute_type_name(c)) + " (" + why + "; " + (c == ComputeType::BF16 ? "--f32" : "--bf16") +
           " to compute in " + (c == ComputeType::BF16 ? "f32" : "bf16") + ")";
  return std::string(compute_type_name(c)) + " (chosen; " + why + ")";
}

std::unique_ptr<Decoder> load_model(const std::string& path, const LoadOptions& o) {
  const std::string fmt = detect_model_format(path);
  const ComputeType c0 = o.compute.value_or(ComputeType::F32);
  std::unique_ptr<Decoder> d;
  if (fmt == "gptq" || fmt == "awq") {
    d = load_packed_model(path, c0, o);  // formats/load_quantized.h
  } else if (fmt == "gguf") {
    d = load_gguf_model(path, c0, o);  // formats/gguf_model.h
  } else if (fmt == "qstate") {
    d = load_qstate_model(path, c0, o);  // formats/qstate_model.h
  } else {
    d = Decoder::load(path, c0);
    apply_calq_quant_config(*d, path);  // W8A8 fake-quant checkpoints: re-install activation quantization
  }
  if (!o.compute) d->set_compute(natural_compute(*d));
  if (o.pack) d->pack_weights();
  return d;
}

std::unique_ptr<Decoder> load_model(const std::string& path, ComputeType compute) {
  LoadOptions o;
  o.compute = compute;
  return load_model(path, o);
}

}  // namespace calq
