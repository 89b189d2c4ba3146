// Where the command line finds the shared data pack (task files, FLORES, ...), wherever it is run
// from: $CALQ_DATA when set; else the first existing of `shared/` beside the repository the binary
// was built in, found from the binary's own location (<repo>/build/calq -> <repo>/../shared), from
// the source folder recorded at build time (an installed binary), and ../shared of the working
// directory. Only the CLI reads the environment; the library takes the root as an argument
// (CalibSpec::data_root, the task directory of `calq eval tasks`).
#pragma once
#include <string>

namespace calq::cli {

// The data pack's root; throws calq::Error naming CALQ_DATA and every place looked at when none exists.
std::string data_root();

// "data pack <root> (from $CALQ_DATA)" etc.: where data_root() came from, for error messages.
std::string data_root_origin();

}  // namespace calq::cli
