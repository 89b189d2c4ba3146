// Decoders of tokenizer.json (HF decoders/*): ByteLevel, Replace, ByteFallback, Fuse, Strip,
// Metaspace, BPEDecoder and Sequence. Each rewrites the list of token strings (decode_chain);
// the decoded text is their concatenation.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/json_fields.h"

namespace calq::tok {

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Throws FormatError when the tokens would grow beyond max_bytes in all.
  virtual void decode_chain(std::vector<std::string>& tokens, size_t max_bytes) const = 0;
  virtual std::string describe() const = 0;
};

// Null JSON gives nullptr (the tokenizer then joins tokens with spaces, as HF does).
std::unique_ptr<Decoder> make_decoder(const Json& j, const JPath& at);

}  // namespace calq::tok
