// SHA-256 (FIPS 180-4), for manifests: source-file, token-tensor and tokenizer hashes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace calq {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  void update(const std::string& s) { update(s.data(), s.size()); }
  std::string hex();  // finalizes; call once

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t used_ = 0;
  uint64_t total_ = 0;
};

std::string sha256_hex(const void* data, size_t n);
inline std::string sha256_hex(const std::string& s) { return sha256_hex(s.data(), s.size()); }
// Hash of a file's bytes (memory-mapped). Throws IoError.
std::string sha256_file(const std::string& path);

}  // namespace calq
