// GPTQ and AWQ checkpoint folders from a quantization run (issue item 7 (b), (c)).
//
// The folder is the float model's folder with every quantized linear's "<m>.weight" replaced by
// the packed tensors of the format (see export/packing.h), the tensors the method replaced (e.g.
// AWQ-scaled norms) written as F32, everything else copied byte for byte, config.json extended by
// "quantization_config", and the tokenizer/generation files copied. It is written under a temporary
// name and renamed when complete.
//   GPTQ: <m>.qweight/.qzeros/.scales/.g_idx, quantization_config {quant_method: gptq, bits,
//         group_size, desc_act, sym, static_groups, true_sequential, damp_percent, lm_head,
//         checkpoint_format: gptq | gptq_v2, meta}; also quantize_config.json (AutoGPTQ).
//   AWQ:  <m>.qweight/.qzeros/.scales, quantization_config {quant_method: awq, bits: 4,
//         group_size, zero_point: true, version: gemm}.
#pragma once
#include <string>
#include <vector>

#include "formats/packing.h"
#include "formats/quant_source.h"

namespace calq {

struct ExportReport {
  std::string out;
  int64_t quantized = 0;  // packed linear weights
  int64_t copied = 0;     // tensors copied from the source model
  int64_t replaced = 0;   // float tensors taken from the quantization run
  PackStats stats;
  std::vector<std::string> warnings;  // one line each, for the CLI to print
};

ExportReport export_gptq(const QuantSource& q, const std::string& out_dir, GptqZeroFormat zeros = GptqZeroFormat::V1);
ExportReport export_awq(const QuantSource& q, const std::string& out_dir);

// Output folders: a fresh `<out>.calq-tmp` to fill, then renamed to `out`. `out` must not exist
// or be an empty directory (ArgError otherwise); a stale temporary from a killed run is removed.
std::string begin_output_dir(const std::string& out);
void commit_output_dir(const std::string& tmp, const std::string& out);
void abandon_output_dir(const std::string& tmp) noexcept;

// Tokenizer and generation files calq copies next to exported weights.
void copy_side_files(const std::string& from_dir, const std::string& to_dir);

}  // namespace calq
