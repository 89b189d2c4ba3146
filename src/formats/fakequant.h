// The fake-quantized float checkpoint (output (a) of `calq quantize`): the source Hugging Face
// folder with every tensor a QuantState changed replaced, so any evaluation runs on it unchanged.
//  * quantized linear weights: QuantizedWeight::dequantize() as F32 (bitwise the in-memory
//    fake-quant weight, whatever the source dtype);
//  * tensors the method replaced (smoothed norms, rescaled biases): F32;
//  * every other tensor: copied in its source dtype;
//  * W8A8: "<module>.input_scale" F32 [1] for static activation scales, and config.json gets
//    "calq_quant" (method, settings, calibration identity, activation block) so that load_model()
//    re-applies activation quantization (act_quant.h).
// Shards of at most `shard_bytes` (streamed layer by layer: memory stays about one shard); one shard
// is written as model.safetensors, more as model-0000k-of-0000n.safetensors + index. The folder
// follows the output protocol of formats/output.h (temporary folder, one overwrite rule: the
// folder holding the state itself, `calq quantize -o OUT` with OUT/qstate, is the run's own and is
// rewritten; the side files of kSideFiles are copied).
//
// Reading it back: load_model() (formats/loader.h) opens it as a plain float folder and calls
// apply_calq_quant_config() to re-install the activation quantization.
#pragma once
#include <cstdint>
#include <string>

#include "model/decoder.h"
#include "quant/qstate.h"

namespace calq {

struct FakeQuantOptions {
  uint64_t shard_bytes = uint64_t(1) << 30;
};

// Writes the checkpoint of the finished run `qs` (its source model: qs.source_model()). Throws
// FormatError when the state is incomplete or does not fit the source, ArgError when `out_dir`
// may not be written (formats/output.h).
void write_fake_quant_checkpoint(const QuantState& qs, const std::string& out_dir, const FakeQuantOptions& opt = {});

// The "calq_quant" block written into config.json.
Json calq_quant_block(const QuantState& qs);

// Installs the activation quantization described by config.json's "calq_quant" block (if any) on
// the model's linears. `what` names the checkpoint in errors. Returns the number of linears touched.
// Called by load_model() for Hugging Face folders.
int apply_calq_quant_config(Decoder& model, const std::string& what);

}  // namespace calq
