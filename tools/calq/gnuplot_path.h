// The gnuplot that `calq report` and `calq study report` draw with: $CALQ_GNUPLOT when set, else
// `gnuplot` on $PATH (the library reads no environment; it takes the path as an option).
#pragma once
#include <string>

namespace calq::cli {

// MissingToolError (one `calq: error:` line) when there is none: called before any work.
std::string gnuplot_path();

}  // namespace calq::cli
