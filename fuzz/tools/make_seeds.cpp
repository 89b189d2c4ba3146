// Writes the fuzzers' seed files (built with -DCALQ_FUZZ=ON as calq_fuzz_seeds; docs/fuzzing.md).
//   calq_fuzz_seeds small DIR   the small seeds committed under fuzz/corpus/ (DIR = fuzz/corpus):
//                               GGUF files with every metadata type, nested arrays, every tensor type
//                               calq parses, a llama-like header; safetensors files with every dtype,
//                               1000 entries, and integers at and past the limits.
//   calq_fuzz_seeds large DIR   size-driven seeds into a scratch DIR (not committed): a GGUF u8
//                               array of 2^20 elements (1 MiB) and of 2^24 (16 MiB), a string array of
//                               2^20 strings, safetensors headers of 10k entries (0.9 MB), 50k entries
//                               (~4 MB) and ~1.1M entries (just under the 100 MB header limit).
// Every byte is a function of the arguments: the committed seeds are reproducible.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "util/error.h"

using namespace calq;
using gguf::Value;
using gguf::ValueType;

namespace {

void write(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  std::printf("%10zu  %s\n", bytes.size(), path.c_str());
}

std::string le64(uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); }

// Deterministic filler bytes (an LCG), so that dequantizers see varied blocks.
std::string filler(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  for (auto& c : s) c = char((seed = seed * 1664525u + 1013904223u) >> 24);
  return s;
}

// ---- GGUF ----------------------------------------------------------------------------------------

std::string gguf_all_metadata_types() {
  gguf::Writer w(64);  // general.alignment = 64 as well
  w.set("t.u8", Value::u8(200));
  w.set("t.i8", Value::i8(-100));
  w.set("t.u16", Value::u16(65000));
  w.set("t.i16", Value::i16(-30000));
  w.set("t.u32", Value::u32(4000000000u));
  w.set("t.i32", Value::i32(-2000000000));
  w.set("t.f32", Value::f32(0.1f));
  w.set("t.bool", Value::boolean(true));
  w.set("t.string", Value::str("h\xe2\x96\x81i"));
  w.set("t.u64", Value::u64(0xfedcba9876543210ull));
  w.set("t.i64", Value::i64(-(int64_t(1) << 60)));
  w.set("t.f64", Value::f64(1e-300));
  const std::vector<Value> scalars = {Value::u8(1),  Value::i8(-2),   Value::u16(3),    Value::i16(-4),
                                      Value::u32(5), Value::i32(-6),  Value::f32(7.5f), Value::boolean(true),
                                      Value::str("s"), Value::u64(9), Value::i64(-10),  Value::f64(11.5)};
  for (const Value& s : scalars)  // a three-element array of each element type
    w.set(std::string("a.") + gguf::value_type_name(s.type), Value::array(s.type, {s, s, s}));
  w.set("a.empty", Value::array(ValueType::U32, {}));
  w.set("n.i32", Value::array(ValueType::ARRAY, {Value::i32_array({1, 2}), Value::i32_array({}), Value::i32_array({-3})}));
  w.set("n.str", Value::array(ValueType::ARRAY, {Value::str_array({"a", ""}), Value::str_array({"b"})}));
  w.set("n.deep", Value::array(ValueType::ARRAY, {Value::array(ValueType::ARRAY, {Value::f32_array({1.f})})}));
  return w.to_bytes();
}

// One two-row tensor of every ggml type calq parses (type_traits knows it), filled with varied
// bytes: the dequantizable ones (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) are decoded by
// fuzz_gguf, the others are only located and bounds-checked.
std::string gguf_tensor_types() {
  gguf::Writer w;
  w.set("general.architecture", Value::str("llama"));
  for (uint32_t id = 0; id < 64; ++id) {
    const ggml::TypeTraits tr = ggml::type_traits(id);
    if (!tr.name) continue;
    const int64_t cols = tr.block_size;
    w.add_raw(std::string("t.") + tr.name, ggml::Type(id), {cols, 2}, filler(2 * tr.type_size, id));
  }
  return w.to_bytes();
}

