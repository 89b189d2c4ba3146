// Runtime instruction-set dispatch for calq's own kernels (the quantized GEMMs, kernels/qgemm.h;
// attention, norms, activations, RoPE and bf16 conversion, kernels/simd_kernels.h; the synthetic
// weights, model/synthetic.cpp).
// Each kernel exists as an AVX-512 variant (F, BW, VL, DQ, BF16, VNNI: Zen 4/5, Sapphire Rapids,
// Cooper Lake), an AVX2 variant (AVX2 + FMA + F16C: every x86-64-v3 CPU) and the scalar reference;
// one binary holds all three and picks the best the CPU supports, at most `max_isa()`.
// Library code never reads the environment: tests, benchmarks and the CLI may lower the ceiling
// with set_max_isa() (e.g. from CALQ_ISA=avx2) to exercise the AVX2 path on an AVX-512 machine.
#pragma once
#include <string>

namespace calq {

enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2 };
const char* isa_name(Isa i);
// "scalar" / "avx2" / "avx512" (case-insensitive); false when unknown.
bool isa_from_name(const std::string& s, Isa* out);

// The best variant this CPU (and OS: XSAVE state) supports.
Isa cpu_isa();
// Process-wide ceiling (default: Avx512, i.e. no limit). Thread-safe; takes effect on the next call.
void set_max_isa(Isa i);
Isa max_isa();
// What the kernels run now: min(cpu_isa(), max_isa()).
Isa active_isa();

}  // namespace calq
