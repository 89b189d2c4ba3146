// From calq's QuantizedWeight (qstate layer files; GPTQ/AWQ checkpoints after unpacking) to the
// quantized kernels' packed weights (kernels/qgemm.h). Kernels sit below quant/ and cannot see
// QuantizedWeight: this is the adapter, in the room that owns model-level formats.
#pragma once
#include <memory>
#include <string>

#include "kernels/qgemm.h"
#include "quant/qtensor.h"

namespace calq {

// A view of w's codes, scales, zero points and g_idx (valid while w lives).
QuantCodesView codes_view(const QuantizedWeight& w);

// W4A16 / W8A16 (any bits 2..8, groups, act-order), or with acts = Int8 int8 activations in
// blocks of 32 (kernels/qgemm.h QActs). Throws ArgError naming `what` for a weight that breaks its
// rules (QuantizedWeight::validate).
std::shared_ptr<QuantPackedWeight> pack_quantized_weight(const QuantizedWeight& w, ComputeType c, QActs acts,
                                                         const std::string& what);

// W8A8: 8-bit symmetric per-output-channel weights with int8 activations (SmoothQuant's
// deployment form); UnsupportedError for other weights.
std::shared_ptr<QuantPackedWeight> pack_w8a8_weight(const QuantizedWeight& w, const W8A8Options& o, ComputeType c,
                                                    const std::string& what);

}  // namespace calq
