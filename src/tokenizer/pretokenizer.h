// Pre-tokenizers of tokenizer.json (HF pre_tokenizers/*): Sequence, Split, ByteLevel, Metaspace,
// Digits, Whitespace, WhitespaceSplit, Punctuation, CharDelimiterSplit, BertPreTokenizer.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/json_fields.h"
#include "tokenizer/pattern.h"

namespace calq::tok {

// One piece of text on its way to the model.
struct PreToken {
  std::string text;
  // The piece starts at offset 0 of the original input (Metaspace prepend_scheme "first").
  bool at_origin = false;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces `pieces` by their sub-pieces; empty pieces are dropped (PreTokenizedString::split).
  // Throws FormatError when the pieces would grow beyond max_bytes in all.
  virtual void pre_tokenize(std::vector<PreToken>& pieces, size_t max_bytes) const = 0;
  virtual std::string describe() const = 0;
};

// Null JSON gives nullptr. Throws FormatError / UnsupportedError naming `at`.
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& j, const JPath& at);

// The GPT-2 pre-tokenization regex (ByteLevel use_regex: true), compiled once.
std::shared_ptr<const Regex> gpt2_regex();

// Maps every byte of `s` to its GPT-2 byte-level character.
std::string to_byte_level(std::string_view s);

}  // namespace calq::tok
