// A calibration set: token ids [nsamples, seqlen] (+ an optional right-padding mask) and the
// manifest that says how it was drawn (builder, source sha256, seed, chosen documents/offsets,
// tokenizer hash, counts). This is the stable hand-off between the calibration builders
// (src/calib/builders.h, `calq calib build`) and everything that runs a model over calibration
// data (activation statistics, GPTQ/AWQ/SmoothQuant, the study).
//
// File format (safetensors, written atomically):
//   input_ids       I32 [n, T]
//   attention_mask  U8  [n, T]   only when some sample is padded; 1 = real token, 0 = padding.
//                                Padding is always on the right (each row is 1..1 0..0), so a
//                                causal forward over the whole row gives the real tokens exactly
//                                the outputs they would have alone; consumers skip masked rows.
//   __metadata__: "format" = "calq-calib-v1", "manifest" = the manifest as JSON text.
// The manifest always carries "token_sha256" = token_sha256(ids), checked on load.
#pragma once
#include <cstdint>
#include <string>

#include "tensor/tensor.h"
#include "util/json.h"

namespace calq {

struct CalibSet {
  Tensor ids;     // I32 [n, T]
  Tensor mask;    // U8 [n, T], or undefined when every position is a real token
  Json manifest;  // object; see docs/calibration.md for the fields each builder writes
  std::string path;  // the file it was read from ("" when built in memory), for messages

  int64_t nsamples() const { return ids.defined() ? ids.dim(0) : 0; }
  int64_t seqlen() const { return ids.defined() ? ids.dim(1) : 0; }
  bool padded() const { return mask.defined(); }
  // Row i of the ids (seqlen() entries).
  const int32_t* sample(int64_t i) const { return ids.data<int32_t>() + i * seqlen(); }
  // Number of real (unpadded) tokens in row i.
  int64_t valid_length(int64_t i) const;
  // Real tokens in the whole set.
  int64_t token_count() const;
  // The file, or "calibration set" for a set built in memory: how messages name it.
  std::string name() const { return path.empty() ? "calibration set" : path; }
};

// SHA-256 of the token tensor: the little-endian int32 bytes of `ids`, row-major. The identity
// of a set (`calq calib build` prints it; equal seeds give equal hashes).
std::string token_sha256(const Tensor& ids);

// Checks shapes/dtypes/mask layout; throws ArgError (FormatError when `what` names a file).
void validate_calib_set(const CalibSet& s, const std::string& what);

// Writes the set (sets manifest["token_sha256"], ["nsamples"], ["seqlen"]). Throws IoError.
void save_calib_set(const CalibSet& s, const std::string& path);
// Reads and validates a set written by save_calib_set. Throws IoError/FormatError naming the file.
CalibSet load_calib_set(const std::string& path);

// Refuses (ArgError naming the set's file) a set whose manifest "tokenizer_sha256" differs from the
// sha256 of `tokenizer_json` (the model's tokenizer.json): its ids, even when in range, mean other
// tokens. Nothing is checked when the manifest has no hash (random-token sets) or the file is absent.
void check_calib_tokenizer(const CalibSet& s, const std::string& tokenizer_json);

// Samples [begin, end) as a new set sharing storage (manifest copied, "range" added).
CalibSet slice_calib_set(const CalibSet& s, int64_t begin, int64_t end);

}  // namespace calq
