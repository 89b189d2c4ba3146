#include "gnuplot_path.h"

#include <cstdlib>

#include "report/gnuplot.h"

namespace calq::cli {

std::string gnuplot_path() {
  const char* configured = std::getenv("CALQ_GNUPLOT");
  const char* path = std::getenv("PATH");
  return report::find_gnuplot(configured ? configured : "", path ? path : "", "CALQ_GNUPLOT");
}

}  // namespace calq::cli
