// What an exporter reads from a quantization run: the float source model, the quantized linear
// weights (integer codes + scales/zeros) and the float tensors the method replaced (e.g. smoothed
// or AWQ-scaled norms). On disk this is a QuantState directory (layout in quant/qstate.h); tests
// and in-process pipelines use MemoryQuantSource.
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "quant/qtensor.h"
#include "util/json.h"

namespace calq {

class QuantSource {
 public:
  virtual ~QuantSource() = default;
  // Hugging Face folder of the float model the run started from.
  virtual std::string source_model() const = 0;
  // The run's description: {"method": ..., "settings": {...}, ...} (state.json for a QuantState).
  virtual Json info() const = 0;
  virtual std::optional<QuantizedWeight> weight(const std::string& module) const = 0;
  virtual std::vector<std::string> quantized_modules() const = 0;
  virtual std::optional<Tensor> replaced(const std::string& tensor) const = 0;
  virtual std::vector<std::string> replaced_tensors() const = 0;
  virtual std::string describe() const = 0;  // a path, for messages
};

class MemoryQuantSource final : public QuantSource {
 public:
  std::string model;
  Json run_info = Json::object();
  std::map<std::string, QuantizedWeight> weights;  // by HF module name
  std::map<std::string, Tensor> tensors;           // replaced float tensors by HF tensor name

  std::string source_model() const override { return model; }
  Json info() const override { return run_info; }
  std::optional<QuantizedWeight> weight(const std::string& module) const override;
  std::vector<std::string> quantized_modules() const override;
  std::optional<Tensor> replaced(const std::string& tensor) const override;
  std::vector<std::string> replaced_tensors() const override;
  std::string describe() const override { return "<in-memory quantization>"; }
};

// Warnings every exporter reports for a run: activation quantization (W8A8) is not part of the
// GPTQ/AWQ/GGUF formats, so the exported model runs with float activations.
std::vector<std::string> run_warnings(const QuantSource& q, const std::string& format);

// Opens a QuantState directory (quant/qstate.h layout). Throws FormatError naming the file at
// fault; `require_complete` refuses a run whose layers_done does not cover every layer.
// A thin adapter over QuantState (quant/qstate.h).
std::unique_ptr<QuantSource> open_quant_state(const std::string& dir, bool require_complete = true);

}  // namespace calq
