#include "tokenizer/pattern.h"

#include <oniguruma.h>

#include <algorithm>
#include <mutex>

#include "tokenizer/unicode.h"
#include "util/error.h"

namespace calq::tok {

namespace {

void init_oniguruma() {
  static std::once_flag once;
  std::call_once(once, [] {
    OnigEncoding encs[] = {ONIG_ENCODING_UTF8};
    onig_initialize(encs, 1);
  });
}

std::string onig_message(int code, OnigErrorInfo* info) {
  OnigUChar buf[ONIG_MAX_ERROR_MESSAGE_LEN];
  const int n = info ? onig_error_code_to_str(buf, code, info) : onig_error_code_to_str(buf, code);
  return std::string(reinterpret_cast<const char*>(buf), n > 0 ? size_t(n) : 0);
}

struct RegionGuard {
  OnigRegion* r = onig_region_new();
  ~RegionGuard() { onig_region_free(r, 1); }
};

}  // namespace

Regex::Regex(const std::string& pattern, const std::string& what) : pattern_(pattern) {
  init_oniguruma();
  if (!is_valid_utf8(pattern)) throw FormatError(what + ": regex is not valid UTF-8");
  OnigRegex re = nullptr;
  OnigErrorInfo info;
  const auto* p = reinterpret_cast<const OnigUChar*>(pattern.data());
  const int r = onig_new(&re, p, p + pattern.size(), ONIG_OPTION_NONE, ONIG_ENCODING_UTF8, OnigDefaultSyntax, &info);
  if (r != ONIG_NORMAL) throw FormatError(what + ": invalid regex '" + pattern.substr(0, 80) + "': " + onig_message(r, &info));
  re_ = re;
}

Regex::~Regex() {
  if (re_) onig_free(static_cast<OnigRegex>(re_));
}

void Regex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const {
  RegionGuard region;
  const auto* base = reinterpret_cast<const OnigUChar*>(text.data());
  const auto* end = base + text.size();
  size_t pos = 0;
  bool have_last = false;
  size_t last_match_end = 0;
  while (pos <= text.size()) {
    const int r = onig_search(static_cast<OnigRegex>(re_), base, end, base + pos, end, region.r, ONIG_OPTION_NONE);
    if (r == ONIG_MISMATCH) break;
    if (r < 0) throw Error("regex '" + pattern_.substr(0, 80) + "': " + onig_message(r, nullptr));
    const size_t s = size_t(region.r->beg[0]), e = size_t(region.r->end[0]);
    if (s == e && have_last && last_match_end == e) {
      // An empty match right after the previous match: step one character and retry.
      pos += pos < text.size() ? utf8_len(static_cast<unsigned char>(text[pos])) : 1;
      continue;
    }
    out.emplace_back(s, e);
    have_last = true;
    last_match_end = e;
    pos = e;
    if (s == e) pos += pos < text.size() ? utf8_len(static_cast<unsigned char>(text[pos])) : 1;
  }
}

std::string regex_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() * 2);
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80 && u > 0x20 && !((u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z')))
      out += '\\';
    out += c;
  }
  return out;
}

Pattern Pattern::regex(std::shared_ptr<const Regex> re, bool invert) {
  Pattern p;
  p.re_ = std::move(re);
  p.invert_ = invert;
  return p;
}

Pattern Pattern::predicate(CharPredicate pred, bool invert) {
  Pattern p;
  p.pred_ = pred;
  p.invert_ = invert;
  return p;
}

Pattern Pattern::single_char(char32_t c, bool invert) {
  Pattern p;
  p.ch_ = c;
  p.invert_ = invert;
  return p;
}

