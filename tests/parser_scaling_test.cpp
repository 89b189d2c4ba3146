// Parsers of untrusted files use memory and time linear in their input. These tests assert the
// results on inputs large enough to have exposed the old costs; the costs themselves are measured
// by bench/bench_parsers.cpp and recorded in docs/fuzzing.md (performance lives in benchmarks):
//  - a safetensors header of 50k entries took more than 120 s to parse (nlohmann's parser-callback
//    depth guard re-scanned the parent object at every entry; now a linear pre-scan, ~0.1 s);
//  - a GGUF u8 array held one ~104-byte variant per element (1.7 GB for 2^24 elements; now packed).
#include <gtest/gtest.h>

#include <cstring>

#include "io/gguf.h"
#include "io/safetensors.h"
#include "util/error.h"
#include "util/json.h"

namespace calq {
namespace {

std::string u32le(uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }
std::string u64le(uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); }
std::string gstr(const std::string& s) { return u64le(s.size()) + s; }

// ---- JSON nesting guard --------------------------------------------------------------------------

TEST(ParserScaling, JsonDepthGuardCountsOnlyStructure) {
  auto nested = [](int depth, const std::string& open, const std::string& inner, const std::string& close) {
    std::string s;
    for (int i = 0; i < depth; ++i) s += open;
    s += inner;
    for (int i = 0; i < depth; ++i) s += close;
    return s;
  };
  EXPECT_NO_THROW(parse_json(nested(512, "[", "", "]"), "a.json"));
  EXPECT_THROW(parse_json(nested(513, "[", "", "]"), "a.json"), FormatError);
  EXPECT_NO_THROW(parse_json(nested(512, "{\"k\":", "1", "}"), "a.json"));
  try {
    parse_json(nested(513, "{\"k\":", "1", "}"), "deep.json");
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    EXPECT_STREQ(e.what(), "deep.json: JSON nested deeper than 512 levels");
  }
  // Brackets inside strings, escaped quotes and backslashes included, are not structure.
  const std::string brackets(5000, '[');
  EXPECT_EQ(parse_json("[\"" + brackets + "\"]", "s.json")[0].get<std::string>().size(), 5000u);
  const Json j = parse_json(R"(["\"[[[", "\\", {"a\"{": "]]]\\\"{{"}])", "e.json");
  EXPECT_EQ(j[0], "\"[[[");
  EXPECT_EQ(j[1], "\\");
  EXPECT_EQ(j[2]["a\"{"], "]]]\\\"{{");
  // Malformed input is still reported by the parser, at its byte.
  EXPECT_THROW(parse_json("[1, 2", "m.json"), FormatError);
  EXPECT_THROW(parse_json("]]]]", "m.json"), FormatError);
}

// ---- safetensors: many entries -------------------------------------------------------------------

TEST(ParserScaling, SafetensorsHeaderOfFiftyThousandEntries) {
  constexpr int kEntries = 50000;
  // Entries listed in reverse data order, each F32 [2] (8 bytes), so the parser must sort them.
  std::string h = "{\"__metadata__\": {\"format\": \"pt\"}";
  for (int i = kEntries - 1; i >= 0; --i) {
    const uint64_t b = uint64_t(i) * 8;
    h += ", \"layers." + std::to_string(i) + ".weight\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [" +
         std::to_string(b) + ", " + std::to_string(b + 8) + "]}";
  }
  h += "}";
  std::string file = u64le(h.size()) + h + std::string(size_t(kEntries) * 8, '\0');
  const SafetensorsHeader sh =
      parse_safetensors_header(reinterpret_cast<const uint8_t*>(file.data()), file.size(), "big.safetensors");
  ASSERT_EQ(sh.tensors.size(), size_t(kEntries));
  EXPECT_EQ(sh.metadata.at("format"), "pt");
  EXPECT_EQ(sh.data_start, 8 + h.size());
  for (int i : {0, 1, 12345, kEntries - 1}) {
    const TensorInfo& t = sh.tensors[size_t(i)];
    EXPECT_EQ(t.name, "layers." + std::to_string(i) + ".weight");
    EXPECT_EQ(t.begin, uint64_t(i) * 8);
    EXPECT_EQ(t.shape, (Shape{2}));
  }
}

// ---- GGUF: long metadata arrays ------------------------------------------------------------------

std::string gguf_with(const std::string& kvs, uint64_t n_kv) {
  return "GGUF" + u32le(3) + u64le(0) + u64le(n_kv) + kvs;
}
gguf::Header parse_gguf(const std::string& b) {
  return gguf::parse_header(reinterpret_cast<const uint8_t*>(b.data()), b.size(), "a.gguf");
}

