// libFuzzer target for the GGUF reader: any byte string must either parse or throw calq::Error,
// never crash, hang or read out of bounds. Parsed tensors of a dequantizable type are decoded too
// (bounded in size), so the block decoders see arbitrary bytes as well.
#include <cstddef>
#include <cstdint>

#include "io/gguf.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const calq::gguf::Header h = calq::gguf::parse_header(data, size, "fuzz.gguf");
    for (const auto& t : h.tensors) {
      if (t.nbytes == 0 || !calq::ggml::can_dequantize(t.type) || t.nbytes > (1u << 20) || t.numel() > (1 << 22)) continue;
      const calq::Tensor f = calq::gguf::dequantize_tensor(data + h.data_start + t.offset, t.type, t.shape());
      if (f.numel() != t.numel()) __builtin_trap();
    }
  } catch (const calq::Error&) {
  }
  return 0;
}