std::vector<Span> Pattern::find_matches(std::string_view text) const {
  std::vector<Span> spans;
  if (text.empty()) {
    spans.push_back({0, 0, invert_});
    return spans;
  }
  if (re_) {
    std::vector<std::pair<size_t, size_t>> m;
    re_->find_all(text, m);
    size_t prev = 0;
    for (auto [s, e] : m) {
      if (prev != s) spans.push_back({prev, s, false});
      spans.push_back({s, e, true});
      prev = e;
    }
    if (prev != text.size()) spans.push_back({prev, text.size(), false});
  } else {
    // Every matching character is a match of its own (HF's `impl Pattern for Fn(char) -> bool`).
    size_t last = 0, i = 0;
    while (i < text.size()) {
      const size_t b = i;
      const char32_t c = next_codepoint(text, i);
      if (pred_ ? pred_(c) : c == ch_) {
        if (last < b) spans.push_back({last, b, false});
        spans.push_back({b, i, true});
        last = i;
      }
    }
    if (last < text.size()) spans.push_back({last, text.size(), false});
  }
  if (invert_)
    for (auto& s : spans) s.is_match = !s.is_match;
  return spans;
}

std::string Pattern::describe() const {
  if (re_) return "/" + re_->pattern() + "/";
  if (pred_) return "<char class>";
  return std::string(1, '\'') + utf8_encode(ch_) + '\'';
}

void enforce_budget(size_t bytes, size_t max_bytes, const std::string& stage) {
  if (bytes > max_bytes)
    throw FormatError("tokenizer " + stage + ": output grows beyond " + std::to_string(max_bytes) +
                      " bytes (64x its input): the tokenizer.json expands text without bound");
}

bool parse_split_behavior(const std::string& name, SplitBehavior* out) {
  static const std::pair<const char*, SplitBehavior> names[] = {
      {"Removed", SplitBehavior::Removed},
      {"Isolated", SplitBehavior::Isolated},
      {"MergedWithPrevious", SplitBehavior::MergedWithPrevious},
      {"MergedWithNext", SplitBehavior::MergedWithNext},
      {"Contiguous", SplitBehavior::Contiguous}};
  for (auto& [n, b] : names)
    if (name == n) {
      *out = b;
      return true;
    }
  return false;
}

const char* split_behavior_name(SplitBehavior b) {
  switch (b) {
    case SplitBehavior::Removed: return "Removed";
    case SplitBehavior::Isolated: return "Isolated";
    case SplitBehavior::MergedWithPrevious: return "MergedWithPrevious";
    case SplitBehavior::MergedWithNext: return "MergedWithNext";
    case SplitBehavior::Contiguous: return "Contiguous";
  }
  return "?";
}

std::vector<std::pair<size_t, size_t>> split_ranges(const std::vector<Span>& spans, SplitBehavior behavior) {
  std::vector<std::pair<size_t, size_t>> out;
  out.reserve(spans.size());
  switch (behavior) {
    case SplitBehavior::Isolated:
      for (const auto& s : spans) out.emplace_back(s.start, s.end);
      break;
    case SplitBehavior::Removed:
      for (const auto& s : spans)
        if (!s.is_match) out.emplace_back(s.start, s.end);
      break;
    case SplitBehavior::Contiguous: {
      bool prev = false;
      for (const auto& s : spans) {
        if (s.is_match == prev && !out.empty())
          out.back().second = s.end;
        else
          out.emplace_back(s.start, s.end);
        prev = s.is_match;
      }
      break;
    }
    case SplitBehavior::MergedWithPrevious: {
      bool prev = false;
      for (const auto& s : spans) {
        if (s.is_match && !prev && !out.empty())
          out.back().second = s.end;
        else
          out.emplace_back(s.start, s.end);
        prev = s.is_match;
      }
      break;
    }
    case SplitBehavior::MergedWithNext: {
      bool prev = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !prev && !out.empty())
          out.back().first = it->start;
        else
          out.emplace_back(it->start, it->end);
        prev = it->is_match;
      }
      std::reverse(out.begin(), out.end());
      break;
    }
  }
  return out;
}

}  // namespace calq::tok
