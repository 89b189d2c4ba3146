// CALQ_ISA=scalar|avx2|avx512 caps the kernels' instruction set for the whole test binary (CI runs
// the suite once more with CALQ_ISA=avx2 to exercise the AVX2 kernels on an AVX-512 machine).
// Only tests, benchmarks and the CLI read this variable; the library takes set_max_isa().
#include <cstdio>
#include <cstdlib>

#include "kernels/isa.h"

namespace {
const bool kIsaFromEnv = [] {
  if (const char* e = std::getenv("CALQ_ISA")) {
    calq::Isa isa;
    if (calq::isa_from_name(e, &isa))
      calq::set_max_isa(isa);
    else
      std::fprintf(stderr, "calq tests: ignoring unknown CALQ_ISA '%s'\n", e);
  }
  return true;
}();
}  // namespace
