// Encoding and decoding with a loaded tokenizer.json (HF TokenizerImpl::encode / decode).
#include "tokenizer/hf_tokenizer.h"

#include "tokenizer/unicode.h"

namespace calq::tok {

const std::string* HfTokenizer::token_ptr(int32_t id) const {
  if (const AddedToken* a = added_.by_id(id)) return &a->content;
  return model_->id_to_token(id);
}

std::optional<int32_t> HfTokenizer::token_to_id(std::string_view token) const {
  if (auto id = added_.token_to_id(token)) return id;
  return model_->token_to_id(token);
}

std::string HfTokenizer::id_to_token(int32_t id) const {
  const std::string* t = token_ptr(id);
  return t ? *t : std::string();
}

bool HfTokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size_ && special_[size_t(id)];
}

std::vector<int32_t> HfTokenizer::encode(std::string_view text, const EncodeOptions& opt) const {
  // HF takes &str: invalid UTF-8 cannot reach it. We repair it the way Rust's lossy decoding does.
  std::string repaired;
  if (!is_valid_utf8(text)) {
    repaired = utf8_lossy(text);
    text = repaired;
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<Segment> segments;
  added_.find(text, /*normalized_set=*/false, opt.split_special_tokens, segments);
  for (const Segment& s : segments) {
    if (s.id >= 0)
      ids.push_back(s.id);
    else
      encode_section(text.substr(s.start, s.end - s.start), s.start == 0, opt, ids);
  }
  if (opt.add_special_tokens && post_processor_) post_processor_->process(ids);
  return ids;
}

void HfTokenizer::encode_section(std::string_view raw, bool at_origin, const EncodeOptions& opt,
                                 std::vector<int32_t>& ids) const {
  std::string text(raw);
  if (normalizer_) normalizer_->normalize(text, byte_budget(raw.size()));
  if (text.empty()) return;
  if (!added_.has_normalized()) {
    encode_normalized(std::move(text), at_origin, ids);
    return;
  }
  std::vector<Segment> segments;
  added_.find(text, /*normalized_set=*/true, opt.split_special_tokens, segments);
  for (const Segment& s : segments) {
    if (s.id >= 0)
      ids.push_back(s.id);
    else
      encode_normalized(text.substr(s.start, s.end - s.start), at_origin && s.start == 0, ids);
  }
}

void HfTokenizer::encode_normalized(std::string text, bool at_origin, std::vector<int32_t>& ids) const {
  std::vector<PreToken> pieces;
  pieces.push_back({std::move(text), at_origin});
  if (pre_tokenizer_) pre_tokenizer_->pre_tokenize(pieces, byte_budget(pieces[0].text.size()));
  for (const auto& p : pieces) model_->tokenize(p.text, ids);
}

std::string HfTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    const std::string* t = token_ptr(id);
    if (!t) continue;  // unknown ids are dropped, as HF does
    if (skip_special_tokens && special_[size_t(id)]) continue;
    tokens.push_back(*t);
  }
  std::string out;
  if (decoder_) {
    size_t bytes = 0;
    for (const auto& t : tokens) bytes += t.size();
    decoder_->decode_chain(tokens, byte_budget(bytes));
    for (const auto& t : tokens) out += t;
  } else {
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
  }
  return out;
}

std::string HfTokenizer::summary() const {
  auto name = [&](int32_t id) { return id < 0 ? std::string("none") : std::to_string(id) + " '" + id_to_token(id) + "'"; };
  std::string s = source_ + "\n";
  s += "  model:          " + model_->describe() + "\n";
  s += "  vocab size:     " + std::to_string(vocab_size_) + " ids\n";
  s += "  normalizer:     " + (normalizer_ ? normalizer_->describe() : "none") + "\n";
  s += "  pre-tokenizer:  " + (pre_tokenizer_ ? pre_tokenizer_->describe() : "none") + "\n";
  s += "  post-processor: " + (post_processor_ ? post_processor_->describe() : "none") + "\n";
  s += "  decoder:        " + (decoder_ ? decoder_->describe() : "none (tokens joined by spaces)") + "\n";
  size_t n_special = 0;
  std::string specials;
  for (const auto& a : added_.tokens())
    if (added_.is_special_content(a.content)) {
      if (n_special < 8) specials += (n_special ? ", " : "") + a.content;
      ++n_special;
    }
  if (n_special > 8) specials += ", ...";
  s += "  added tokens:   " + std::to_string(added_.tokens().size()) + " (" + std::to_string(n_special) + " special" +
       (n_special ? ": " + specials : "") + ")\n";
  if (added_id_mismatches_)
    s += "  warning:        " + std::to_string(added_id_mismatches_) +
         " added token id(s) in the file differ from the ids HF assigns (HF's are used)\n";
  if (has_truncation_or_padding_) s += "  note:           truncation/padding settings are ignored\n";
  s += "  bos:            " + name(bos_) + "\n";
  s += "  eos:            " + name(eos_) + "\n";
  s += "  sha256:         " + sha256_;
  return s;
}

}  // namespace calq::tok
