#include "tokenizer/pretokenizer.h"

#include "tokenizer/unicode.h"

namespace calq::tok {

std::shared_ptr<const Regex> gpt2_regex() {
  static const auto re = std::make_shared<const Regex>(
      R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)", "GPT-2 regex");
  return re;
}

std::string to_byte_level(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 2);
  for (unsigned char b : s) out += byte_to_char_utf8(b);
  return out;
}

namespace {

// Splits every piece by `pattern` with `behavior`, dropping empty results.
void split_pieces(std::vector<PreToken>& pieces, const Pattern& pattern, SplitBehavior behavior) {
  std::vector<PreToken> out;
  out.reserve(pieces.size());
  for (auto& p : pieces) {
    const auto ranges = split_ranges(pattern.find_matches(p.text), behavior);
    if (ranges.size() == 1 && ranges[0].first == 0 && ranges[0].second == p.text.size()) {
      if (!p.text.empty()) out.push_back(std::move(p));
      continue;
    }
    for (auto [b, e] : ranges)
      if (e > b) out.push_back({p.text.substr(b, e - b), p.at_origin && b == 0});
  }
  pieces = std::move(out);
}

class SequencePre : public PreTokenizer {
 public:
  std::vector<std::unique_ptr<PreTokenizer>> items;
  void pre_tokenize(std::vector<PreToken>& pieces, size_t max_bytes) const override {
    for (const auto& p : items) p->pre_tokenize(pieces, max_bytes);
  }
  std::string describe() const override {
    std::string d = "Sequence[";
    for (size_t i = 0; i < items.size(); ++i) d += (i ? ", " : "") + items[i]->describe();
    return d + "]";
  }
};

class SplitPre : public PreTokenizer {
 public:
  SplitPre(Pattern p, SplitBehavior b, std::string desc) : pattern(std::move(p)), behavior(b), desc(std::move(desc)) {}
  Pattern pattern;
  SplitBehavior behavior;
  std::string desc;
  void pre_tokenize(std::vector<PreToken>& pieces, size_t max_bytes) const override { split_pieces(pieces, pattern, behavior); }
  std::string describe() const override { return desc; }
};

class ByteLevelPre : public PreTokenizer {
 public:
  bool add_prefix_space = true, use_regex = true;
  void pre_tokenize(std::vector<PreToken>& pieces, size_t max_bytes) const override {
    if (add_prefix_space)
      for (auto& p : pieces)
        if (p.text.empty() || p.text[0] != ' ') p.text.insert(0, " ");
    if (use_regex) split_pieces(pieces, Pattern::regex(gpt2_regex()), SplitBehavior::Isolated);
    size_t total = 0;
    for (auto& p : pieces) {
      p.text = to_byte_level(p.text);
      enforce_budget(total += p.text.size(), max_bytes, "ByteLevel");
    }
  }
  std::string describe() const override {
    return std::string("ByteLevel(add_prefix_space=") + (add_prefix_space ? "true" : "false") +
           ", use_regex=" + (use_regex ? "true" : "false") + ")";
  }
};

enum class PrependScheme { First, Always, Never };

class MetaspacePre : public PreTokenizer {
 public:
  std::string replacement = "\xE2\x96\x81";  // ▁
  char32_t replacement_cp = 0x2581;
  PrependScheme scheme = PrependScheme::Always;
  bool split = true;
  void pre_tokenize(std::vector<PreToken>& pieces, size_t max_bytes) const override {
    size_t total = 0;
    for (auto& p : pieces) {
      std::string t;
      t.reserve(p.text.size() + 8);
      for (char c : p.text) {
        if (c == ' ')
          t += replacement;
        else
          t += c;
      }
      const bool starts = t.compare(0, replacement.size(), replacement) == 0;
      if (!starts && (scheme == PrependScheme::Always || (scheme == PrependScheme::First && p.at_origin)))
        t.insert(0, replacement);
      p.text = std::move(t);
      enforce_budget(total += p.text.size(), max_bytes, "Metaspace");
    }
    if (split) split_pieces(pieces, Pattern::single_char(replacement_cp), SplitBehavior::MergedWithNext);
  }
  std::string describe() const override {
    const char* s = scheme == PrependScheme::First ? "first" : scheme == PrependScheme::Always ? "always" : "never";
    return "Metaspace('" + replacement + "', prepend_scheme=" + s + ", split=" + (split ? "true" : "false") + ")";
  }
};

std::string single_char_field(const Json& j, const char* key, const std::string& fallback, const JPath& at,
                              char32_t* cp) {
  const std::string s = get_string_or(j, key, fallback, at);
  if (!is_valid_utf8(s) || s.empty()) at.child(key).fail("expected a single character");
  size_t i = 0;
  *cp = next_codepoint(s, i);
  if (i != s.size()) at.child(key).fail("expected a single character, got '" + s + "'");
  return s;
}

std::unique_ptr<PreTokenizer> make_split(const Json& j, const JPath& at) {
  const JPath pat = at.child("pattern");
  const Json& pj = require(j, "pattern", at);
  require_object(pj, pat);
  std::shared_ptr<const Regex> re;
  std::string desc;
  if (const Json* s = find_member(pj, "String")) {
    if (!s->is_string()) pat.child("String").fail("expected a string");
    re = std::make_shared<const Regex>(regex_escape(s->get<std::string>()), pat.where());
    desc = "'" + s->get<std::string>() + "'";
  } else if (const Json* r = find_member(pj, "Regex")) {
    if (!r->is_string()) pat.child("Regex").fail("expected a string");
    re = std::make_shared<const Regex>(r->get<std::string>(), pat.where());
    desc = "/" + r->get<std::string>() + "/";
  } else {
    pat.fail("expected {\"String\": ...} or {\"Regex\": ...}");
  }
  SplitBehavior b;
  const std::string bname = get_string(j, "behavior", at);
  if (!parse_split_behavior(bname, &b)) at.child("behavior").fail("unknown split behavior '" + bname + "'");
  const bool invert = get_bool_or(j, "invert", false, at);
  return std::make_unique<SplitPre>(Pattern::regex(re, invert), b,
                                    "Split(" + desc + ", " + bname + (invert ? ", invert" : "") + ")");
}

// HF Whitespace: the regex \w+|[^\w\s]+ inverted, matches removed.
std::shared_ptr<const Regex> whitespace_regex() {
  static const auto re = std::make_shared<const Regex>(R"(\w+|[^\w\s]+)", "Whitespace regex");
  return re;
}

class BertPre : public PreTokenizer {
 public:
  void pre_tokenize(std::vector<PreToken>& pieces, size_t max_bytes) const override {
    split_pieces(pieces, Pattern::predicate(is_whitespace), SplitBehavior::Removed);
    split_pieces(pieces, Pattern::predicate(is_punctuation), SplitBehavior::Isolated);
  }
  std::string describe() const override { return "BertPreTokenizer"; }
};

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& j, const JPath& at) {
  if (j.is_null()) return nullptr;
  const std::string type = get_string(j, "type", at);
  if (type == "Sequence") {
    auto seq = std::make_unique<SequencePre>();
    const Json& items = require_array(j, "pretokenizers", at);
    for (size_t i = 0; i < items.size(); ++i) {
      auto p = make_pre_tokenizer(items[i], at.child("pretokenizers").index(i));
      if (p) seq->items.push_back(std::move(p));
    }
    return seq;
  }
  if (type == "Split") return make_split(j, at);
  if (type == "ByteLevel") {
    auto p = std::make_unique<ByteLevelPre>();
    p->add_prefix_space = get_bool_or(j, "add_prefix_space", true, at);
    p->use_regex = get_bool_or(j, "use_regex", true, at);
    return p;
  }
  if (type == "Metaspace") {
    auto p = std::make_unique<MetaspacePre>();
    p->replacement = single_char_field(j, "replacement", "\xE2\x96\x81", at, &p->replacement_cp);
    if (const Json* s = find_member(j, "prepend_scheme")) {
      const std::string v = s->is_string() ? s->get<std::string>() : "";
      if (v == "first") p->scheme = PrependScheme::First;
      else if (v == "always") p->scheme = PrependScheme::Always;
      else if (v == "never") p->scheme = PrependScheme::Never;
      else at.child("prepend_scheme").fail("expected \"first\", \"always\" or \"never\"");
    } else {
      p->scheme = get_bool_or(j, "add_prefix_space", true, at) ? PrependScheme::Always : PrependScheme::Never;
    }
    p->split = get_bool_or(j, "split", true, at);
    return p;
  }
  if (type == "Digits") {
    const bool individual = get_bool_or(j, "individual_digits", false, at);
    return std::make_unique<SplitPre>(Pattern::predicate(is_numeric),
                                      individual ? SplitBehavior::Isolated : SplitBehavior::Contiguous,
                                      std::string("Digits(individual=") + (individual ? "true" : "false") + ")");
  }
  if (type == "Whitespace")
    return std::make_unique<SplitPre>(Pattern::regex(whitespace_regex(), true), SplitBehavior::Removed, "Whitespace");
  if (type == "WhitespaceSplit")
    return std::make_unique<SplitPre>(Pattern::predicate(is_whitespace), SplitBehavior::Removed, "WhitespaceSplit");
  if (type == "Punctuation") {
    SplitBehavior b = SplitBehavior::Isolated;
    const std::string bname = get_string_or(j, "behavior", "Isolated", at);
    if (!parse_split_behavior(bname, &b)) at.child("behavior").fail("unknown split behavior '" + bname + "'");
    return std::make_unique<SplitPre>(Pattern::predicate(is_punctuation), b, "Punctuation(" + bname + ")");
  }
  if (type == "CharDelimiterSplit") {
    char32_t cp;
    const std::string d = single_char_field(j, "delimiter", "", at, &cp);
    return std::make_unique<SplitPre>(Pattern::single_char(cp), SplitBehavior::Removed, "CharDelimiterSplit('" + d + "')");
  }
  if (type == "BertPreTokenizer") return std::make_unique<BertPre>();
  at.child("type").unsupported("pre-tokenizer '" + type + "' is not supported");
}

}  // namespace calq::tok
