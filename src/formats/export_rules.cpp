#include "formats/export_rules.h"

#include "util/error.h"

namespace calq {

namespace {

std::string shape(const LinearShape& l) {
  return l.module + " [out " + std::to_string(l.out) + ", in " + std::to_string(l.in) + "]";
}

// Problems of the settings alone, whatever the shapes.
std::string gptq_settings_problem(int bits) {
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    return "GPTQ checkpoints hold 2, 3, 4 or 8 bits, not " + std::to_string(bits);
  return "";
}
std::string awq_settings_problem(int bits, int group_size, bool act_order) {
  if (bits != 4) return "the AWQ GEMM layout is 4-bit only, not " + std::to_string(bits) + "-bit";
  if (group_size <= 0) return "AWQ needs a group size (per output channel, -1, is not an AWQ layout)";
  if (act_order) return "AWQ has no g_idx: an act-order run (--desc-act) cannot be exported to AWQ";
  return "";
}

// The group sizes loaders commonly take (and -1) that divide every input width.
std::string working_groups(const std::vector<LinearShape>& linears, bool awq) {
  std::string r;
  for (int g : {32, 64, 128}) {
    bool all = true;
    for (const auto& l : linears) all = all && l.in % g == 0;
    if (all) r += (r.empty() ? "" : ", ") + std::to_string(g);
  }
  if (!awq) r += (r.empty() ? "" : ", ") + std::string("-1 (per output channel)");
  return r.empty() ? "none of 32, 64, 128" : r;
}

}  // namespace

std::string gptq_export_problem(const LinearShape& l, int bits, int group_size) {
  if (std::string p = gptq_settings_problem(bits); !p.empty()) return p;
  if (l.in % 32 != 0)
    return shape(l) + ": GPTQ loaders need in_features to be a multiple of 32 (qweight [in // 32 * bits, out]; "
                      "exllama/triton assert in % 32 == 0), at any bit width";
  if (l.out % 32 != 0)
    return shape(l) + ": GPTQ loaders need out_features to be a multiple of 32 (qzeros [G, out // 32 * bits]; "
                      "exllama/triton assert out % 32 == 0), at any bit width";
  if (group_size > 0 && l.in % group_size != 0)
    return shape(l) + ": group size " + std::to_string(group_size) + " does not divide in_features " +
           std::to_string(l.in) + " (exllama asserts it; the torch path reshapes by it)";
  return "";
}

std::string awq_export_problem(const LinearShape& l, int bits, int group_size, bool act_order) {
  if (std::string p = awq_settings_problem(bits, group_size, act_order); !p.empty()) return p;
  if (l.in % group_size != 0)
    return shape(l) + ": AWQ needs the group size " + std::to_string(group_size) + " to divide in_features " +
           std::to_string(l.in) + " (qzeros/scales [in / G, ...])";
  if (l.out % 8 != 0)
    return shape(l) + ": AWQ packs 8 output columns per int32 word; out_features " + std::to_string(l.out) +
           " is not a multiple of 8";
  return "";
}

void check_exportable(const std::string& format, const std::vector<LinearShape>& linears, int bits, int group_size,
                      bool act_order) {
  const bool awq = format == "awq";
  if (!awq && format != "gptq") throw ArgError("check_exportable: format '" + format + "'");
  if (std::string p = awq ? awq_settings_problem(bits, group_size, act_order) : gptq_settings_problem(bits); !p.empty())
    throw UnsupportedError(p);
  bool widths_ok = true;
  for (const auto& l : linears) widths_ok = widths_ok && (awq ? l.out % 8 == 0 : l.in % 32 == 0 && l.out % 32 == 0);
  for (const auto& l : linears) {
    const std::string p = awq ? awq_export_problem(l, bits, group_size, act_order) : gptq_export_problem(l, bits, group_size);
    if (p.empty()) continue;
    throw UnsupportedError(p + "; " + (widths_ok ? "group sizes that fit every linear of this model: " + working_groups(linears, awq)
                                                 : "this model cannot be a " + format + " checkpoint at any setting: "
                                                   "export it to GGUF, or use the fake-quant checkpoint"));
  }
}

}  // namespace calq
