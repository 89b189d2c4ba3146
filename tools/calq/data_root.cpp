#include "data_root.h"

#include <cstdlib>

namespace calq::cli {

std::string data_root() {
  const char* env = std::getenv("CALQ_DATA");
  return env && *env ? std::string(env) : std::string("../shared");
}

}  // namespace calq::cli
