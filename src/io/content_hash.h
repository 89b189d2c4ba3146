// Content hashes of the files calq writes for itself and reads back (activation statistics,
// quantization-state layer files), as calibration sets carry token_sha256: a SHA-256 over every
// tensor (in name order: name, dtype, shape, bytes) and every metadata entry (in key order; the
// JSON headers are metadata), stored in the file's own metadata under kContentHashKey and
// verified when the file is read. A flipped byte anywhere in the payload or in the metadata is
// refused with a clear error instead of silently changing results. (The safetensors framing is
// validated by its parser; what the framing holds is what this hash covers.)
#pragma once
#include <map>
#include <string>

#include "io/safetensors.h"

namespace calq {

inline constexpr const char* kContentHashKey = "content_sha256";

// The hash of `tensors` and `metadata` (a kContentHashKey entry in `metadata` is left out).
std::string content_sha256(const std::map<std::string, Tensor>& tensors,
                           const std::map<std::string, std::string>& metadata);
// Adds the tensors and metadata to `w` (in name order) plus kContentHashKey; returns the hash.
std::string add_with_content_hash(SafetensorsWriter& w, const std::map<std::string, Tensor>& tensors,
                                  const std::map<std::string, std::string>& metadata);
// Recomputes the hash of what `f` holds and compares it with its kContentHashKey entry; returns it.
// FormatError naming the file when they differ ("... the file was modified or damaged"), or when the
// entry is missing: `missing` then says what to do (e.g. "regenerate it with calq stats").
std::string verify_content_sha256(const SafetensorsFile& f, const std::string& missing);

}  // namespace calq
