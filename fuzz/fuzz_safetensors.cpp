// libFuzzer target: the safetensors header parser must reject any malformed image with a
// calq::Error and never read outside the buffer.
#include <cstddef>
#include <cstdint>

#include "io/safetensors.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const calq::SafetensorsHeader h = calq::parse_safetensors_header(data, size, "fuzz");
    // Touch every tensor's bytes: offsets were validated, so this must stay in bounds.
    volatile uint8_t sink = 0;
    for (const auto& t : h.tensors)
      for (uint64_t i = t.begin; i < t.end; i += 61) sink ^= data[h.data_start + i];
    (void)sink;
  } catch (const calq::Error&) {
  }
  return 0;
}
