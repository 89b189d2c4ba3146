// The settings of a quantization method as `calq quantize` takes them (--method, --bits,
// --group-size, --sym, ...) and the one function that turns them into a MethodConfig. The command
// line and the study (src/study/) both go through it, so a study cell and the same run typed by hand
// quantize with bitwise the same settings.
#pragma once
#include <string>

#include "quant/pipeline.h"
#include "util/json.h"

namespace calq {

struct MethodOptions {
  std::string method = "gptq";  // rtn | gptq | awq | smoothquant | naive-w8a8
  int bits = 0;                 // weight bits; 0: 4 (8 for smoothquant / naive-w8a8)
  int group_size = 128;         // input columns per group, -1 = per output channel
  bool sym = false;             // symmetric weights
  bool per_tensor = false;      // rtn / W8A8: one weight scale per tensor
  std::string scale_dtype;      // "" or "f16" (default), "f32"
  double percdamp = 0.01;       // gptq
  int block_size = 128;         // gptq
  bool desc_act = false, static_groups = false, true_sequential = true;  // gptq
  bool awq_clip = true, awq_duo_scaling = false;                          // awq
  int awq_grid = 20;                                                      // awq
  double alpha = 0.5;           // smoothquant
  std::string act = "per_token";  // W8A8 activations: per_token | per_tensor | per_channel | per_tensor_static
  int a_bits = 8;               // W8A8 activation bits

  // The method with these settings (ArgError naming a bad or contradictory setting).
  MethodConfig to_method() const;

  // From a JSON object of the same names ("method", "bits", "group_size", "sym", "per_tensor",
  // "scale_dtype", "percdamp", "block_size", "desc_act", "static_groups", "true_sequential",
  // "awq_clip", "awq_duo_scaling", "awq_grid", "alpha", "act", "a_bits"); absent keys keep the
  // defaults, unknown keys and mistyped values are ConfigErrors naming `what` and the key.
  static MethodOptions from_json(const Json& j, const std::string& what);
  // Every setting that applies to the method (what from_json reads back).
  Json to_json() const;
};

}  // namespace calq
