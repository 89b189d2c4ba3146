// Tokenizer loaded from a Hugging Face tokenizer.json (the `tokenizers` library format):
// normalizer, pre-tokenizer, BPE model (byte-level or SentencePiece-style with byte_fallback),
// added/special tokens, post-processor (BOS/EOS templates) and decoder.
// encode() gives exactly the ids the Rust `tokenizers` library gives.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace calq {

struct EncodeOptions {
  bool add_special_tokens = true;     // apply the post-processor template (e.g. prepend BOS)
  bool split_special_tokens = false;  // do not match *special* added tokens in the text
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Parses a tokenizer.json file. Throws IoError/FormatError/UnsupportedError naming the file.
  static std::unique_ptr<Tokenizer> from_file(const std::string& tokenizer_json);
  // Parses tokenizer.json text; `what` names the source in errors (libFuzzer entry point).
  static std::unique_ptr<Tokenizer> from_json_text(const std::string& text, const std::string& what);
  // The same with the text of a tokenizer_config.json (its eos_token names EOS), e.g. rebuilt from
  // a GGUF file's metadata.
  static std::unique_ptr<Tokenizer> from_json_text(const std::string& text, const std::string& what,
                                                   const std::string& config_text);
  // A model folder (its tokenizer.json) or a path to a tokenizer.json file.
  static std::unique_ptr<Tokenizer> from_path(const std::string& path);

  virtual std::vector<int32_t> encode(std::string_view text, const EncodeOptions& opt = {}) const = 0;
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const = 0;

  // Number of ids (model vocabulary plus added tokens); ids are in [0, vocab_size()).
  virtual int32_t vocab_size() const = 0;
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  virtual std::string id_to_token(int32_t id) const = 0;  // "" when out of range
  virtual bool is_special(int32_t id) const = 0;
  // BOS the post-processor prepends (or -1), EOS (or -1).
  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;
  // SHA-256 of the tokenizer.json bytes: the tokenizer's identity in manifests.
  virtual const std::string& sha256() const = 0;
  // One-paragraph human summary (model type, vocab size, normalizer, pre-tokenizer, specials).
  virtual std::string summary() const = 0;
};

}  // namespace calq
