#include "formats/load_quantized.h"

#include "formats/quantized_linears.h"
#include "util/error.h"

namespace calq {

PackedFormat PackedFormat::from_config(const Json& qc, const std::string& what) {
  PackedFormat f;
  const std::string at = what + " quantization_config";
  const std::string method = json_get<std::string>(qc, "quant_method", at);
  if (method == "gptq") {
    f.kind = Kind::Gptq;
    f.bits = json_get<int>(qc, "bits", at);
    if (f.bits != 2 && f.bits != 3 && f.bits != 4 && f.bits != 8)
      throw UnsupportedError(at + ": GPTQ bits " + std::to_string(f.bits) + " (calq reads 2, 3, 4, 8)");
    f.group_size = json_get_or<int>(qc, "group_size", -1, at);
    f.sym = json_get_or<bool>(qc, "sym", true, at);
    const std::string cf = json_get_or<std::string>(qc, "checkpoint_format", "gptq", at);
    if (cf == "gptq") {
      f.zeros = GptqZeroFormat::V1;
    } else if (cf == "gptq_v2") {
      f.zeros = GptqZeroFormat::V2;
    } else {
      throw UnsupportedError(at + ": checkpoint_format '" + cf + "' (calq reads gptq and gptq_v2)");
    }
  } else if (method == "awq") {
    f.kind = Kind::Awq;
    f.bits = json_get_or<int>(qc, "bits", json_get_or<int>(qc, "w_bit", 4, at), at);
    if (f.bits != 4) throw UnsupportedError(at + ": AWQ bits " + std::to_string(f.bits) + " (the GEMM layout is 4-bit)");
    f.group_size = json_get_or<int>(qc, "group_size", json_get_or<int>(qc, "q_group_size", 128, at), at);
    std::string version = json_get_or<std::string>(qc, "version", "gemm", at);
    for (char& ch : version) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    if (version != "gemm") throw UnsupportedError(at + ": AWQ version '" + version + "' (calq reads the gemm layout)");
    if (!json_get_or<bool>(qc, "zero_point", true, at)) throw UnsupportedError(at + ": AWQ without zero points");
  } else {
    throw UnsupportedError(at + ": quant_method '" + method + "' (calq reads gptq and awq)");
  }
  if (f.group_size == 0 || f.group_size < -1) throw ConfigError(at + ": invalid group_size " + std::to_string(f.group_size));
  return f;
}

bool PackedCheckpointSource::is_packed(const std::string& module) const { return c_->has(module + ".qweight"); }

QuantizedWeight PackedCheckpointSource::quantized(const std::string& m) const {
  const std::string what = c_->dir() + ": " + m;
  for (const char* part : {".qweight", ".qzeros", ".scales"})
    if (!c_->has(m + part)) throw FormatError(c_->dir() + ": missing tensor '" + m + part + "'");
  if (f_.kind == PackedFormat::Kind::Awq)
    return awq_unpack(c_->get(m + ".qweight"), c_->get(m + ".qzeros"), c_->get(m + ".scales"), f_.group_size, what);
  const Tensor g_idx = c_->has(m + ".g_idx") ? c_->get(m + ".g_idx") : Tensor();
  return gptq_unpack(c_->get(m + ".qweight"), c_->get(m + ".qzeros"), c_->get(m + ".scales"), g_idx, f_.bits,
                     f_.group_size, f_.sym, f_.zeros, what);
}

std::shared_ptr<QuantPackedWeight> PackedCheckpointSource::quantized_linear(const std::string& m, ComputeType c) const {
  if (o_.float_weights || !is_packed(m)) return nullptr;
  auto w = pack_quantized_weight(quantized(m), c, o_.acts, c_->dir() + ": " + m);
  for (const char* part : {".qweight", ".qzeros", ".scales", ".g_idx"}) c_->release(m + part);
  return w;
}

bool PackedCheckpointSource::has(const std::string& name) const {
  if (c_->has(name)) return true;
  return name.ends_with(".weight") && is_packed(name.substr(0, name.size() - 7));
}

Tensor PackedCheckpointSource::get(const std::string& name) const {
  if (c_->has(name)) return c_->get(name);
  if (name.ends_with(".weight")) {
    const std::string m = name.substr(0, name.size() - 7);
    if (is_packed(m)) return quantized(m).dequantize();
  }
  throw FormatError(c_->dir() + ": missing tensor '" + name + "'");
}

std::unique_ptr<Decoder> load_packed_model(const std::string& dir, ComputeType compute, const LoadOptions& o) {
  auto ck = std::make_shared<const Checkpoint>(Checkpoint::open(dir));
  const std::string cfg_path = path_join(dir, "config.json");
  const Json& j = ck->config();
  auto it = j.find("quantization_config");
  if (it == j.end() || !it->is_object()) throw ConfigError(cfg_path + ": no quantization_config object");
  const PackedFormat f = PackedFormat::from_config(*it, cfg_path);
  const ModelConfig cfg = ModelConfig::from_json(j, cfg_path);
  return Decoder::from_source(cfg, std::make_shared<PackedCheckpointSource>(ck, f, o), compute);
}

}  // namespace calq
