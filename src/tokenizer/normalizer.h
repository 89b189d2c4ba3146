// Normalizers of tokenizer.json (HF normalizers/*): Sequence, Prepend, Append, Replace (string or
// regex pattern), NFC/NFD/NFKC/NFKD, Lowercase, Strip, StripAccents, ByteLevel.
#pragma once
#include <memory>
#include <string>

#include "tokenizer/json_fields.h"
#include "tokenizer/pattern.h"

namespace calq::tok {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Throws FormatError when the text would grow beyond max_bytes.
  virtual void normalize(std::string& s, size_t max_bytes) const = 0;
  virtual std::string describe() const = 0;
};

// Builds the normalizer described by `j` (null JSON gives nullptr). Throws FormatError /
// UnsupportedError naming `at`.
std::unique_ptr<Normalizer> make_normalizer(const Json& j, const JPath& at);

// The Replace rule shared by the Replace normalizer and decoder: every match of a literal string
// (HF escapes it into a regex) or of a regex is replaced by `content`.
class ReplaceRule {
 public:
  // `pattern` is {"String": "..."} or {"Regex": "..."}.
  ReplaceRule(const Json& pattern, std::string content, const JPath& at);
  std::string apply(std::string_view s, size_t max_bytes) const;
  std::string describe() const;

 private:
  std::string literal_;                 // non-empty String pattern: plain substring search
  std::shared_ptr<const Regex> regex_;  // Regex pattern (or an empty String pattern)
  std::string content_;
};

}  // namespace calq::tok
