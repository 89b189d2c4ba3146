#include "data_root.h"

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "util/error.h"

namespace calq::cli {

namespace {

namespace fs = std::filesystem;

struct Found {
  std::string root, origin, looked;
};

Found resolve() {
  Found f;
  if (const char* env = std::getenv("CALQ_DATA"); env && *env) {
    f.root = env;
    f.origin = "$CALQ_DATA";
    if (!fs::is_directory(f.root))
      throw IoError("CALQ_DATA=" + f.root + " is not a folder; set CALQ_DATA to the data pack (the folder holding "
                    "models/ and data/), or unset it to use ../shared beside the repository");
    return f;
  }
  std::vector<std::pair<std::string, std::string>> candidates;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.emplace_back((exe.parent_path().parent_path().parent_path() / "shared").string(),
                                   "beside the repository of " + exe.string());
#ifdef CALQ_SOURCE_DIR
  candidates.emplace_back((fs::path(CALQ_SOURCE_DIR).parent_path() / "shared").string(),
                          "beside the source folder calq was built from");
#endif
  candidates.emplace_back("../shared", "../shared of the working directory");
  for (const auto& [path, origin] : candidates) {
    f.looked += (f.looked.empty() ? "" : ", ") + path;
    if (fs::is_directory(path)) {
      f.root = fs::weakly_canonical(path, ec).string();
      if (ec || f.root.empty()) f.root = path;
      f.origin = origin;
      return f;
    }
  }
  throw IoError("no data pack found (looked at " + f.looked +
                "); set CALQ_DATA to the folder holding models/ and data/ (scripts/fetch_data.sh)");
}

const Found& found() {
  static const Found f = resolve();
  return f;
}

}  // namespace

std::string data_root() { return found().root; }

std::string data_root_origin() { return "data pack " + found().root + " (" + found().origin + "; set CALQ_DATA to change it)"; }

}  // namespace calq::cli
