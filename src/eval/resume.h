// Resuming interrupted evaluations: an append-only JSON-lines log of finished work units (a
// perplexity window, a KLD window, a task document). Each unit is appended and flushed as soon as
// it is done; a rerun with the same log skips the units it holds and reuses their values, so an
// interrupted run loses at most the unit in flight and a resumed run gives bit-identical results.
//   line 1:  {"calq_resume": 1, "key": "<identity of the run>"}
//   then:    {"unit": "<name>", "value": <json>}   (a torn last line from a crash is ignored)
#pragma once
#include <cstdio>
#include <memory>
#include <map>
#include <string>

#include "io/file_lock.h"
#include "util/json.h"

namespace calq::eval {

class ResumeLog {
 public:
  ResumeLog() = default;  // disabled
  // Opens or creates `path`. `key` identifies the run (model, data and settings hashes): an
  // existing log with another key is refused (ArgError), never silently mixed. The log is locked
  // (io/file_lock.h) for the object's lifetime: a second process on it is refused (IoError "... is
  // in use by another calq process (pid N)") instead of tearing it.
  ResumeLog(const std::string& path, const std::string& key);
  ~ResumeLog();
  ResumeLog(const ResumeLog&) = delete;
  ResumeLog& operator=(const ResumeLog&) = delete;

  bool enabled() const { return f_ != nullptr; }
  const Json* find(const std::string& unit) const;
  void put(const std::string& unit, const Json& value);
  size_t restored() const { return restored_; }

 private:
  std::unique_ptr<FileLock> lock_;  // taken before the log is read, released after it is closed
  std::string path_;
  std::FILE* f_ = nullptr;
  std::map<std::string, Json> done_;
  size_t restored_ = 0;
};

// SHA-256 of a JSON value's canonical dump: the key of a run from its identity fields.
std::string run_key(const Json& identity);

}  // namespace calq::eval
