// The one path setting for the shared data pack: $CALQ_DATA, else ../shared (relative to the
// working directory, i.e. beside the repository root when run from there).
#pragma once
#include <string>

namespace calq {

// `fallback` is used when CALQ_DATA is unset (tests pass the source tree's ../shared).
std::string data_root(const std::string& fallback = "../shared");

}  // namespace calq
