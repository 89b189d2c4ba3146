// The layer-wise quantization driver behind `calq quantize`:
//   embed every calibration sequence -> X_0 [n·T, hidden]
//   for each decoder layer i: quantize layer i from X_i (method-specific), write its results to the
//   QuantState (atomic), and compute X_{i+1} — with the quantized layer for sequential methods
//   (GPTQ, as gptq.py), with the float layer for AWQ / SmoothQuant (as their reference code).
// Memory: X_i and X_{i+1} (2·n·T·hidden floats) + one layer's working copies (+ for AWQ the inputs
// of its linears, + for GPTQ one Hessian per shared input); the checkpoint stays memory-mapped and
// every layer is restored to its mapped weights once written, so nothing grows with depth.
// Resume: an existing state with the same source, method, settings and calibration continues after
// its finished layers (they are replayed from their stored results to rebuild X_i).
#pragma once
#include <functional>
#include <string>
#include <variant>
#include <vector>

#include "calib/calib_set.h"
#include "model/decoder.h"
#include "quant/awq.h"
#include "quant/gptq.h"
#include "quant/qstate.h"
#include "quant/smoothquant.h"
#include "util/progress.h"

namespace calq {

// Round to nearest: one QuantScheme for every linear.
struct RtnConfig {
  QuantScheme scheme;
  void validate() const { scheme.validate(); }
  Json to_json() const { return scheme.to_json(); }
};

// The method of a run and all its settings, as one value. SmoothQuantConfig covers both W8A8
// methods: smooth = true is SmoothQuant, smooth = false the naive W8A8 baseline.
using MethodConfig = std::variant<RtnConfig, GptqConfig, AwqConfig, SmoothQuantConfig>;

// The default settings of the method named `s`: "rtn", "gptq", "awq", "smoothquant" (or "sq"),
// "naive-w8a8" (or "w8a8"). ArgError listing the choices.
MethodConfig parse_method(const std::string& s);
// "rtn", "gptq", "awq", "smoothquant" or "naive-w8a8": what state.json's "method" records.
std::string method_name(const MethodConfig& m);

struct QuantizeOptions {
  MethodConfig method = GptqConfig{};
  int64_t batch = 8;    // calibration sequences per forward chunk
  bool resume = true;   // continue a matching existing state (false: refuse to touch one)
  std::function<void(const std::string&)> log;  // one line per finished layer (may be empty)
  ProgressFn progress;  // layers done
  int threads = 0;      // worker threads (kernels/threads.h; 0: the caller's)
  bool check_tokenizer = true;  // refuse a calibration set tokenized with another tokenizer (as stats)

  void validate() const;
  Json settings() const;     // what a resumed state must match
  bool needs_calibration() const { return !std::holds_alternative<RtnConfig>(method); }
  bool sequential() const { return std::holds_alternative<GptqConfig>(method); }
  Json activation() const;   // W8A8 activation block, or null
};

struct QuantizeSummary {
  int layers_total = 0, layers_quantized = 0, layers_resumed = 0;
  double seconds = 0;
};

// Quantizes `model` (its float weights) into the QuantState at `state_dir`. Checks everything it
// can (settings, architecture support, calibration ids) before writing anything.
// Throws ConfigError when `state_dir` holds a state of another run, FormatError when it is corrupt.
// Padded calibration samples (CalibSet::mask) are handled by leaving their padding positions out
// of every statistic (Hessians, activation ranges, AWQ means and losses).
QuantizeSummary quantize_model(Decoder& model, const CalibSet* calib, const QuantizeOptions& o,
                               const std::string& state_dir);

// Raw token windows without a manifest, for in-process callers and tests (prefer CalibSet).
struct CalibTokens {
  std::vector<int32_t> ids;  // n * seq, row-major
  int64_t n = 0, seq = 0;
  Json manifest = Json::object();
};
CalibSet to_calib_set(const CalibTokens& c);
QuantizeSummary quantize_model(Decoder& model, const CalibTokens* calib, const QuantizeOptions& o,
                               const std::string& state_dir);

// A cheap identity of the model's files: SHA-256 over config.json and every shard's
// safetensors header and size (not the whole weights). "synthetic:<n params>" without a checkpoint.
std::string source_fingerprint(const Decoder& model);

}  // namespace calq
