#include "study/keys.h"

#include "util/sha256.h"

namespace calq::study {

std::string identity_key(const Json& identity) {
  Json j = identity;
  j["artifact_format"] = kArtifactFormat;
  return sha256_hex("calq-study-artifact\n" + j.dump());
}

std::string FileHashes::sha256(const std::string& path) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = cache_.find(path); it != cache_.end()) return it->second;
  }
  const std::string h = sha256_file(path);
  std::lock_guard<std::mutex> lock(mu_);
  cache_[path] = h;
  return h;
}

}  // namespace calq::study
