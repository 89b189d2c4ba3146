// Content addressing: an artifact's key is the SHA-256 of a canonical JSON of exactly what
// determines it — the content hashes of its inputs (model id, data files, tokenizer, the keys of
// the artifacts it reads), its settings and the artifact format version below. nlohmann::json
// objects keep their keys sorted, so dump() is canonical; numbers print in the shortest form that
// reads back exactly. Paths never enter a key: moving the data pack keeps every artifact valid.
#pragma once
#include <map>
#include <mutex>
#include <string>

#include "util/json.h"

namespace calq::study {

// Bumped when an artifact's layout or meaning changes (every key changes with it).
constexpr int kArtifactFormat = 1;

std::string identity_key(const Json& identity);

// SHA-256 of files, each read once per process (data files, tokenizers, act-scale profiles).
class FileHashes {
 public:
  std::string sha256(const std::string& path);

 private:
  std::mutex mu_;
  std::map<std::string, std::string> cache_;
};

}  // namespace calq::study
