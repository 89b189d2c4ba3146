// A finished calq quantization run (its `qstate` folder: quant/qstate.h) as a runnable model: the
// source model with every quantized linear running from its integer codes (kernels/qgemm.h; no
// float copy) and every tensor the method replaced (smoothed norms, ...) taken from the state.
// W8A8 runs (SmoothQuant, naive W8A8: state.json "activation") run their linears as int8 × int8
// with the recorded activation granularity (per-token, or per-tensor static from the state's
// input scales). `calq quantize -o OUT` writes OUT/qstate beside the fake-quant checkpoint OUT:
// load_model(OUT) runs the fake-quant float weights, load_model(OUT/qstate) the codes.
#pragma once
#include <memory>
#include <string>

#include "formats/loader.h"
#include "quant/qstate.h"

namespace calq {

// A folder holding a calq quantization state (state.json with "format": "calq-qstate").
bool is_qstate_folder(const std::string& dir);

class QStateSource final : public TensorSource {
 public:
  // Throws FormatError when the state is incomplete.
  QStateSource(QuantState qs, std::shared_ptr<const Checkpoint> source, const LoadOptions& o);
  bool has(const std::string& name) const override;
  // Replaced tensors from the state, quantized linears dequantized, everything else from the source.
  Tensor get(const std::string& name) const override;
  std::string describe() const override { return qs_.dir(); }
  std::shared_ptr<QuantPackedWeight> quantized_linear(const std::string& module, ComputeType c) const override;
  void release(const std::string& name) const override { src_->release(name); }

 private:
  QuantState qs_;
  std::shared_ptr<const Checkpoint> src_;
  LoadOptions o_;
  Json act_;  // state.json "activation" (null: weight-only)
};

std::unique_ptr<Decoder> load_qstate_model(const std::string& dir, ComputeType compute = ComputeType::F32,
                                           const LoadOptions& o = {});

}  // namespace calq
