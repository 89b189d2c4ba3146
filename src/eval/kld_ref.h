// The compact KL-divergence reference: instead of llama.cpp's full-vocabulary log-probability
// file (2 bytes × vocab per scored token: tens of GB for WikiText-2 and a 128K vocabulary), keep
// per scored token the reference model's top-k log-probabilities, the probability mass outside
// them, and the correct token's log-probability. File format (safetensors, docs/eval.md):
//   tokens          I32 [windows, ctx]   the windows exactly as fed to the model
//   topk_ids        I32 [N, k]           N = windows * (ctx - 1 - first_scored), window-major
//   topk_logprobs   F32|F16 [N, k]       log p of topk_ids, descending
//   tail_mass       F32 [N]              Σ p over the ids not in topk_ids (summed directly)
//   target_logprob  F32 [N]              log p of the token that actually follows
//   __metadata__    format "calq-kld-ref", format_version "1", identities and settings (KldRefMeta)
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "eval/windows.h"
#include "tensor/dtype.h"

namespace calq::eval {

struct KldRefMeta {
  std::string model, model_hash, model_arch;  // path, identity (eval/identity.h), architecture signature
  std::string tokenizer_sha256;
  std::string data, data_sha256, text_mode;
  std::string protocol;
  int64_t ctx = 0, first_scored = 0, k = 0, vocab_size = 0;
  std::string calq_version;
};

struct KldReference {
  KldRefMeta meta;
  int64_t windows = 0;
  std::vector<int32_t> tokens;          // [windows, ctx]
  std::vector<int32_t> topk_ids;        // [N, k]
  std::vector<float> topk_logprobs;     // [N, k]
  std::vector<float> tail_mass;         // [N]
  std::vector<float> target_logprob;    // [N]
  int64_t predictions() const { return int64_t(tail_mass.size()); }
  int64_t per_window() const { return meta.ctx - 1 - meta.first_scored; }
  // The windows as the scorer replays them.
  std::vector<Window> to_windows() const;
};

// Writes atomically. logprob_dtype: F32 (default) or F16 (half the size of that tensor; adds
// ~1e-3 relative rounding to each log-probability).
void write_kld_reference(const KldReference& r, const std::string& path, DType logprob_dtype = DType::F32);
// Reads and validates every shape, id range and probability; FormatError naming the file.
KldReference read_kld_reference(const std::string& path);

// Refuses a reference that does not belong to the model being scored: a different architecture
// signature (another model, not a quantized copy), a different tokenizer sha256 (when the model's
// tokenizer is known: tokenizer_sha256 non-empty), or, when data_path is given, different data.
// `ref_path` names the reference in the ArgError.
void check_reference_matches(const KldReference& ref, const std::string& ref_path, const std::string& model_arch,
                             const std::string& tokenizer_sha256, const std::string& data_path = "");

// The tensor bytes of a reference file (tokens, top-k ids and log-probabilities, tail mass, target
// log-probability; its JSON header adds about a kilobyte): said before a long run.
uint64_t kld_reference_bytes(int64_t windows, int64_t ctx, int64_t predictions, int64_t k, DType logprob_dtype);

// Bytes llama.cpp's --kl-divergence-base file takes for the same scored tokens: a header, the
// tokens, and per scored token 2 × (vocab rounded up to even) bytes of uint16 log-probabilities
// plus 8 bytes of scale/offset (examples/perplexity/perplexity.cpp).
uint64_t llamacpp_kld_base_bytes(int64_t windows, int64_t ctx, int64_t predictions, int64_t vocab);

}  // namespace calq::eval
