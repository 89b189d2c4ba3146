// One entry point to open any model calq can run: a Hugging Face float folder, a GPTQ or AWQ
// checkpoint folder (config.json with quantization_config), or a GGUF file. Quantized weights are
// dequantized to float32 on load, so every evaluation runs on any of them unchanged.
#pragma once
#include <memory>
#include <string>

#include "model/decoder.h"

namespace calq {

std::unique_ptr<Decoder> load_model(const std::string& path, ComputeType compute = ComputeType::F32);

// "hf-float", "fake-quant" (a float folder written by calq quantize: config.json has calq_quant),
// "gptq", "awq", "gguf", or "unknown" (without loading weights).
std::string detect_model_format(const std::string& path);

}  // namespace calq
