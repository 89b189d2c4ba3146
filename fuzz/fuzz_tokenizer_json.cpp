// libFuzzer target: Tokenizer::from_json_text on arbitrary bytes, then encode/decode fixed texts.
// Any calq::Error is an accepted outcome; everything else (crash, sanitizer report, another
// exception type escaping) is a bug.
//   CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCALQ_FUZZ=ON -DCALQ_BUILD_TESTS=OFF -DCALQ_BUILD_BENCH=OFF
//   cmake --build build-fuzz --target fuzz_tokenizer_json
//   ./build-fuzz/fuzz_tokenizer_json -dict=fuzz/tokenizer_json.dict -max_len=4096 CORPUS_DIR fuzz/corpus/tokenizer
#include <cstddef>
#include <cstdint>
#include <string>

#include "tokenizer/tokenizer.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string json(reinterpret_cast<const char*>(data), size);
  std::unique_ptr<calq::Tokenizer> tok;
  try {
    tok = calq::Tokenizer::from_json_text(json, "fuzz.json");
  } catch (const calq::Error&) {
    return 0;
  }
  static const std::string kTexts[] = {
      "",
      " ",
      "Hello world! It's 2024: 12345 \xE2\x82\xAC caf\xC3\xA9 cafe\xCC\x81",
      "<s>a</s> <|endoftext|> [INST] \t\n\n  x",
      "\xE7\x8C\xAB\xF0\x9F\x99\x82 \xE0\xA4\x9C\xE0\xA4\xBC \xC2\x85\xEF\xBB\xBF",
      "\xFF\xFE invalid \xC3",
      // longer than 64 symbols: exercises the cutting of long words (no pre-tokenizer)
      "abababababababababab aaaa bbbb  Hello Hello <s>  x\n\n\tababab 1234567890 \xE2\x96\x81\xE2\x96\x81 ab ab ab ab "
      "ba ba ba ab</s>abab",
  };
  try {
    for (const auto& text : kTexts) {
      for (int mode = 0; mode < 3; ++mode) {
        calq::EncodeOptions opt;
        opt.add_special_tokens = mode == 0;
        opt.split_special_tokens = mode == 2;
        const auto ids = tok->encode(text, opt);
        for (int32_t id : ids)
          if (id < 0 || id >= tok->vocab_size()) __builtin_trap();  // ids must be in range
        (void)tok->decode(ids, false);
        (void)tok->decode(ids, true);
      }
    }
    (void)tok->decode({-1, 0, 1, 2, 3, tok->vocab_size(), 1 << 30}, false);
    for (int32_t id = 0; id < tok->vocab_size() && id < 64; ++id) {
      const std::string t = tok->id_to_token(id);
      (void)tok->token_to_id(t);
      (void)tok->is_special(id);
    }
    (void)tok->summary();
  } catch (const calq::Error&) {
    // e.g. a regex that exceeds Oniguruma's backtracking limit on one of the texts
  }
  return 0;
}
