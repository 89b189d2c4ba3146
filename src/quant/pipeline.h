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
#include <vector>

#include "calib/calib_set.h"
#include "model/decoder.h"
#include "quant/awq.h"
#include "quant/gptq.h"
#include "quant/qstate.h"
#include "quant/smoothquant.h"

namespace calq {

enum class Method { Rtn, Gptq, Awq, SmoothQuant, NaiveW8A8 };
Method parse_method(const std::string& s);  // ArgError listing the choices
const char* method_name(Method m);

struct QuantizeOptions {
  Method method = Method::Gptq;
  QuantScheme rtn;
  GptqConfig gptq;
  AwqConfig awq;
  SmoothQuantConfig sq;
  int64_t batch = 8;    // calibration sequences per forward chunk
  bool resume = true;   // continue a matching existing state (false: refuse to touch one)
  std::function<void(const std::string&)> log;  // one line per finished layer (may be empty)
  bool progress = true;

  void validate() const;
  Json settings() const;     // what a resumed state must match
  bool needs_calibration() const { return method != Method::Rtn; }
  bool sequential() const { return method == Method::Gptq; }
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
