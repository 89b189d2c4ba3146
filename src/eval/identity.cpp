#include "eval/identity.h"

#include <algorithm>
#include <filesystem>
#include <vector>

#include "io/checkpoint.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "util/error.h"
#include "util/sha256.h"

namespace calq::eval {

namespace {

constexpr size_t kBlock = 4096;
constexpr int kSamples = 64;

void add_u64(Sha256& h, uint64_t v) { h.update(&v, sizeof v); }

void add_range(Sha256& h, const uint8_t* base, size_t size, size_t off, size_t len) {
  if (off >= size) return;
  len = std::min(len, size - off);
  add_u64(h, off);
  h.update(base + off, len);
}

void add_weight_file(Sha256& h, const std::string& path) {
  const auto f = MappedFile::open(path);
  const uint8_t* p = f->data();
  const size_t n = f->size();
  h.update(std::filesystem::path(path).filename().string() + "\n");
  add_u64(h, n);
  if (path.size() > 12 && path.compare(path.size() - 12, 12, ".safetensors") == 0) {
    const SafetensorsHeader hdr = parse_safetensors_header(p, n, path);
    h.update(p, size_t(hdr.data_start));  // length prefix + JSON header
    for (const TensorInfo& t : hdr.tensors) {
      const size_t b = size_t(hdr.data_start + t.begin), e = size_t(hdr.data_start + t.end);
      add_range(h, p, n, b, std::min(kBlock, e - b));
      if (e - b > kBlock) add_range(h, p, n, e - kBlock, kBlock);
    }
  } else {
    add_range(h, p, n, 0, size_t(1) << 20);  // GGUF: header, metadata and tensor infos
  }
  for (int i = 0; i < kSamples; ++i) add_range(h, p, n, size_t(double(n) * i / kSamples), kBlock);
}

}  // namespace

std::string model_hash(const std::string& model_path) {
  namespace fs = std::filesystem;
  Sha256 h;
  h.update(std::string("calq-model-id-v1\n"));
  std::error_code ec;
  if (fs::is_regular_file(model_path, ec)) {
    add_weight_file(h, model_path);
    return h.hex();
  }
  if (!fs::is_directory(model_path, ec)) throw IoError(model_path + ": no such model file or folder");
  for (const char* cfg : {"config.json", "quantize_config.json"}) {
    const std::string p = path_join(model_path, cfg);
    if (!file_exists(p)) continue;
    h.update(std::string(cfg) + "\n");
    h.update(read_file(p));
  }
  std::vector<std::string> weights;
  for (const auto& e : fs::directory_iterator(model_path, ec)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && (e.path().extension() == ".safetensors" || e.path().extension() == ".gguf"))
      weights.push_back(e.path().string());
  }
  if (ec) throw IoError(model_path + ": cannot list the folder: " + ec.message());
  std::sort(weights.begin(), weights.end());
  for (const auto& w : weights) add_weight_file(h, w);
  return h.hex();
}

std::string arch_signature(const ModelConfig& c) {
  return c.model_type + "|vocab=" + std::to_string(c.vocab_size) + "|hidden=" + std::to_string(c.hidden_size) +
         "|layers=" + std::to_string(c.num_layers) + "|heads=" + std::to_string(c.num_heads) + "/" +
         std::to_string(c.num_kv_heads) + "|head_dim=" + std::to_string(c.head_dim) +
         "|ffn=" + std::to_string(c.intermediate_size);
}

}  // namespace calq::eval
