#include "eval/task_data.h"

#include <utf8proc.h>

#include "io/checkpoint.h"
#include "io/mapped_file.h"
#include "util/error.h"
#include "util/json.h"
#include "util/sha256.h"

namespace calq::eval {

namespace {

std::string py_strip(const std::string& s) {
  const char* ws = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// " " + s (written out: GCC 12 warns falsely on operator+(const char*, string&&)).
std::string spaced(const std::string& s) {
  std::string out = " ";
  return out.append(s);
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to) {
  std::string out;
  size_t i = 0;
  while (true) {
    const size_t j = s.find(from, i);
    if (j == std::string::npos) break;
    out.append(s, i, j - i).append(to);
    i = j + from.size();
  }
  return out.append(s, i, std::string::npos);
}

// re.sub(r"\[.*?\]", "", s): '.' does not match a newline.
std::string drop_brackets(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '[') {
      size_t j = i + 1;
      while (j < s.size() && s[j] != ']' && s[j] != '\n') ++j;
      if (j < s.size() && s[j] == ']') {
        i = j;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

// Field access with errors naming file:line and the field.
struct Rec {
  const Json& j;
  std::string where;
  std::string str(const char* key) const { return json_get<std::string>(j, key, where); }
  std::vector<std::string> strs(const char* key) const {
    auto v = json_get<std::vector<std::string>>(j, key, where);
    if (v.size() < 2) throw FormatError(where + ": field '" + std::string(key) + "' needs at least two entries");
    return v;
  }
  // An integer label, also accepted as a numeric string (HellaSwag's HF schema has "label": "3").
  int label(const char* key, size_t n_choices) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) throw FormatError(where + ": missing field '" + std::string(key) + "'");
    long long v = -1;
    if (it->is_number()) {
      v = json_int<FormatError>(*it, key, where, INT32_MIN, INT32_MAX);  // 2.0, 1e9: not labels
    } else if (it->is_string()) {
      const std::string s = it->get<std::string>();
      if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos)
        throw FormatError(where + ": field '" + std::string(key) + "' is not an integer label ('" + s.substr(0, 40) + "')");
      v = std::stoll(s);  // at most 9 digits: cannot overflow
    } else {
      throw FormatError(where + ": field '" + std::string(key) + "' is not an integer label");
    }
    if (v < 0 || v >= (long long)n_choices)
      throw FormatError(where + ": label " + std::string(key) + " = " + std::to_string(v) + " is out of range for " +
                        std::to_string(n_choices) + " choices");
    return int(v);
  }
};

TaskDoc question_doc(const Rec& r) {  // ARC, PIQA
  std::string q = r.str("query");
  if (!q.empty() && q.back() == '\n') q.pop_back();
  const std::string context = q + "\nAnswer:";
  TaskDoc d;
  for (const std::string& c : r.strs("choices")) d.choices.push_back({context, spaced(c), double(utf8_length(c))});
  d.gold = r.label("gold", d.choices.size());
  return d;
}

TaskDoc hellaswag_doc(const Rec& r) {
  const std::string ctx = r.str("ctx_a") + " " + py_capitalize(r.str("ctx_b"));
  const std::string context = hellaswag_preprocess(r.str("activity_label") + ": " + ctx);
  TaskDoc d;
  for (const std::string& e : r.strs("endings")) {
    const std::string c = hellaswag_preprocess(e);
    d.choices.push_back({context, spaced(c), double(utf8_length(c))});
  }
  d.gold = r.label("label", d.choices.size());
  return d;
}

TaskDoc winogrande_doc(const Rec& r) {
  const std::string cont = spaced(r.str("continuation"));
  TaskDoc d;
  for (const std::string& c : r.strs("context_options")) d.choices.push_back({c, cont, double(utf8_length(c))});
  d.gold = r.label("gold", d.choices.size());
  return d;
}

TaskDoc lambada_doc(const Rec& r) {
  TaskDoc d;
  const std::string word = r.str("continuation");
  d.choices.push_back({r.str("context"), spaced(word), double(utf8_length(word))});
  if (word.empty()) throw FormatError(r.where + ": field 'continuation' is empty");
  d.gold = 0;
  return d;
}

}  // namespace

const std::vector<std::string>& known_tasks() {
  static const std::vector<std::string> t = {"arc_challenge", "arc_easy", "piqa", "hellaswag", "winogrande", "lambada"};
  return t;
}

std::string canonical_task_name(const std::string& name) {
  if (name == "lambada_openai") return "lambada";
  for (const auto& t : known_tasks())
    if (t == name) return t;
  std::string all;
  for (const auto& t : known_tasks()) all += (all.empty() ? "" : ", ") + t;
  throw ArgError("unknown task '" + name + "' (known: " + all + ")");
}

std::string task_file_name(const std::string& t) {
  if (t == "hellaswag") return "hellaswag_val_1000.jsonl";
  if (t == "lambada") return "lambada_openai.jsonl";
  return t + ".jsonl";
}

TaskData load_task(const std::string& name, const std::string& dir, int64_t limit) {
  TaskData td;
  td.name = canonical_task_name(name);
  td.file = path_join(dir, task_file_name(td.name));
  td.kind = td.name == "winogrande" ? TaskKind::Partial
            : td.name == "lambada"  ? TaskKind::LastWord
                                    : TaskKind::MultipleChoice;
  const std::string bytes = read_file(td.file);
  td.file_sha256 = sha256_hex(bytes);
  int64_t lineno = 0;
  size_t b = 0;
  while (b < bytes.size() && (limit <= 0 || int64_t(td.docs.size()) < limit)) {
    size_t e = bytes.find('\n', b);
    if (e == std::string::npos) e = bytes.size();
    const std::string line = bytes.substr(b, e - b);
    b = e + 1;
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = td.file + ":" + std::to_string(lineno);
    const Json j = parse_json(line, where);
    if (!j.is_object()) throw FormatError(where + ": expected a JSON object");
    const Rec r{j, where};
    TaskDoc d;
    try {
      d = td.name == "hellaswag"    ? hellaswag_doc(r)
          : td.name == "winogrande" ? winogrande_doc(r)
          : td.name == "lambada"    ? lambada_doc(r)
                                    : question_doc(r);
    } catch (const ConfigError& e) {  // json_get's missing/mistyped field: a malformed task file
      throw FormatError(e.what());
    }
    d.line = lineno;
    td.docs.push_back(std::move(d));
  }
  if (td.docs.empty()) throw FormatError(td.file + ": no documents");
  return td;
}

std::string py_capitalize(const std::string& s) {
  std::string out;
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  utf8proc_ssize_t i = 0, n = utf8proc_ssize_t(s.size());
  bool first = true;
  while (i < n) {
    utf8proc_int32_t cp;
    const utf8proc_ssize_t len = utf8proc_iterate(p + i, n - i, &cp);
    if (len <= 0) {  // invalid UTF-8: keep the byte as is
      out.push_back(s[size_t(i)]);
      ++i;
      first = false;
      continue;
    }
    cp = first ? utf8proc_totitle(cp) : utf8proc_tolower(cp);
    utf8proc_uint8_t buf[4];
    out.append(reinterpret_cast<char*>(buf), size_t(utf8proc_encode_char(cp, buf)));
    i += len;
    first = false;
  }
  return out;
}

std::string hellaswag_preprocess(const std::string& s) {
  std::string t = py_strip(s);
  t = replace_all(t, " [title]", ". ");
  t = drop_brackets(t);
  return replace_all(t, "  ", " ");
}

int64_t utf8_length(const std::string& s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace calq::eval
