// Splitting patterns of the Hugging Face `tokenizers` library (tokenizer/pattern.rs and
// NormalizedString::split): Oniguruma regexes (the engine HF uses, so `\s`, `\p{L}` and the
// tiktoken/Qwen patterns behave identically), literal strings and character predicates, and the
// five SplitDelimiterBehaviors.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace calq::tok {

// An Oniguruma regex (UTF-8, Oniguruma's default syntax), as HF's SysRegex.
class Regex {
 public:
  // Throws FormatError "<what>: invalid regex ..." when the pattern does not compile.
  Regex(const std::string& pattern, const std::string& what);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Successive non-overlapping matches [start, end) in byte offsets, with the onig crate's
  // find_iter rule for empty matches (never two matches ending at the same place).
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;
  const std::string& pattern() const { return pattern_; }

 private:
  void* re_ = nullptr;  // OnigRegex
  std::string pattern_;
};

// Escapes every ASCII punctuation character so that `s` matches literally (regex::escape).
std::string regex_escape(std::string_view s);

// One piece of a pattern's partition of a text.
struct Span {
  size_t start, end;
  bool is_match;
};

using CharPredicate = bool (*)(char32_t);

// HF Pattern: a regex (string patterns are escaped into one, as HF does) or a per-character test.
class Pattern {
 public:
  static Pattern regex(std::shared_ptr<const Regex> re, bool invert = false);
  static Pattern predicate(CharPredicate pred, bool invert = false);
  static Pattern single_char(char32_t c, bool invert = false);

  // Spans covering `text` in order; `is_match` marks the pattern's matches (HF find_matches;
  // an empty text gives one empty non-match span). `invert` flips is_match.
  std::vector<Span> find_matches(std::string_view text) const;
  std::string describe() const;

 private:
  std::shared_ptr<const Regex> re_;
  CharPredicate pred_ = nullptr;
  char32_t ch_ = 0;
  bool invert_ = false;
};

// Growth guard: a tokenizer.json can chain expanding steps (Replace "a" -> "aa" ten times, nested
// Sequences), so every pipeline stage works under a byte budget (kGrowth x its input + kSlack) and
// throws FormatError instead of exhausting memory.
constexpr size_t kGrowth = 64, kSlack = size_t(1) << 20;
inline size_t byte_budget(size_t input_bytes) { return kGrowth * input_bytes + kSlack; }
// Throws FormatError when `bytes` exceeds `max_bytes`; `stage` names the component.
void enforce_budget(size_t bytes, size_t max_bytes, const std::string& stage);

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// Parses "Removed", "Isolated", ... ; false when unknown.
bool parse_split_behavior(const std::string& name, SplitBehavior* out);
const char* split_behavior_name(SplitBehavior b);

// NormalizedString::split: the [start, end) ranges kept after applying `behavior` to `spans`.
// Empty ranges are kept here; callers drop them as PreTokenizedString::split does.
std::vector<std::pair<size_t, size_t>> split_ranges(const std::vector<Span>& spans, SplitBehavior behavior);

}  // namespace calq::tok
