#include "calib/sources.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "util/error.h"
#include "util/json.h"
#include "util/sha256.h"

namespace calq {

namespace fs = std::filesystem;

namespace {

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw IoError(path + ": no such file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw IoError(path + ": read error");
  return ss.str();
}

bool blank(const std::string& line) {
  return std::all_of(line.begin(), line.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> r;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = text.find('\n', i);
    if (j == std::string::npos) j = text.size();
    r.push_back(text.substr(i, j - i));
    i = j + 1;
  }
  return r;
}

// A WikiText top-level heading: " = Title = " (not " = = Section = = ").
bool wikitext_title(const std::string& l) {
  return l.size() > 6 && l.compare(0, 3, " = ") == 0 && l.compare(0, 5, " = = ") != 0 && l.ends_with(" = ");
}

std::string rtrim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\t' || s.back() == '\r')) s.pop_back();
  return s;
}

void require_nonempty(const TextSource& s) {
  if (s.docs.empty()) throw ArgError(s.path + ": the source is empty (no " + s.description + " found)");
}

std::vector<std::string> list_dir(const std::string& dir, const std::string& suffix) {
  std::vector<std::string> r;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.ends_with(suffix)) r.push_back(n.substr(0, n.size() - suffix.size()));
  }
  std::sort(r.begin(), r.end());
  return r;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s.empty() ? "none" : s;
}

}  // namespace

TextSource read_text_source(const std::string& path, const std::string& field, const std::string& split0) {
  TextSource s;
  s.path = path;
  const std::string text = read_file(path);
  s.sha256 = sha256_hex(text);
  std::string split = split0;
  const bool jsonl = path.ends_with(".jsonl");
  if (split == "auto") split = jsonl ? "jsonl" : path.ends_with(".raw") ? "wikitext" : "blank";
  const auto lines = lines_of(text);
  if (split == "jsonl") {
    s.description = "jsonl field '" + field + "'";
    for (size_t i = 0; i < lines.size(); ++i) {
      if (blank(lines[i])) continue;
      const std::string at = path + ":" + std::to_string(i + 1);
      const Json j = parse_json(lines[i], at);
      auto it = j.is_object() ? j.find(field) : j.end();
      if (it == j.end() || !it->is_string()) throw FormatError(at + ": no string field '" + field + "'");
      if (!it->get<std::string>().empty()) s.docs.push_back(it->get<std::string>());
    }
  } else if (split == "blank" || split == "wikitext") {
    s.description = split == "blank" ? "blank-line separated paragraphs" : "WikiText articles";
    std::string cur;
    auto flush = [&] {
      if (!rtrim(cur).empty()) s.docs.push_back(cur);
      cur.clear();
    };
    for (const auto& l : lines) {
      if (split == "blank" ? blank(l) : wikitext_title(l)) {
        flush();
        if (split == "blank") continue;
      }
      cur += l + "\n";
    }
    flush();
  } else if (split == "line") {
    s.description = "non-empty lines";
    for (const auto& l : lines)
      if (!blank(l)) s.docs.push_back(l);
  } else if (split == "file") {
    s.description = "whole file";
    if (!text.empty()) s.docs.push_back(text);
  } else {
    throw ArgError("unknown document split '" + split0 + "' (auto, blank, line, file, wikitext)");
  }
  require_nonempty(s);
  return s;
}

std::vector<std::string> available_tasks(const std::string& root) {
  return list_dir((fs::path(root) / "data" / "tasks").string(), ".jsonl");
}

TextSource read_task_source(const std::string& task, const std::string& root) {
  std::string path = task;
  if (!task.ends_with(".jsonl")) {
    if (root.empty()) throw ArgError("task '" + task + "': no data pack given to look it up in (CalibSpec::data_root)");
    path = (fs::path(root) / "data" / "tasks" / (task + ".jsonl")).string();
    std::error_code ec;
    if (!fs::is_regular_file(path, ec))
      throw ArgError("unknown task '" + task + "': no " + path + " (available: " + join(available_tasks(root)) + ")");
  }
  TextSource s;
  s.path = path;
  const std::string text = read_file(path);
  s.sha256 = sha256_hex(text);
  s.description = "task items";
  const auto lines = lines_of(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (blank(lines[i])) continue;
    const std::string at = path + ":" + std::to_string(i + 1);
    const Json j = parse_json(lines[i], at);
    try {
      if (j.contains("query") && j.contains("choices")) {
        const auto choices = json_get<std::vector<std::string>>(j, "choices", at);
        const size_t g = json_get<size_t>(j, "gold", at);
        if (g >= choices.size()) throw FormatError(at + ": gold index out of range");
        s.docs.push_back(rtrim(json_get<std::string>(j, "query", at)) + "\nAnswer: " + choices[g]);
      } else if (j.contains("ctx") && j.contains("endings")) {
        const auto endings = json_get<std::vector<std::string>>(j, "endings", at);
        const size_t g = json_get<size_t>(j, "label", at);
        if (g >= endings.size()) throw FormatError(at + ": label out of range");
        s.docs.push_back(json_get<std::string>(j, "ctx", at) + " " + endings[g]);
      } else if (j.contains("context_options")) {
        const auto opts = json_get<std::vector<std::string>>(j, "context_options", at);
        const size_t g = json_get<size_t>(j, "gold", at);
        if (g >= opts.size()) throw FormatError(at + ": gold index out of range");
        s.docs.push_back(opts[g] + " " + json_get<std::string>(j, "continuation", at));
      } else if (j.contains("context") && j.contains("continuation")) {
        s.docs.push_back(json_get<std::string>(j, "context", at) + " " + json_get<std::string>(j, "continuation", at));
      } else {
        throw FormatError(at + ": unrecognised task item (expected query/choices/gold, ctx/endings/label, "
                               "context_options/continuation/gold or context/continuation)");
      }
    } catch (const ConfigError& e) {
      throw FormatError(e.what());
    }
  }
  require_nonempty(s);
  return s;
}

std::vector<std::string> available_flores_languages(const std::string& root) {
  return list_dir((fs::path(root) / "data" / "flores200" / "devtest").string(), ".devtest");
}

TextSource read_flores_source(const std::string& lang, const std::string& root) {
  if (root.empty()) throw ArgError("FLORES-200 language '" + lang + "': no data pack given (CalibSpec::data_root)");
  const std::string path = (fs::path(root) / "data" / "flores200" / "devtest" / (lang + ".devtest")).string();
  std::error_code ec;
  if (lang.empty() || !fs::is_regular_file(path, ec))
    throw ArgError("FLORES-200 language '" + lang + "' not found: no " + path + " (available: " +
                   join(available_flores_languages(root)) + ")");
  TextSource s = read_text_source(path, "text", "line");
  s.description = "FLORES-200 " + lang + " sentences";
  return s;
}

}  // namespace calq
