#include "tokenizer/normalizer.h"

#include <utf8proc.h>

#include <vector>

#include "tokenizer/unicode.h"

namespace calq::tok {

ReplaceRule::ReplaceRule(const Json& pattern, std::string content, const JPath& at) : content_(std::move(content)) {
  const JPath pat = at.child("pattern");
  require_object(pattern, pat);
  if (const Json* s = find_member(pattern, "String")) {
    if (!s->is_string()) pat.child("String").fail("expected a string");
    literal_ = s->get<std::string>();
    if (literal_.empty()) regex_ = std::make_shared<Regex>("", pat.where());
  } else if (const Json* r = find_member(pattern, "Regex")) {
    if (!r->is_string()) pat.child("Regex").fail("expected a string");
    regex_ = std::make_shared<Regex>(r->get<std::string>(), pat.where());
  } else {
    pat.fail("expected {\"String\": ...} or {\"Regex\": ...}");
  }
}

std::string ReplaceRule::apply(std::string_view s, size_t max_bytes) const {
  std::string out;
  if (!regex_) {
    size_t pos = 0;
    while (true) {
      const size_t hit = s.find(literal_, pos);
      if (hit == std::string_view::npos) break;
      out.append(s.data() + pos, hit - pos);
      out += content_;
      pos = hit + literal_.size();
      enforce_budget(out.size(), max_bytes, "Replace");
    }
    if (pos == 0) return std::string(s);
    out.append(s.data() + pos, s.size() - pos);
    enforce_budget(out.size(), max_bytes, "Replace");
    return out;
  }
  if (s.empty()) return std::string();
  std::vector<std::pair<size_t, size_t>> m;
  regex_->find_all(s, m);
  size_t prev = 0;
  for (auto [b, e] : m) {
    out.append(s.data() + prev, b - prev);
    out += content_;
    prev = e;
    enforce_budget(out.size(), max_bytes, "Replace");
  }
  out.append(s.data() + prev, s.size() - prev);
  enforce_budget(out.size(), max_bytes, "Replace");
  return out;
}

std::string ReplaceRule::describe() const {
  return "Replace(" + (regex_ ? "/" + regex_->pattern() + "/" : "'" + literal_ + "'") + " -> '" + content_ + "')";
}

namespace {

class SequenceNorm : public Normalizer {
 public:
  std::vector<std::unique_ptr<Normalizer>> items;
  void normalize(std::string& s, size_t max_bytes) const override {
    for (const auto& n : items) n->normalize(s, max_bytes);
  }
  std::string describe() const override {
    std::string d = "Sequence[";
    for (size_t i = 0; i < items.size(); ++i) d += (i ? ", " : "") + items[i]->describe();
    return d + "]";
  }
};

class PrependNorm : public Normalizer {
 public:
  std::string text;
  void normalize(std::string& s, size_t max_bytes) const override {
    if (!s.empty()) s.insert(0, text);  // HF: nothing is prepended to an empty string
    enforce_budget(s.size(), max_bytes, "Prepend");
  }
  std::string describe() const override { return "Prepend('" + text + "')"; }
};

class AppendNorm : public Normalizer {
 public:
  std::string text;
  void normalize(std::string& s, size_t max_bytes) const override {
    if (!s.empty()) s += text;
    enforce_budget(s.size(), max_bytes, "Append");
  }
  std::string describe() const override { return "Append('" + text + "')"; }
};

class ReplaceNorm : public Normalizer {
 public:
  explicit ReplaceNorm(ReplaceRule r) : rule(std::move(r)) {}
  ReplaceRule rule;
  void normalize(std::string& s, size_t max_bytes) const override { s = rule.apply(s, max_bytes); }
  std::string describe() const override { return rule.describe(); }
};

class UnicodeNorm : public Normalizer {
 public:
  NormForm form;
  std::string name;
  void normalize(std::string& s, size_t max_bytes) const override {
    s = normalize_unicode(s, form);
    enforce_budget(s.size(), max_bytes, name);
  }
  std::string describe() const override { return name; }
};

class LowercaseNorm : public Normalizer {
 public:
  void normalize(std::string& s, size_t max_bytes) const override {
    s = lowercase(s);
    enforce_budget(s.size(), max_bytes, "Lowercase");
  }
  std::string describe() const override { return "Lowercase"; }
};

class StripNorm : public Normalizer {
 public:
  bool left = true, right = true;
  void normalize(std::string& s, size_t max_bytes) const override {
    size_t b = 0, e = s.size();
    if (left) {
      b = s.size();
      for (size_t i = 0; i < s.size();) {
        const size_t at = i;
        if (!is_whitespace(next_codepoint(s, i))) {
          b = at;
          break;
        }
      }
    }
    if (right) {
      e = b;  // end of the last non-whitespace character
      for (size_t i = b; i < s.size();)
        if (!is_whitespace(next_codepoint(s, i))) e = i;
    }
    s = s.substr(b, e - b);
  }
  std::string describe() const override { return std::string("Strip(") + (left ? "left" : "") + (right ? " right" : "") + ")"; }
};

class StripAccentsNorm : public Normalizer {
 public:
  void normalize(std::string& s, size_t max_bytes) const override {
    std::string out;
    size_t i = 0;
    while (i < s.size()) {
      const char32_t c = next_codepoint(s, i);
      if (c >= 0x80 && utf8proc_category(utf8proc_int32_t(c)) == UTF8PROC_CATEGORY_MN) continue;
      append_utf8(out, c);
    }
    s = std::move(out);
  }
  std::string describe() const override { return "StripAccents"; }
};

class ByteLevelNorm : public Normalizer {
 public:
  void normalize(std::string& s, size_t max_bytes) const override {
    std::string out;
    out.reserve(s.size() * 2);
    for (unsigned char b : s) out += byte_to_char_utf8(b);
    s = std::move(out);
    enforce_budget(s.size(), max_bytes, "ByteLevel");
  }
  std::string describe() const override { return "ByteLevel"; }
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const Json& j, const JPath& at) {
  if (j.is_null()) return nullptr;
  const std::string type = get_string(j, "type", at);
  if (type == "Sequence") {
    auto seq = std::make_unique<SequenceNorm>();
    const Json& items = require_array(j, "normalizers", at);
    for (size_t i = 0; i < items.size(); ++i) {
      auto n = make_normalizer(items[i], at.child("normalizers").index(i));
      if (n) seq->items.push_back(std::move(n));
    }
    return seq;
  }
  if (type == "Prepend") {
    auto n = std::make_unique<PrependNorm>();
    n->text = get_string(j, "prepend", at);
    return n;
  }
  if (type == "Append") {
    auto n = std::make_unique<AppendNorm>();
    n->text = get_string(j, "append", at);
    return n;
  }
  if (type == "Replace")
    return std::make_unique<ReplaceNorm>(ReplaceRule(require(j, "pattern", at), get_string(j, "content", at), at));
  if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    auto n = std::make_unique<UnicodeNorm>();
    n->name = type;
    n->form = type == "NFC" ? NormForm::NFC : type == "NFD" ? NormForm::NFD : type == "NFKC" ? NormForm::NFKC : NormForm::NFKD;
    return n;
  }
  if (type == "Lowercase") return std::make_unique<LowercaseNorm>();
  if (type == "Strip") {
    auto n = std::make_unique<StripNorm>();
    n->left = get_bool_or(j, "strip_left", true, at);
    n->right = get_bool_or(j, "strip_right", true, at);
    return n;
  }
  if (type == "StripAccents") return std::make_unique<StripAccentsNorm>();
  if (type == "ByteLevel") return std::make_unique<ByteLevelNorm>();
  at.child("type").unsupported("normalizer '" + type + "' is not supported");
}

}  // namespace calq::tok
