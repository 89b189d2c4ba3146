#include "io/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/error.h"

namespace calq {

namespace {

// The pid a holder wrote into the lock file ("" when unreadable or not yet written).
std::string holder_pid(int fd) {
  char buf[32] = {};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string s = n > 0 ? std::string(buf, size_t(n)) : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s.find_first_not_of("0123456789") == std::string::npos ? s : "";
}

}  // namespace

FileLock::FileLock(const std::string& path) : path_(path), lock_path_(path + ".lock") {
  // The holder before us unlinks the lock file on release: a file we opened may be gone from the
  // path by the time we hold its lock, so retry until the locked file is the one the path names.
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int fd = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) throw IoError(lock_path_ + ": cannot create the lock file: " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      const std::string pid = holder_pid(fd);
      ::close(fd);
      if (err == EWOULDBLOCK)
        throw IoError(path_ + " is in use by another calq process" + (pid.empty() ? "" : " (pid " + pid + ")") +
                      "; wait for it to finish, or use another file (lock: " + lock_path_ + ")");
      throw IoError(lock_path_ + ": cannot lock: " + std::strerror(err));
    }
    struct stat held {}, named {};
    if (::fstat(fd, &held) == 0 && ::stat(lock_path_.c_str(), &named) == 0 && held.st_ino == named.st_ino &&
        held.st_dev == named.st_dev) {
      const std::string me = std::to_string(::getpid()) + "\n";
      if (::ftruncate(fd, 0) == 0 && ::pwrite(fd, me.data(), me.size(), 0) < 0) {
        // The pid is only for the message of a second process: not worth failing the run.
      }
      fd_ = fd;
      return;
    }
    ::close(fd);
  }
  throw IoError(lock_path_ + ": cannot lock (the lock file keeps being replaced)");
}

FileLock::~FileLock() {
  if (fd_ < 0) return;
  ::unlink(lock_path_.c_str());  // while still holding the lock (see the constructor)
  ::close(fd_);
}

}  // namespace calq
