#include "eval/resume.h"

#include "io/mapped_file.h"
#include "util/error.h"
#include "util/sha256.h"

namespace calq::eval {

namespace {

// Line 1 of a log: refuses another format or another run's key.
void check_header(const std::string& line, const std::string& path, const std::string& key) {
  const Json j = parse_json(line, path + ":1");
  if (json_get_or<int>(j, "calq_resume", 0, path) != 1) throw FormatError(path + ": not a calq resume log");
  if (json_get<std::string>(j, "key", path) != key)
    throw ArgError(path + ": resume log belongs to another run (different model, data or settings); "
                          "delete it or choose another --resume file");
}

}  // namespace

ResumeLog::ResumeLog(const std::string& path, const std::string& key) : path_(path) {
  // A log of another run is refused before the lock is taken (its header never changes), so that
  // message does not depend on whether that run is still going.
  if (file_exists(path)) {
    const std::string text = read_file(path);
    if (const size_t e = text.find('\n'); e != std::string::npos) check_header(text.substr(0, e), path, key);
  }
  lock_ = std::make_unique<FileLock>(path);
  bool fresh = !file_exists(path);
  if (!fresh) {
    const std::string text = read_file(path);  // again, under the lock
    size_t b = 0, lineno = 0;
    while (b < text.size()) {
      size_t e = text.find('\n', b);
      if (e == std::string::npos) break;  // torn last line: the unit in flight, redone
      const std::string line = text.substr(b, e - b);
      b = e + 1;
      ++lineno;
      if (lineno == 1) {
        check_header(line, path, key);
        continue;
      }
      const Json j = parse_json(line, path + ":" + std::to_string(lineno));
      done_[json_get<std::string>(j, "unit", path)] = j.at("value");
    }
    if (lineno == 0) fresh = true;
    restored_ = done_.size();
    if (b < text.size()) {  // drop the torn tail so appends start on a fresh line
      write_file_atomic(path, text.substr(0, b));
    }
  }
  f_ = std::fopen(path.c_str(), fresh ? "wb" : "ab");
  if (!f_) throw IoError(path + ": cannot open the resume log for writing");
  if (fresh) {
    const std::string head = Json{{"calq_resume", 1}, {"key", key}}.dump() + "\n";
    std::fwrite(head.data(), 1, head.size(), f_);
    std::fflush(f_);
  }
}

ResumeLog::~ResumeLog() {
  if (f_) std::fclose(f_);
}

const Json* ResumeLog::find(const std::string& unit) const {
  auto it = done_.find(unit);
  return it == done_.end() ? nullptr : &it->second;
}

void ResumeLog::put(const std::string& unit, const Json& value) {
  if (!f_) return;
  const std::string line = Json{{"unit", unit}, {"value", value}}.dump() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), f_) != line.size() || std::fflush(f_) != 0)
    throw IoError(path_ + ": cannot append to the resume log");
  done_[unit] = value;
}

std::string run_key(const Json& identity) { return sha256_hex(identity.dump()); }

}  // namespace calq::eval
