// libFuzzer target for the GGUF reader: any byte string must either parse or throw calq::Error,
// never crash, hang, read out of bounds or allocate much more than its own size (run with
// -malloc_limit_mb: metadata arrays are kept packed). Parsed tensors of a dequantizable type are
// decoded too (bounded in size), so the block decoders see arbitrary bytes as well; the metadata
// is read back element by element and re-serialized, and must parse again to the same values.
#include <cstddef>
#include <cstdint>

#include "io/gguf.h"
#include "util/error.h"

namespace {

// Reads the first and last element of every array (recursively), as a consumer would.
void touch(const calq::gguf::Value& v) {
  using calq::gguf::ValueType;
  if (v.type != ValueType::ARRAY || v.size() == 0) return;
  for (size_t k : {size_t(0), v.size() - 1}) {
    const calq::gguf::Value e = v.at(k);
    if (e.type != v.elem) __builtin_trap();
    if (v.elem == ValueType::STRING && v.str_at(k) != e.s) __builtin_trap();
    touch(e);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  calq::gguf::Header h;
  try {
    h = calq::gguf::parse_header(data, size, "fuzz.gguf");
  } catch (const calq::Error&) {
    return 0;
  }
  try {
    for (const auto& t : h.tensors) {
      if (t.nbytes == 0 || !calq::ggml::can_dequantize(t.type) || t.nbytes > (1u << 20) || t.numel() > (1 << 22)) continue;
      const calq::Tensor f = calq::gguf::dequantize_tensor(data + h.data_start + t.offset, t.type, t.shape());
      if (f.numel() != t.numel()) __builtin_trap();
    }
  } catch (const calq::Error&) {
  }
  // Metadata round trip through the writer (general.alignment is the writer's own setting): what was
  // read is written, must parse again, and writes the same bytes a second time.
  const uint32_t alignment = h.alignment >= 8 ? uint32_t(h.alignment) : 32;
  auto rewrite = [&](const calq::gguf::Header& from) {
    calq::gguf::Writer w(alignment);
    for (const auto& kv : from.kv)
      if (kv.key != "general.alignment") w.set(kv.key, kv.value);
    return w.to_bytes();
  };
  for (const auto& kv : h.kv) touch(kv.value);
  const std::string bytes = rewrite(h);
  const calq::gguf::Header again =
      calq::gguf::parse_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "again.gguf");
  if (rewrite(again) != bytes) __builtin_trap();
  return 0;
}
