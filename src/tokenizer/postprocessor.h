// Post-processors of tokenizer.json (HF processors/*), for a single sequence: TemplateProcessing
// (its "single" template), RobertaProcessing/BertProcessing (cls $A sep), ByteLevel (no-op for
// ids) and Sequence.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/json_fields.h"

namespace calq::tok {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Applies the single-sequence template (only called with add_special_tokens = true).
  virtual void process(std::vector<int32_t>& ids) const = 0;
  // Special ids put before / after the sequence (first / last of them), or -1.
  virtual int32_t prefix_id() const { return -1; }
  virtual int32_t suffix_id() const { return -1; }
  virtual std::string describe() const = 0;
};

// Null JSON gives nullptr. Special-token ids must lie in [0, id_limit).
std::unique_ptr<PostProcessor> make_post_processor(const Json& j, const JPath& at, int32_t id_limit);

}  // namespace calq::tok