// The metadata keys calq's GGUF loader reads, with a small vocabulary and llama tensor names.
std::string gguf_llama_header() {
  gguf::Writer w;
  w.set("general.architecture", Value::str("llama"));
  w.set("general.name", Value::str("seed"));
  w.set("general.file_type", Value::u32(7));
  w.set("general.quantization_version", Value::u32(2));
  w.set("llama.vocab_size", Value::u32(8));
  w.set("llama.context_length", Value::u32(64));
  w.set("llama.embedding_length", Value::u32(32));
  w.set("llama.block_count", Value::u32(1));
  w.set("llama.feed_forward_length", Value::u32(64));
  w.set("llama.attention.head_count", Value::u32(2));
  w.set("llama.attention.head_count_kv", Value::u32(1));
  w.set("llama.rope.freq_base", Value::f32(10000.f));
  w.set("llama.attention.layer_norm_rms_epsilon", Value::f32(1e-5f));
  w.set("llama.rope.dimension_count", Value::u32(16));
  w.set("tokenizer.ggml.model", Value::str("llama"));
  w.set("tokenizer.ggml.tokens", Value::str_array({"<unk>", "<s>", "</s>", "a", "b", "ab", "\xe2\x96\x81", "<0x0A>"}));
  w.set("tokenizer.ggml.scores", Value::f32_array({0, 0, 0, -1, -2, -3, -4, -5}));
  w.set("tokenizer.ggml.token_type", Value::i32_array({2, 3, 3, 1, 1, 1, 1, 6}));
  w.set("tokenizer.ggml.bos_token_id", Value::u32(1));
  w.set("tokenizer.ggml.eos_token_id", Value::u32(2));
  const std::vector<std::pair<std::string, std::vector<int64_t>>> tensors = {
      {"token_embd.weight", {32, 8}},        {"output_norm.weight", {32}},        {"blk.0.attn_norm.weight", {32}},
      {"blk.0.attn_q.weight", {32, 32}},     {"blk.0.attn_k.weight", {32, 16}},   {"blk.0.attn_v.weight", {32, 16}},
      {"blk.0.attn_output.weight", {32, 32}}, {"blk.0.ffn_norm.weight", {32}},    {"blk.0.ffn_gate.weight", {32, 64}},
      {"blk.0.ffn_up.weight", {32, 64}},     {"blk.0.ffn_down.weight", {64, 32}}};
  uint32_t seed = 1;
  for (const auto& [name, ne] : tensors) {
    const bool matrix = ne.size() == 2;
    const ggml::Type t = matrix ? ggml::Type::Q8_0 : ggml::Type::F32;
    const int64_t rows = matrix ? ne[1] : 1;
    w.add_raw(name, t, ne, filler(ggml::row_size(t, ne[0]) * size_t(rows), seed++));
  }
  return w.to_bytes();
}

std::string gguf_u8_array(uint64_t n) {
  gguf::Writer w;
  w.set("a.big", Value::packed_array(ValueType::U8, filler(n, 7)));
  return w.to_bytes();
}

std::string gguf_string_array(uint64_t n) {
  std::vector<std::string> v;
  v.reserve(n);
  for (uint64_t k = 0; k < n; ++k) v.push_back(std::to_string(k));
  gguf::Writer w;
  w.set("tokenizer.ggml.tokens", Value::str_array(v));
  return w.to_bytes();
}

// ---- safetensors ---------------------------------------------------------------------------------

std::string safetensors(const std::string& header, uint64_t data_bytes) {
  return le64(header.size()) + header + filler(data_bytes, 3);
}

// n F32 [2] entries ("model.layers.K.weight"), ~90 header bytes each; with n = 0, as many as fit in
// a header just under the 100 MB limit.
std::string safetensors_entries(uint64_t n) {
  constexpr size_t kLimit = (size_t(100) << 20) - 1024;
  std::string h = "{\"__metadata__\":{\"format\":\"pt\"}";
  uint64_t i = 0;
  for (; n == 0 || i < n; ++i) {
    const std::string e = ",\"model.layers." + std::to_string(i) + ".weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[" +
         std::to_string(i * 8) + "," + std::to_string(i * 8 + 8) + "]}";
    if (n == 0 && h.size() + e.size() + 1 > kLimit) break;
    h += e;
  }
  return safetensors(h + "}", i * 8);
}

std::string safetensors_every_dtype() {
  const std::pair<const char*, int> dtypes[] = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
                                                {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},   {"BOOL", 1}};
  std::string h = "{";
  uint64_t off = 0;
  for (const auto& [name, size] : dtypes) {
    const uint64_t end = off + uint64_t(size) * 6;
    h += std::string(off ? "," : "") + "\"t." + name + "\":{\"dtype\":\"" + name + "\",\"shape\":[2,3],\"data_offsets\":[" +
         std::to_string(off) + "," + std::to_string(end) + "]}";
    off = end;
  }
  return safetensors(h + "}", off);
}

// Integers at and past the limits (the parser must refuse the latter, naming the field).
std::string safetensors_limits() {
  return safetensors(R"({"ok":{"dtype":"U8","shape":[0,4611686018427387904],"data_offsets":[0,0]},)"
                     R"("wrap":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]},)"
                     R"("frac":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]},)"
                     R"("huge":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,1e3]}})",
                     8);
}

int usage() {
  std::fprintf(stderr, "usage: calq_fuzz_seeds small|large DIR\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return usage();
  const std::string mode = argv[1], dir = argv[2];
  try {
    if (mode == "small") {
      write(dir + "/gguf/all_metadata_types.gguf", gguf_all_metadata_types());
      write(dir + "/gguf/tensor_types.gguf", gguf_tensor_types());
      write(dir + "/gguf/llama_header.gguf", gguf_llama_header());
      write(dir + "/gguf/u8_array_4096.gguf", gguf_u8_array(4096));
      write(dir + "/safetensors/every_dtype.safetensors", safetensors_every_dtype());
      write(dir + "/safetensors/entries_1000.safetensors", safetensors_entries(1000));
      write(dir + "/safetensors/integer_limits.safetensors", safetensors_limits());
    } else if (mode == "large") {
      write(dir + "/gguf/u8_array_2p20.gguf", gguf_u8_array(uint64_t(1) << 20));
      write(dir + "/gguf/u8_array_2p24.gguf", gguf_u8_array(uint64_t(1) << 24));
      write(dir + "/gguf/string_array_2p20.gguf", gguf_string_array(uint64_t(1) << 20));
      write(dir + "/safetensors/entries_10k.safetensors", safetensors_entries(10000));
      write(dir + "/safetensors/entries_50k.safetensors", safetensors_entries(50000));
      write(dir + "/safetensors/entries_near_100mb.safetensors", safetensors_entries(0));
    } else {
      return usage();
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "calq_fuzz_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
