// Identities written into every result and KLD reference, so that a study can tell models, data
// and tokenizers apart and a reference is never scored against the wrong model family.
//
// Model hash ("calq-model-id-v1"): SHA-256 over config.json (and quantize_config.json when present)
// and, for every weight file (*.safetensors sorted by name, or the .gguf file): its name and size,
// the safetensors header, the first and last 4 KiB of every tensor's data, and 64 evenly spaced
// 4 KiB blocks of the file. It reads a few MB instead of the whole checkpoint (a full SHA-256 of a
// 70B model takes minutes) yet changes whenever any tensor is re-quantized, because every tensor
// contributes bytes from both of its ends. It is an identity, not a tamper-proof checksum.
#pragma once
#include <string>

namespace calq {
struct ModelConfig;
}

namespace calq::eval {

std::string model_hash(const std::string& model_path);

// "model_type|vocab|hidden|layers|heads/kv_heads|head_dim|intermediate": the shape every
// quantized copy of a model keeps; a KLD reference refuses a model whose signature differs.
std::string arch_signature(const ModelConfig& cfg);

}  // namespace calq::eval
