// The Tokenizer implementation for Hugging Face tokenizer.json files: the pipeline
//   added tokens (raw text) -> normalizer -> added tokens (normalized text) -> pre-tokenizer
//   -> BPE model -> post-processor
// and decode: id -> token (added tokens first), optional skipping of special tokens, decoder.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/postprocessor.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"

namespace calq::tok {

class HfTokenizer : public Tokenizer {
 public:
  // `json` is the parsed tokenizer.json; `source` names it in errors; `config` is the parsed
  // tokenizer_config.json beside it (or null).
  HfTokenizer(const Json& json, const std::string& source, const std::string& sha256, const Json& config);

  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& opt) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const override;
  int32_t vocab_size() const override { return vocab_size_; }
  std::optional<int32_t> token_to_id(std::string_view token) const override;
  std::string id_to_token(int32_t id) const override;
  bool is_special(int32_t id) const override;
  int32_t bos_id() const override { return bos_; }
  int32_t eos_id() const override { return eos_; }
  const std::string& sha256() const override { return sha256_; }
  std::string summary() const override;

 private:
  const std::string* token_ptr(int32_t id) const;
  // Normalizes, splits and tokenizes one piece of text between added tokens.
  void encode_section(std::string_view raw, bool at_origin, const EncodeOptions& opt, std::vector<int32_t>& ids) const;
  void encode_normalized(std::string text, bool at_origin, std::vector<int32_t>& ids) const;

  std::string source_, sha256_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<BpeModel> model_;
  AddedVocab added_;
  std::unique_ptr<PostProcessor> post_processor_;
  std::unique_ptr<Decoder> decoder_;
  int32_t vocab_size_ = 0;
  std::vector<uint8_t> special_;  // per id: its token string is a special added token's content
  int32_t bos_ = -1, eos_ = -1;
  int added_id_mismatches_ = 0;   // added tokens whose id in the file differs from HF's assignment
  bool has_truncation_or_padding_ = false;
};

}  // namespace calq::tok
