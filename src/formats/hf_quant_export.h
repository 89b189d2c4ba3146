// GPTQ and AWQ checkpoint folders from a quantization run.
//
// The folder is the float model's folder with every quantized linear's "<m>.weight" replaced by
// the packed tensors of the format (see formats/packing.h), the tensors the method replaced (e.g.
// AWQ-scaled norms) written as F32, everything else copied byte for byte, config.json extended by
// "quantization_config", and the side files copied: the output protocol of formats/output.h.
//   GPTQ: <m>.qweight/.qzeros/.scales/.g_idx, quantization_config {quant_method: gptq, bits,
//         group_size, desc_act, sym, static_groups, true_sequential, damp_percent, lm_head,
//         checkpoint_format: gptq | gptq_v2, meta}; also quantize_config.json (AutoGPTQ).
//   AWQ:  <m>.qweight/.qzeros/.scales, quantization_config {quant_method: awq, bits: 4,
//         group_size, zero_point: true, version: gemm}.
#pragma once
#include <string>

#include "formats/output.h"
#include "formats/packing.h"
#include "quant/qstate.h"
#include "util/progress.h"

namespace calq {

struct HfExportOptions {
  GptqZeroFormat zeros = GptqZeroFormat::V1;  // GPTQ only
  ProgressFn progress;                        // tensors packed or copied
};

// `q` must be complete; its source model is q.source_model().
ExportReport export_gptq(const QuantState& q, const std::string& out_dir, const HfExportOptions& o = {});
ExportReport export_awq(const QuantState& q, const std::string& out_dir, const HfExportOptions& o = {});

}  // namespace calq
