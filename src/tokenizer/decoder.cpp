#include "tokenizer/decoder.h"

#include "tokenizer/normalizer.h"
#include "tokenizer/unicode.h"

namespace calq::tok {

namespace {

class SequenceDec : public Decoder {
 public:
  std::vector<std::unique_ptr<Decoder>> items;
  void decode_chain(std::vector<std::string>& tokens, size_t max_bytes) const override {
    for (const auto& d : items) d->decode_chain(tokens, max_bytes);
  }
  std::string describe() const override {
    std::string d = "Sequence[";
    for (size_t i = 0; i < items.size(); ++i) d += (i ? ", " : "") + items[i]->describe();
    return d + "]";
  }
};

// Maps byte-level characters back to bytes (a token with any other character is kept as its
// UTF-8), then decodes the bytes of all tokens at once, replacing invalid UTF-8 with U+FFFD.
class ByteLevelDec : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens, size_t max_bytes) const override {
    std::string bytes;
    for (const auto& t : tokens) {
      const size_t mark = bytes.size();
      bool ok = true;
      for (size_t i = 0; i < t.size();) {
        const int b = char_to_byte(next_codepoint(t, i));
        if (b < 0) {
          ok = false;
          break;
        }
        bytes += char(b);
      }
      if (!ok) {
        bytes.resize(mark);
        bytes += t;
      }
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
  std::string describe() const override { return "ByteLevel"; }
};

class ReplaceDec : public Decoder {
 public:
  explicit ReplaceDec(ReplaceRule r) : rule(std::move(r)) {}
  ReplaceRule rule;
  void decode_chain(std::vector<std::string>& tokens, size_t max_bytes) const override {
    size_t total = 0;
    for (auto& t : tokens) {
      t = rule.apply(t, max_bytes);
      enforce_budget(total += t.size(), max_bytes, "Replace");
    }
  }
  std::string describe() const override { return rule.describe(); }
};

// <0xNN> tokens are collected into bytes; each run becomes its UTF-8 text, or one U+FFFD per
// byte when the run is not valid UTF-8.
class ByteFallbackDec : public Decoder {
 public:
  static int parse_byte(const std::string& t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
    // Rust u8::from_str_radix(.., 16): hex digits with an optional leading '+'.
    int v = 0;
    for (size_t i = 3; i < 5; ++i) {
      const char c = t[i];
      int d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else if (c == '+' && i == 3) continue;
      else return -1;
      v = v * 16 + d;
    }
    return v;
  }
  void decode_chain(std::vector<std::string>& tokens, size_t max_bytes) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (is_valid_utf8(pending))
        out.push_back(pending);
      else
        for (size_t k = 0; k < pending.size(); ++k) out.emplace_back("\xEF\xBF\xBD");
      pending.clear();
    };
    for (auto& t : tokens) {
      const int b = parse_byte(t);
      if (b >= 0) {
        pending += char(b);
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }
  std::string describe() const override { return "ByteFallback"; }
};

class FuseDec : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens, size_t max_bytes) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
  std::string describe() const override { return "Fuse"; }
};

// Removes up to `start` leading and `stop` trailing occurrences of `content` from every token.
class StripDec : public Decoder {
 public:
  char32_t content = ' ';
  std::string content_utf8 = " ";
  size_t start = 0, stop = 0;
  void decode_chain(std::vector<std::string>& tokens, size_t max_bytes) const override {
    for (auto& t : tokens) {
      std::vector<size_t> bounds;  // byte offset of each character, plus the end
      std::vector<char32_t> chars;
      for (size_t i = 0; i < t.size();) {
        bounds.push_back(i);
        chars.push_back(next_codepoint(t, i));
      }
      bounds.push_back(t.size());
      size_t cut_start = 0;
      for (size_t i = 0; i < start && i < chars.size() && chars[i] == content; ++i) cut_start = i + 1;
      size_t cut_stop = chars.size();
      for (size_t i = 0; i < stop && i < chars.size() && chars[chars.size() - 1 - i] == content; ++i)
        cut_stop = chars.size() - 1 - i;
      if (cut_stop < cut_start) cut_stop = cut_start;
      t = t.substr(bounds[cut_start], bounds[cut_stop] - bounds[cut_start]);
    }
  }
  std::string describe() const override {
    return "Strip('" + content_utf8 + "', " + std::to_string(start) + ", " + std::to_string(stop) + ")";
  }
};

