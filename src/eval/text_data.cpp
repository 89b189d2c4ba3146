#include "eval/text_data.h"

#include "io/mapped_file.h"
#include "util/error.h"
#include "util/json.h"
#include "util/sha256.h"

namespace calq::eval {

namespace {

// Python's str.isspace() over ASCII: what `line.strip() == ""` tests for WikiText lines.
bool is_blank(const std::string& s) {
  for (char c : s)
    if (!(c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v')) return false;
  return true;
}

// Lines split after each '\n'; each keeps its '\n' (the last one may lack it).
template <class F>
void for_each_line(const std::string& s, F f) {
  size_t b = 0;
  while (b < s.size()) {
    size_t e = s.find('\n', b);
    e = e == std::string::npos ? s.size() : e + 1;
    f(s.substr(b, e - b));
    b = e;
  }
}

std::string strip_eol(std::string l) {
  while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.pop_back();
  return l;
}

}  // namespace

const char* text_mode_name(TextMode m) {
  switch (m) {
    case TextMode::Auto: return "auto";
    case TextMode::Raw: return "raw";
    case TextMode::HfRows: return "hf-rows";
    case TextMode::Jsonl: return "jsonl";
    case TextMode::Lines: return "lines";
  }
  return "?";
}

TextMode parse_text_mode(const std::string& s) {
  for (TextMode m : {TextMode::Auto, TextMode::Raw, TextMode::HfRows, TextMode::Jsonl, TextMode::Lines})
    if (s == text_mode_name(m)) return m;
  throw ArgError("unknown text mode '" + s + "' (expected auto, raw, hf-rows, jsonl or lines)");
}

TextMode resolve_text_mode(TextMode m, const std::string& path) {
  if (m != TextMode::Auto) return m;
  if (path.ends_with(".jsonl") || path.ends_with(".json")) return TextMode::Jsonl;
  if (path.ends_with(".devtest") || path.ends_with(".dev")) return TextMode::Lines;
  return TextMode::Raw;
}

std::string wikitext_hf_rows_text(const std::string& raw) {
  std::string out;
  bool first = true;
  for_each_line(raw, [&](const std::string& line) {
    if (!first) out += "\n\n";
    first = false;
    if (!is_blank(line)) out += line;
  });
  return out;
}

EvalText load_eval_text(const std::string& path, TextMode mode, const std::string& jsonl_field) {
  const std::string bytes = read_file(path);
  EvalText t;
  t.mode = resolve_text_mode(mode, path);
  t.file_sha256 = sha256_hex(bytes);
  if (bytes.empty()) throw ArgError(path + ": empty data file");
  switch (t.mode) {
    case TextMode::Raw:
      t.text = bytes;
      t.documents = 1;
      break;
    case TextMode::HfRows:
      t.text = wikitext_hf_rows_text(bytes);
      for_each_line(bytes, [&](const std::string&) { ++t.documents; });
      break;
    case TextMode::Jsonl: {
      size_t lineno = 0;
      for_each_line(bytes, [&](const std::string& raw_line) {
        ++lineno;
        const std::string line = strip_eol(raw_line);
        if (is_blank(line)) return;
        const std::string where = path + ":" + std::to_string(lineno);
        const Json j = parse_json(line, where);
        const std::string doc = json_get<std::string>(j, jsonl_field, where);
        if (t.documents++) t.text += "\n\n";
        t.text += doc;
      });
      break;
    }
    case TextMode::Lines:
      for_each_line(bytes, [&](const std::string& raw_line) {
        const std::string line = strip_eol(raw_line);
        if (line.empty()) return;
        if (t.documents++) t.text += "\n";
        t.text += line;
      });
      break;
    case TextMode::Auto: break;  // resolved above
  }
  if (is_blank(t.text)) throw ArgError(path + ": no text to evaluate (" + text_mode_name(t.mode) + " mode)");
  return t;
}

}  // namespace calq::eval