TEST(ParserScaling, GgufScalarArraysStayPacked) {
  using gguf::ValueType;
  constexpr uint64_t n = uint64_t(1) << 20;
  std::string elems(n, '\0');
  for (uint64_t k = 0; k < n; ++k) elems[k] = char(k % 251);
  const std::string file = gguf_with(gstr("big.u8") + u32le(9) + u32le(0) + u64le(n) + elems, 1);
  const gguf::Header h = parse_gguf(file);
  const gguf::Value& v = h.kv.at(0).value;
  EXPECT_EQ(v.elem, ValueType::U8);
  ASSERT_EQ(v.size(), n);
  EXPECT_EQ(v.packed().size(), n);  // one byte per element, as in the file
  for (uint64_t k : {uint64_t(0), uint64_t(250), uint64_t(251), n - 1}) EXPECT_EQ(v.at(k).u, k % 251);
  // Written back byte for byte.
  gguf::Writer w;
  w.set("big.u8", v);
  EXPECT_EQ(w.to_bytes().substr(0, file.size()), file);

  // Every fixed-size type decodes from its packed bytes.
  const std::vector<float> f = {-1.5f, 0.25f, 3e38f};
  const gguf::Value fa = gguf::Value::f32_array(f);
  EXPECT_EQ(fa.packed().size(), 12u);
  EXPECT_EQ(fa.at(2).f, double(3e38f));
  const gguf::Value ia = gguf::Value::array(ValueType::I16, {gguf::Value::i16(-7), gguf::Value::i16(300)});
  EXPECT_EQ(ia.at(0).i, -7);
  EXPECT_EQ(ia.at(1).type, ValueType::I16);
  EXPECT_THROW(ia.at(2), ArgError);
  EXPECT_THROW(gguf::Value::array(ValueType::I16, {gguf::Value::i32(1)}), ArgError);
  EXPECT_THROW(gguf::Value::packed_array(ValueType::U32, std::string(7, '\0')), ArgError);

  // A bool element that is neither 0 nor 1 is named.
  std::string bools(100, '\1');
  bools[5] = '\2';
  try {
    parse_gguf(gguf_with(gstr("b") + u32le(9) + u32le(7) + u64le(100) + bools, 1));
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("metadata 'b': bool element 5 = 2 is neither 0 nor 1"), std::string::npos) << e.what();
  }
}

TEST(ParserScaling, GgufStringAndNestedArrays) {
  using gguf::ValueType;
  constexpr uint64_t n = 100000;
  std::string elems;
  for (uint64_t k = 0; k < n; ++k) elems += gstr(k % 10 == 0 ? std::string() : "tok" + std::to_string(k));
  const gguf::Header h = parse_gguf(gguf_with(gstr("toks") + u32le(9) + u32le(8) + u64le(n) + elems, 1));
  const gguf::Value& v = h.kv.at(0).value;
  ASSERT_EQ(v.size(), n);
  EXPECT_EQ(v.str_at(0), "");
  EXPECT_EQ(v.str_at(1), "tok1");
  EXPECT_EQ(v.str_at(n - 1), "tok" + std::to_string(n - 1));
  EXPECT_EQ(v.at(99999).s, "tok99999");
  EXPECT_THROW(v.str_at(n), ArgError);

  // Arrays of arrays hold a Value each, so there may be at most 2^16 of them.
  const std::string empty_i32 = u32le(5) + u64le(0);
  std::string nested;
  for (int k = 0; k < 65537; ++k) nested += empty_i32;
  try {
    parse_gguf(gguf_with(gstr("n") + u32le(9) + u32le(9) + u64le(65537) + nested, 1));
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("more than 65536 arrays inside arrays"), std::string::npos) << e.what();
  }
  const gguf::Header ok = parse_gguf(gguf_with(gstr("n") + u32le(9) + u32le(9) + u64le(3) + empty_i32 +
                                                   u32le(5) + u64le(2) + u32le(7) + u32le(uint32_t(-9)) + empty_i32, 1));
  const gguf::Value& nv = ok.kv.at(0).value;
  ASSERT_EQ(nv.size(), 3u);
  EXPECT_EQ(nv.at(1).size(), 2u);
  EXPECT_EQ(nv.at(1).at(1).i, -9);
}

// Found by fuzz_gguf (-max_len=17000000 -malloc_limit_mb=64): an 11 MB file whose metadata count
// claimed ~390k entries made the parser reserve 72 MB of entries (192 bytes each) before reading
// one. At most 2^16 entries are accepted, and the count is checked before anything is allocated.
TEST(ParserScaling, GgufMetadataCountIsCapped) {
  auto with_entries = [](uint64_t n) {
    std::string kvs;
    for (uint64_t k = 0; k < n; ++k) kvs += gstr("k" + std::to_string(k)) + u32le(0) + std::string(1, char(k));
    return gguf_with(kvs, n);
  };
  EXPECT_EQ(parse_gguf(with_entries(65536)).kv.size(), 65536u);
  try {
    parse_gguf(with_entries(65537));
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    EXPECT_STREQ(e.what(), "a.gguf: metadata count 65537 exceeds the limit of 65536");
  }
  // A count that the file could hold but that is not backed by entries fails when they run out.
  EXPECT_THROW(parse_gguf(gguf_with(std::string(65536 * 13, 'x'), 65536)), FormatError);
}

}  // namespace
}  // namespace calq
