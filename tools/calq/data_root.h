// Where the command line finds the shared data pack (task files, FLORES, ...): $CALQ_DATA, else
// ../shared (relative to the working directory, i.e. beside the repository root when run from
// there). Only the CLI reads the environment; the library takes the root as an argument
// (CalibSpec::data_root, the task directory of `calq eval tasks`).
#pragma once
#include <string>

namespace calq::cli {

std::string data_root();

}  // namespace calq::cli
