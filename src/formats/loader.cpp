#include "formats/loader.h"

#include <fstream>

#include "formats/fakequant.h"
#include "formats/gguf_model.h"
#include "formats/load_quantized.h"
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
  if (!file_exists(cfg)) return "unknown";
  const Json j = load_json_file(cfg);
  if (auto q = j.find("quantization_config"); j.is_object() && q != j.end() && q->is_object()) {
    const std::string m = json_get_or<std::string>(*q, "quant_method", "", cfg);
    if (m == "gptq" || m == "awq") return m;
    throw UnsupportedError(cfg + ": unsupported quantization_config.quant_method '" + m + "'");
  }
  if (j.is_object() && j.contains("calq_quant")) return "fake-quant";  // calq quantize's output (formats/fakequant.h)
  return "hf-float";
}

std::unique_ptr<Decoder> load_model(const std::string& path, ComputeType compute) {
  const std::string fmt = detect_model_format(path);
  if (fmt == "gptq" || fmt == "awq") return load_packed_model(path, compute);  // formats/load_quantized.h
  if (fmt == "gguf") return load_gguf_model(path, compute);                    // formats/gguf_model.h
  auto d = Decoder::load(path, compute);
  apply_calq_quant_config(*d, path);  // W8A8 fake-quant checkpoints: re-install activation quantization
  return d;
}

}  // namespace calq
