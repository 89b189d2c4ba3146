#include "io/content_hash.h"

#include "util/error.h"
#include "util/sha256.h"

namespace calq {

namespace {

// One tensor's contribution: name, dtype and shape (NUL-separated), then the raw bytes.
void hash_tensor(Sha256& h, const std::string& name, const Tensor& t) {
  std::string head = "tensor";
  head += '\0';
  head += name;
  head += '\0';
  head += dtype_name(t.dtype());
  for (int64_t d : t.shape()) head += "," + std::to_string(d);
  head += '\0';
  h.update(head);
  if (t.nbytes() > 0) h.update(t.raw(), t.nbytes());
}

void hash_metadata(Sha256& h, const std::map<std::string, std::string>& metadata) {
  for (const auto& [k, v] : metadata) {
    if (k == kContentHashKey) continue;
    std::string e = "meta";
    e += '\0';
    e += k;
    e += '\0';
    e += std::to_string(v.size());
    e += '\0';
    h.update(e);
    h.update(v);
  }
}

}  // namespace

std::string content_sha256(const std::map<std::string, Tensor>& tensors,
                           const std::map<std::string, std::string>& metadata) {
  Sha256 h;
  h.update(std::string("calq-content-v1"));
  for (const auto& [name, t] : tensors) hash_tensor(h, name, t);
  hash_metadata(h, metadata);
  return h.hex();
}

std::string add_with_content_hash(SafetensorsWriter& w, const std::map<std::string, Tensor>& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  for (const auto& [name, t] : tensors) w.add(name, t);
  for (const auto& [k, v] : metadata)
    if (k != kContentHashKey) w.set_metadata(k, v);
  const std::string hash = content_sha256(tensors, metadata);
  w.set_metadata(kContentHashKey, hash);
  return hash;
}

std::string verify_content_sha256(const SafetensorsFile& f, const std::string& missing) {
  auto it = f.metadata().find(kContentHashKey);
  if (it == f.metadata().end())
    throw FormatError(f.path() + ": no content hash (metadata '" + kContentHashKey +
                      "'): written by an older calq or by another tool; " + missing);
  std::map<std::string, Tensor> tensors;
  for (const auto& ti : f.tensors()) tensors.emplace(ti.name, f.get(ti.name));
  const std::string have = content_sha256(tensors, f.metadata());
  if (have != it->second)
    throw FormatError(f.path() + ": content hash mismatch (stored " + it->second.substr(0, 12) + "…, computed " +
                      have.substr(0, 12) + "…): the file was modified or damaged since calq wrote it");
  return have;
}

}  // namespace calq
