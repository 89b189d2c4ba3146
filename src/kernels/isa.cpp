#include "kernels/isa.h"

#include <atomic>
#include <cctype>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace calq {

namespace {
std::atomic<int> g_max_isa{int(Isa::Avx512)};

#if defined(__x86_64__) || defined(__i386__)
// F16C from CPUID leaf 1 (ECX bit 29): clang before 16 has no "f16c" in __builtin_cpu_supports.
bool has_f16c() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
#endif

Isa detect() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // GCC's __builtin_cpu_supports also checks that the OS saves the AVX / AVX-512 register state.
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bf16") &&
      __builtin_cpu_supports("avx512vnni"))
    return Isa::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c())
    return Isa::Avx2;
#endif
  return Isa::Scalar;
}
}  // namespace

const char* isa_name(Isa i) {
  switch (i) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
  }
  return "?";
}

bool isa_from_name(const std::string& s, Isa* out) {
  std::string l = s;
  for (char& c : l) c = char(std::tolower(static_cast<unsigned char>(c)));
  for (Isa i : {Isa::Scalar, Isa::Avx2, Isa::Avx512})
    if (l == isa_name(i)) {
      *out = i;
      return true;
    }
  return false;
}

Isa cpu_isa() {
  static const Isa isa = detect();
  return isa;
}

void set_max_isa(Isa i) { g_max_isa.store(int(i), std::memory_order_relaxed); }
Isa max_isa() { return Isa(g_max_isa.load(std::memory_order_relaxed)); }
Isa active_isa() {
  const int c = int(cpu_isa()), m = g_max_isa.load(std::memory_order_relaxed);
  return Isa(c < m ? c : m);
}

}  // namespace calq
