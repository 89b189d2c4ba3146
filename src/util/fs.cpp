#include "util/fs.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "util/error.h"

namespace calq {

std::string path_join(const std::string& a, const std::string& b) {
  if (a.empty() || b.empty() || b[0] == '/') return a.empty() ? b : b.empty() ? a : b;
  return a.back() == '/' ? a + b : a + "/" + b;
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw IoError(path + ": read error");
  return ss.str();
}

}  // namespace calq
