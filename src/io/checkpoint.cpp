#include "io/checkpoint.h"

#include <set>

#include "util/error.h"

namespace calq {

namespace {
std::optional<Json> load_optional_json(const std::string& path) {
  if (!file_exists(path)) return std::nullopt;
  return load_json_file(path);
}
}  // namespace

Checkpoint Checkpoint::open(const std::string& dir) {
  Checkpoint c;
  c.dir_ = dir;
  const std::string cfg = path_join(dir, "config.json");
  if (!file_exists(dir)) throw IoError(dir + ": no such model folder");
  if (!file_exists(cfg)) throw IoError(dir + ": no config.json (expected a Hugging Face model folder)");
  c.config_ = load_json_file(cfg);
  if (!c.config_.is_object()) throw ConfigError(cfg + ": expected a JSON object");
  c.generation_config_ = load_optional_json(path_join(dir, "generation_config.json"));
  c.tokenizer_config_ = load_optional_json(path_join(dir, "tokenizer_config.json"));

  std::vector<std::string> files;
  const std::string single = path_join(dir, "model.safetensors");
  const std::string index = path_join(dir, "model.safetensors.index.json");
  if (file_exists(single)) {
    files.push_back(single);
  } else if (file_exists(index)) {
    const Json idx = load_json_file(index);
    auto wm = idx.find("weight_map");
    if (!idx.is_object() || wm == idx.end() || !wm->is_object())
      throw FormatError(index + ": missing object 'weight_map'");
    std::set<std::string> seen;
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it->is_string()) throw FormatError(index + ": weight_map['" + it.key() + "'] is not a file name");
      const std::string f = it->get<std::string>();
      if (f.find('/') != std::string::npos || f.find("..") != std::string::npos)
        throw FormatError(index + ": shard name '" + f + "' must be a plain file name");
      if (seen.insert(f).second) files.push_back(path_join(dir, f));
    }
  } else if (file_exists(path_join(dir, "pytorch_model.bin")) ||
             file_exists(path_join(dir, "pytorch_model.bin.index.json"))) {
    throw UnsupportedError(dir + ": only pickle weights (pytorch_model.bin) found; calq never loads pickle. "
                           "Convert to safetensors first (e.g. transformers save_pretrained(safe_serialization=True))");
  } else {
    throw IoError(dir + ": no model.safetensors or model.safetensors.index.json");
  }
  for (const auto& f : files) {
    c.shards_.push_back(SafetensorsFile::open(f));
    const size_t k = c.shards_.size() - 1;
    for (const auto& ti : c.shards_.back()->tensors()) {
      if (c.where_.count(ti.name)) throw FormatError(f + ": tensor '" + ti.name + "' also appears in another shard");
      c.where_[ti.name] = k;
    }
  }
  return c;
}

const TensorInfo& Checkpoint::info(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) throw FormatError(dir_ + ": missing tensor '" + name + "'");
  return *shards_[it->second]->find(name);
}

Tensor Checkpoint::get(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) throw FormatError(dir_ + ": missing tensor '" + name + "'");
  return shards_[it->second]->get(name);
}

void Checkpoint::release(const std::string& name) const {
  auto it = where_.find(name);
  if (it != where_.end()) shards_[it->second]->release(name);
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> r;
  for (const auto& [n, _] : where_) r.push_back(n);
  return r;
}

std::string Checkpoint::where(const std::string& name) const {
  auto it = where_.find(name);
  return (it == where_.end() ? dir_ : shards_[it->second]->path()) + ": tensor '" + name + "'";
}

std::vector<std::string> Checkpoint::shard_paths() const {
  std::vector<std::string> r;
  for (const auto& s : shards_) r.push_back(s->path());
  return r;
}

}  // namespace calq