// Replacement character -> space; in the first token it is dropped unless prepend_scheme is never.
class MetaspaceDec : public Decoder {
 public:
  char32_t replacement = 0x2581;
  bool prepend = true;
  void decode_chain(std::vector<std::string>& tokens, size_t max_bytes) const override {
    for (size_t k = 0; k < tokens.size(); ++k) {
      std::string out;
      const std::string& t = tokens[k];
      for (size_t i = 0; i < t.size();) {
        const char32_t c = next_codepoint(t, i);
        if (c == replacement) {
          if (!(k == 0 && prepend)) out += ' ';
        } else {
          append_utf8(out, c);
        }
      }
      tokens[k] = std::move(out);
    }
  }
  std::string describe() const override { return std::string("Metaspace(prepend=") + (prepend ? "true" : "false") + ")"; }
};

// BPEDecoder: the end-of-word suffix becomes a space (nothing in the last token).
class BpeDec : public Decoder {
 public:
  std::string suffix = "</w>";
  void decode_chain(std::vector<std::string>& tokens, size_t max_bytes) const override {
    if (suffix.empty()) return;
    for (size_t k = 0; k < tokens.size(); ++k) {
      const std::string rep = k + 1 == tokens.size() ? "" : " ";
      std::string& t = tokens[k];
      std::string out;
      size_t pos = 0;
      for (size_t hit; (hit = t.find(suffix, pos)) != std::string::npos; pos = hit + suffix.size())
        out.append(t, pos, hit - pos).append(rep);
      out.append(t, pos, std::string::npos);
      t = std::move(out);
    }
  }
  std::string describe() const override { return "BPEDecoder('" + suffix + "')"; }
};

char32_t single_char(const std::string& s, const JPath& at) {
  size_t i = 0;
  if (s.empty() || !is_valid_utf8(s)) at.fail("expected a single character");
  const char32_t c = next_codepoint(s, i);
  if (i != s.size()) at.fail("expected a single character, got '" + s + "'");
  return c;
}

}  // namespace

std::unique_ptr<Decoder> make_decoder(const Json& j, const JPath& at) {
  if (j.is_null()) return nullptr;
  const std::string type = get_string(j, "type", at);
  if (type == "Sequence") {
    auto seq = std::make_unique<SequenceDec>();
    const Json& items = require_array(j, "decoders", at);
    for (size_t i = 0; i < items.size(); ++i) {
      auto d = make_decoder(items[i], at.child("decoders").index(i));
      if (d) seq->items.push_back(std::move(d));
    }
    return seq;
  }
  if (type == "ByteLevel") return std::make_unique<ByteLevelDec>();
  if (type == "Replace")
    return std::make_unique<ReplaceDec>(ReplaceRule(require(j, "pattern", at), get_string(j, "content", at), at));
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDec>();
  if (type == "Fuse") return std::make_unique<FuseDec>();
  if (type == "Strip") {
    auto d = std::make_unique<StripDec>();
    d->content_utf8 = get_string_or(j, "content", " ", at);
    d->content = single_char(d->content_utf8, at.child("content"));
    d->start = size_t(get_int_or(j, "start", 0, 0, 1 << 30, at));
    d->stop = size_t(get_int_or(j, "stop", 0, 0, 1 << 30, at));
    return d;
  }
  if (type == "Metaspace") {
    auto d = std::make_unique<MetaspaceDec>();
    d->replacement = single_char(get_string_or(j, "replacement", "\xE2\x96\x81", at), at.child("replacement"));
    if (const Json* s = find_member(j, "prepend_scheme")) {
      const std::string v = s->is_string() ? s->get<std::string>() : "";
      if (v != "first" && v != "always" && v != "never")
        at.child("prepend_scheme").fail("expected \"first\", \"always\" or \"never\"");
      d->prepend = v != "never";
    } else {
      d->prepend = get_bool_or(j, "add_prefix_space", true, at);
    }
    return d;
  }
  if (type == "BPEDecoder") {
    auto d = std::make_unique<BpeDec>();
    d->suffix = get_string_or(j, "suffix", "</w>", at);
    return d;
  }
  at.child("type").unsupported("decoder '" + type + "' is not supported");
}

}  // namespace calq::tok
