// One writer at a time for files that a run appends to or rewrites while it goes (the --resume logs
// of `calq eval`, the checkpointed output of `calq stats`): two runs on one such file would tear it
// (interleaved and duplicated lines, a resume that then fails). A FileLock holds an exclusive
// flock(2) on "<path>.lock" for its lifetime; a second process is refused at once with
// "<path> is in use by another calq process (pid N)". The lock file holds the owner's pid and is
// removed on release; a crashed owner's lock is released by the kernel, and its leftover file is
// reused by the next run.
#pragma once
#include <string>

namespace calq {

class FileLock {
 public:
  // Locks `path` (through "<path>.lock"). IoError when another process holds it, or the lock file
  // cannot be created.
  explicit FileLock(const std::string& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  const std::string& lock_path() const { return lock_path_; }

 private:
  std::string path_, lock_path_;
  int fd_ = -1;
};

}  // namespace calq
