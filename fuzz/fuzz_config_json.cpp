// libFuzzer target for config.json: parse_json then ModelConfig::from_json on arbitrary bytes. A
// calq::Error is an accepted outcome; a config that is accepted must be one the decoder can size
// without overflow (every count in its natural range, heads dividing evenly), else it traps.
//   ./build-fuzz/fuzz_config_json -dict=fuzz/config_json.dict -max_len=4096 CORPUS fuzz/corpus/config_json
#include <cstddef>
#include <cstdint>
#include <string>

#include "model/config.h"
#include "util/error.h"
#include "util/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using calq::ModelConfig;
  ModelConfig c;
  try {
    c = ModelConfig::from_json(calq::parse_json(std::string(reinterpret_cast<const char*>(data), size), "fuzz.json"),
                               "fuzz.json");
  } catch (const calq::Error&) {
    return 0;
  }
  const auto in = [](int64_t v, int64_t lo, int64_t hi) { return v >= lo && v <= hi; };
  const bool ok = in(c.num_layers, 1, 100000) && in(c.hidden_size, 1, 1 << 20) && in(c.vocab_size, 1, 1 << 24) &&
                  in(c.intermediate_size, 1, 1 << 22) && in(c.num_heads, 1, 4096) && in(c.num_kv_heads, 1, 4096) &&
                  in(c.head_dim, 1, 4096) && c.num_heads % c.num_kv_heads == 0 && in(c.max_position, 1, 1 << 26) &&
                  c.sliding_window.size() == size_t(c.num_layers) &&
                  (c.family != calq::Family::OPT || in(c.word_embed_proj_dim, 1, 1 << 20));
  if (!ok) __builtin_trap();
  for (int w : c.sliding_window)
    if (w < 0) __builtin_trap();
  for (int e : c.eos_token_ids)
    if (e < -1) __builtin_trap();
  return 0;
}
