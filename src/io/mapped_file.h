// Read-only memory mapping of a whole file. The mapping lives as long as any
// shared_ptr to it (tensors viewing the file hold one).
#pragma once
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>

#include "util/fs.h"  // read_file, file_exists, path_join
#include "util/json.h"

namespace calq {

class MappedFile {
 public:
  // Throws IoError naming the path when the file cannot be opened or mapped.
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Drops the resident pages wholly inside [p, p + n) (madvise MADV_DONTNEED): once their contents
  // have been copied elsewhere (packed weights), the process no longer holds them twice. The
  // mapping stays valid: reading the range again faults the pages back in from the file.
  void release(const void* p, size_t n) const;

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// Refuses (ArgError) an output path that exists and is neither a regular file nor a folder: a
// character device such as /dev/null, a FIFO, a socket, or a symlink to one. Outputs are written to
// a temporary file and renamed into place, which would replace such a file with a regular one (as
// root, `-o /dev/null` once did); calq never renames over one.
void check_output_target(const std::string& path);

// Writes a file under `path.tmp` and renames it to `path` on commit(), so readers never see half a
// file; destroyed without commit() (an exception on the way), it removes the temporary.
// The target is checked with check_output_target on construction and again before the rename.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  // Appends bytes; throws IoError naming the file when the write fails (disk full).
  void write(const void* data, size_t n);
  // Flushes, checks and renames into place. Throws IoError.
  void commit();
  const std::string& tmp_path() const { return tmp_; }

 private:
  std::string path_, tmp_;
  std::ofstream out_;
  bool committed_ = false;
};

// Writes `bytes` to `path` through `path.tmp` + rename, so readers never see half a file.
void write_file_atomic(const std::string& path, const std::string& bytes);
// The same for JSON: j.dump(indent) and a newline.
void write_json_atomic(const std::string& path, const Json& j, int indent = 2);

}  // namespace calq
