// What the GPTQ and AWQ checkpoint layouts can hold, as their loaders check it — asked before a
// run is packed (calq export) and before the quantization work starts (calq quantize --format).
//
// GPTQ (AutoGPTQ qlinear_cuda_old/exllama/triton, GPTQModel, transformers/optimum, vLLM): the
// QuantLinear buffers are qweight [in // 32 * bits, out] and qzeros [G, out // 32 * bits], so in and
// out must be multiples of 32 (an in of 688 would need 86 rows at 4 bits; the loader makes 84);
// exllama and triton assert in % 32 == 0 and out % 32 == 0, and the group size must divide in
// (exllama asserts it; the torch path reshapes by it). Bits 2, 3, 4 or 8.
// AWQ GEMM (AutoAWQ WQLinear_GEMM): bits 4, qweight [in, out / 8], qzeros/scales [in / G, ...]: the
// group size must divide in, out must be a multiple of 8, and there is no g_idx (no act-order).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace calq {

struct LinearShape {
  std::string module;  // HF module name, for the message
  int64_t out = 0, in = 0;
};

// "" when the format can hold a linear of this shape at these settings, else one sentence naming
// the module, what fails and what would work. group_size -1: one group per row.
std::string gptq_export_problem(const LinearShape& l, int bits, int group_size);
std::string awq_export_problem(const LinearShape& l, int bits, int group_size, bool act_order);

// The first problem over all `linears` (UnsupportedError naming the module, the loaders' rule and
// the settings that would work for every linear: the group sizes among 32, 64, 128 and -1 that
// divide every input width), or nothing. `format` is "gptq" or "awq".
void check_exportable(const std::string& format, const std::vector<LinearShape>& linears, int bits, int group_size,
                      bool act_order);

}  // namespace calq
