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
// is written as model.safetensors, more as model-0000k-of-0000n.safetensors + index. Every file goes
// through a temporary name and a rename; config.json is written last. Non-weight files of the
// source (tokenizer, generation config, ...) are copied.
#pragma once
#include <cstdint>
#include <string>

#include "io/checkpoint.h"
#include "quant/qstate.h"

namespace calq {

struct FakeQuantOptions {
  uint64_t shard_bytes = uint64_t(1) << 30;
};

// Throws FormatError when the state is incomplete or does not fit the source.
void write_fake_quant_checkpoint(const Checkpoint& src, const QuantState& qs, const std::string& out_dir,
                                 const FakeQuantOptions& opt = {});

// The "calq_quant" block written into config.json.
Json calq_quant_block(const QuantState& qs);

}  // namespace calq
