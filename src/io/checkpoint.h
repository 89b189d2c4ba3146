// A Hugging Face model folder: config.json, model.safetensors or a sharded
// model.safetensors.index.json, plus optional generation_config.json / tokenizer_config.json.
// Tensors are views into memory-mapped shards; nothing is copied until a caller converts it.
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "util/json.h"

namespace calq {

class Checkpoint {
 public:
  // Throws IoError/FormatError naming the file at fault. Refuses pickle checkpoints.
  static Checkpoint open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const Json& config() const { return config_; }
  const std::optional<Json>& generation_config() const { return generation_config_; }
  const std::optional<Json>& tokenizer_config() const { return tokenizer_config_; }

  bool has(const std::string& name) const { return where_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;
  // Read-only view; throws FormatError "<dir>: missing tensor '<name>'" when absent.
  Tensor get(const std::string& name) const;
  // Drops the resident pages of a tensor whose contents were copied (packed) elsewhere; views stay
  // valid (SafetensorsFile::release). Unknown names are ignored.
  void release(const std::string& name) const;
  std::vector<std::string> names() const;
  std::vector<std::string> shard_paths() const;
  // "<shard file>: tensor '<name>'" (the folder when the tensor is absent), for error messages.
  std::string where(const std::string& name) const;

 private:
  std::string dir_;
  Json config_;
  std::optional<Json> generation_config_, tokenizer_config_;
  std::vector<std::shared_ptr<SafetensorsFile>> shards_;
  std::map<std::string, size_t> where_;  // tensor name -> shard index
};

}  // namespace calq
