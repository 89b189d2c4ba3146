#include "formats/fakequant.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "io/mapped_file.h"
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

bool ends_with(const std::string& s, const std::string& e) {
  return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
}

// Source files worth copying: everything small that is not weights or the config/index.
void copy_side_files(const std::string& src, const std::string& out) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(src, ec)) {
    if (!e.is_regular_file()) continue;
    const std::string name = e.path().filename().string();
    if (name == "config.json" || name == "model.safetensors.index.json" || ends_with(name, ".safetensors") ||
        ends_with(name, ".bin") || ends_with(name, ".gguf") || ends_with(name, ".tmp") || name.rfind('.', 0) == 0)
      continue;
    if (e.file_size(ec) > (uint64_t(64) << 20)) continue;
    write_file_atomic(path_join(out, name), read_file(e.path().string()));
  }
}

std::string shard_name(size_t k, size_t n) {
  char b[64];
  std::snprintf(b, sizeof b, "model-%05zu-of-%05zu.safetensors", k + 1, n);
  return b;
}

}  // namespace

void write_fake_quant_checkpoint(const Checkpoint& src, const QuantState& qs, const std::string& out_dir,
                                 const FakeQuantOptions& opt) {
  if (!qs.complete())
    throw FormatError(qs.dir() + ": quantization is incomplete (" + std::to_string(qs.layers_done().size()) + "/" +
                      std::to_string(qs.num_layers()) + " layers done); run calq quantize again to resume it");
  std::error_code ec;
  if (fs::exists(out_dir, ec) && fs::equivalent(src.dir(), out_dir, ec))
    throw ArgError(out_dir + ": the output folder must differ from the source model");
  fs::create_directories(out_dir, ec);
  if (ec) throw IoError(out_dir + ": cannot create directory: " + ec.message());

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
    const std::string tmp = path_join(out_dir, ".calq-shard-" + std::to_string(tmp_files.size()) + ".part");
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
    const bool is_weight = ends_with(name, ".weight");
    const std::string module = is_weight ? name.substr(0, name.size() - 7) : std::string();
    if (is_weight) {
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

  // Replace the weights of a previous output, then the index, then config.json.
  for (const auto& e : fs::directory_iterator(out_dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n == "model.safetensors.index.json" || (n.rfind("model", 0) == 0 && ends_with(n, ".safetensors")))
      fs::remove(e.path(), ec);
  }
  if (tmp_files.size() == 1) {
    fs::rename(tmp_files[0], path_join(out_dir, "model.safetensors"));
  } else {
    Json wm = Json::object();
    for (size_t k = 0; k < tmp_files.size(); ++k) {
      const std::string sn = shard_name(k, tmp_files.size());
      fs::rename(tmp_files[k], path_join(out_dir, sn));
      for (const auto& t : shard_tensors[k]) wm[t] = sn;
    }
    write_file_atomic(path_join(out_dir, "model.safetensors.index.json"),
                      Json({{"metadata", Json::object()}, {"weight_map", wm}}).dump(1) + "\n");
  }
  copy_side_files(src.dir(), out_dir);
  Json cfg = src.config();
  cfg["calq_quant"] = calq_quant_block(qs);
  write_file_atomic(path_join(out_dir, "config.json"), cfg.dump(2) + "\n");
}

}  // namespace calq
