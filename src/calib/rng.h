// The calibration builders' random numbers, identical on every compiler and platform:
// std::mt19937_64 (its output sequence is fixed by the C++ standard) with our own mappings to
// integers and reals (std::uniform_int_distribution and friends are implementation-defined).
#pragma once
#include <cstdint>
#include <random>

namespace calq {

class CalibRng {
 public:
  explicit CalibRng(uint64_t seed) : g_(seed) {}
  uint64_t next() { return g_(); }
  // Uniform integer in [0, n), n > 0: rejection sampling removes the modulo bias.
  uint64_t below(uint64_t n) {
    const uint64_t limit = n * (UINT64_MAX / n);  // largest multiple of n that fits
    uint64_t x;
    do x = g_(); while (x >= limit);
    return x % n;
  }
  // Uniform integer in [lo, hi], lo <= hi.
  int64_t between(int64_t lo, int64_t hi) { return lo + int64_t(below(uint64_t(hi - lo) + 1)); }
  // Uniform real in [0, 1) with 53 random bits.
  double unit() { return double(g_() >> 11) * 0x1.0p-53; }

 private:
  std::mt19937_64 g_;
};

}  // namespace calq
