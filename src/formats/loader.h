// One entry point to open any model calq can run: a Hugging Face float folder (incl. calq's
// fake-quant checkpoints), a GPTQ or AWQ checkpoint folder (config.json with
// quantization_config), a calq quantization state (a `qstate` folder: state.json + layer files),
// or a GGUF file.
//
// Weights stay in the form they came in: GPTQ/AWQ/qstate codes and GGUF Q4_0/Q4_1/Q5_0/Q5_1/Q8_0
// blocks are packed for the quantized kernels (kernels/qgemm.h; W8A8 for a SmoothQuant/W8A8
// state) with no float copy, and the mapped pages they were packed from are dropped; bf16/f16
// tensors run as bf16. Only LoadOptions::float_weights dequantizes to float32 (the fake-quant
// reference path).
#pragma once
#include <memory>
#include <optional>
#include <string>

#include "kernels/qgemm.h"
#include "model/decoder.h"

namespace calq {

struct LoadOptions {
  // Compute type; unset: natural_compute() (what the weights are).
  std::optional<ComputeType> compute;
  // Quantized weights dequantized to float32 on load, as before calq ran them quantized: the
  // fake-quant float path, for comparisons. Slow and 4 bytes per weight.
  bool float_weights = false;
  // Int8 activations in blocks of 32 (kernels/qgemm.h QActs::Int8; opt-in, `--int8-acts`):
  // llama.cpp's arithmetic for GGUF Q4_0/Q8_0 weights, for any group-quantized codes too (W4A8,
  // W8A8 by groups). GGUF Q5_0/Q5_1 (5-bit storage) keep float activations.
  QActs acts = QActs::Float;
  // Pack every linear layer now and drop the mapped pages it was packed from
  // (Decoder::pack_weights): what evaluation and generation want. Off: packed on first use (the
  // quantization pipeline processes one layer at a time and releases it).
  bool pack = false;
};

std::unique_ptr<Decoder> load_model(const std::string& path, const LoadOptions& o);
// Compute type `compute`, nothing packed ahead (LoadOptions{compute}).
std::unique_ptr<Decoder> load_model(const std::string& path, ComputeType compute = ComputeType::F32);

// The compute type a model's weights call for: bf16 when any linear layer is quantized or stored
// in bf16/f16 (W4A16 and friends: 16-bit activations), f32 when every float weight is f32.
ComputeType natural_compute(const Decoder& model);
// One line for users: "bf16 (the weights are bf16/f16 or quantized; --f32 to compute in f32)".
std::string describe_compute(const Decoder& model);

// "hf-float", "fake-quant" (a float folder written by calq quantize: config.json has calq_quant),
// "gptq", "awq", "qstate", "gguf", or "unknown" (without loading weights).
std::string detect_model_format(const std::string& path);

}  // namespace calq
