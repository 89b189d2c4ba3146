#include "util/paths.h"

#include <cstdlib>

namespace calq {

std::string data_root(const std::string& fallback) {
  const char* env = std::getenv("CALQ_DATA");
  return env && *env ? std::string(env) : fallback;
}

}  // namespace calq
