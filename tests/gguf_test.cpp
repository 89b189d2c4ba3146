// GGUF container: exact bytes of a minimal file, round trips of every metadata type and of the
// tensor types calq writes, and the reader's refusal of malformed files (never a crash).
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <cstring>
#include <random>
#include <unistd.h>

#include "io/gguf.h"
#include "tensor/dtype.h"
#include "util/error.h"
#include "test_util.h"

namespace calq::gguf {
namespace {

std::string u32le(uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }
std::string u64le(uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); }
std::string gstr(const std::string& s) { return u64le(s.size()) + s; }
Header parse(const std::string& b) { return parse_header(reinterpret_cast<const uint8_t*>(b.data()), b.size(), "t.gguf"); }

std::string tmp_path(const std::string& name) {
  return test::temp_path("gguf_test", name);
}

TEST(Gguf, MinimalFileExactBytes) {
  Writer w;
  w.set("general.architecture", Value::str("llama"));
  const std::string b = w.to_bytes();
  std::string want = "GGUF" + u32le(3) + u64le(0) + u64le(1) + gstr("general.architecture") + u32le(8) + gstr("llama");
  ASSERT_EQ(want.size(), 69u);
  want.append(96 - 69, '\0');  // padded to the default alignment of 32
  EXPECT_EQ(b, want);
  const Header h = parse(b);
  EXPECT_EQ(h.version, 3u);
  ASSERT_EQ(h.kv.size(), 1u);
  EXPECT_EQ(h.kv[0].value.s, "llama");
  EXPECT_EQ(h.alignment, 32u);
  EXPECT_EQ(h.data_start, 96u);
}

TEST(Gguf, EveryMetadataTypeRoundTrips) {
  Writer w;
  w.set("a.u8", Value::u8(200));
  w.set("a.i8", Value::i8(-100));
  w.set("a.u16", Value::u16(65000));
  w.set("a.i16", Value::i16(-30000));
  w.set("a.u32", Value::u32(4000000000u));
  w.set("a.i32", Value::i32(-2000000000));
  w.set("a.f32", Value::f32(0.1f));
  w.set("a.bool", Value::boolean(true));
  w.set("a.str", Value::str(std::string("h\0i \xe2\x96\x81", 7)));
  w.set("a.u64", Value::u64(0xfedcba9876543210ull));
  w.set("a.i64", Value::i64(-(int64_t(1) << 60)));
  w.set("a.f64", Value::f64(1e-300));
  w.set("a.strs", Value::str_array({"<s>", "", "\xe2\x96\x81the"}));
  w.set("a.f32s", Value::f32_array({-1000.f, 0.5f}));
  w.set("a.nested", Value::array(ValueType::ARRAY, {Value::i32_array({1, 2}), Value::i32_array({})}));
  w.set("a.u32", Value::u32(7));  // replaced in place, order kept
  const std::string path = tmp_path("kv.gguf");
  w.write(path);
  auto f = File::open(path);
  ASSERT_EQ(f->kv().size(), 15u);
  EXPECT_EQ(f->kv()[4].key, "a.u32");
  EXPECT_EQ(f->get_uint("a.u8"), 200u);
  EXPECT_EQ(f->get_int("a.i8"), -100);
  EXPECT_EQ(f->get_uint("a.u16"), 65000u);
  EXPECT_EQ(f->get_int("a.i16"), -30000);
  EXPECT_EQ(f->get_uint("a.u32"), 7u);
  EXPECT_EQ(f->get_int("a.i32"), -2000000000);
  EXPECT_EQ(float(f->get_float("a.f32")), 0.1f);
  EXPECT_TRUE(f->get_bool("a.bool"));
  EXPECT_EQ(f->get_string("a.str"), std::string("h\0i \xe2\x96\x81", 7));
  EXPECT_EQ(f->get_uint("a.u64"), 0xfedcba9876543210ull);
  EXPECT_EQ(f->get_int("a.i64"), -(int64_t(1) << 60));
  EXPECT_EQ(f->get_float("a.f64"), 1e-300);
  EXPECT_EQ(f->get_string_array("a.strs"), (std::vector<std::string>{"<s>", "", "\xe2\x96\x81the"}));
  const Value* fs = f->find("a.f32s");
  ASSERT_TRUE(fs);
  EXPECT_EQ(fs->elem, ValueType::F32);
  EXPECT_EQ(fs->at(0).f, -1000.0);
  const Value* n = f->find("a.nested");
  ASSERT_TRUE(n);
  ASSERT_EQ(n->size(), 2u);
  EXPECT_EQ(n->at(0).at(1).i, 2);
  EXPECT_EQ(n->at(1).size(), 0u);
  EXPECT_THROW(f->get_uint("a.i8"), FormatError);     // negative
  EXPECT_THROW(f->get_string("a.u8"), FormatError);   // wrong type
  EXPECT_THROW(f->get_uint("missing.key"), FormatError);
  std::remove(path.c_str());
}

TEST(Gguf, TensorsRoundTripWithAlignment) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> v(3 * 64);
  for (float& x : v) x = nd(rng);
  const Tensor t = Tensor::from_f32(v, {3, 64});
  for (uint32_t align : {32u, 64u}) {
    Writer w(align);
    w.set("general.architecture", Value::str("test"));
    const ggml::Type types[] = {ggml::Type::F32, ggml::Type::F16, ggml::Type::BF16, ggml::Type::Q8_0, ggml::Type::Q4_0,
                                ggml::Type::Q4_1, ggml::Type::Q5_0, ggml::Type::Q5_1};
    for (ggml::Type ty : types) w.add("t." + ggml::type_name(ty), t, ty);
    w.add("vec", Tensor::from_f32({1.f, 2.f, 3.f}, {3}), ggml::Type::F32);
    const std::string path = tmp_path("tensors.gguf");
    w.write(path);
    auto f = File::open(path);
    EXPECT_EQ(f->alignment(), align);
    EXPECT_EQ(f->header().data_start % align, 0u);
    for (ggml::Type ty : types) {
      const TensorInfo* ti = f->find_tensor("t." + ggml::type_name(ty));
      ASSERT_TRUE(ti);
      EXPECT_EQ(ti->ne, (std::vector<int64_t>{64, 3}));  // ggml order
      EXPECT_EQ(ti->offset % align, 0u);
      EXPECT_EQ(ti->nbytes, 3 * ggml::row_size(ty, 64));
      // Stored bytes are exactly the reference quantization, and to_f32 its dequantization.
      const std::string want = quantize_tensor(t, ty);
      ASSERT_EQ(0, std::memcmp(f->tensor_data(*ti), want.data(), want.size())) << ggml::type_name(ty);
      const Tensor back = f->to_f32(ti->name);
      EXPECT_EQ(back.shape(), (Shape{3, 64}));
      const Tensor ref = dequantize_tensor(reinterpret_cast<const uint8_t*>(want.data()), ty, {3, 64});
      EXPECT_EQ(0, std::memcmp(back.f32(), ref.f32(), 3 * 64 * 4));
      if (ty == ggml::Type::F32) {
        EXPECT_EQ(0, std::memcmp(back.f32(), v.data(), v.size() * 4));
      }
    }
    EXPECT_EQ(f->to_f32("vec").f32()[2], 3.f);
    EXPECT_THROW(f->to_f32("nope"), FormatError);
    std::remove(path.c_str());
  }
}

TEST(Gguf, WriterRefusesBadTensorsAndLeavesNothingHalfWritten) {
  Writer w;
  EXPECT_THROW(w.add("x", Tensor::from_f32(std::vector<float>(33), {33}), ggml::Type::Q8_0), ArgError);
  EXPECT_THROW(w.add(std::string(64, 'n'), Tensor::from_f32({1.f}, {1}), ggml::Type::F32), ArgError);
  w.add("ok", Tensor::from_f32({1.f}, {1}), ggml::Type::F32);
  EXPECT_THROW(w.add("ok", Tensor::from_f32({1.f}, {1}), ggml::Type::F32), ArgError);
  // A tensor whose bytes cannot be produced aborts the write: no file, no temporary left.
  w.add_lazy("boom", ggml::Type::F32, {4}, []() -> std::string { throw IoError("source vanished"); });
  const std::string path = tmp_path("half.gguf");
  EXPECT_THROW(w.write(path), IoError);
  EXPECT_FALSE(std::ifstream(path).good());
  EXPECT_FALSE(std::ifstream(path + ".tmp").good());
  EXPECT_THROW(Writer(12), ArgError);
  Writer w2;
  EXPECT_THROW(w2.set("general.alignment", Value::u32(64)), ArgError);
  EXPECT_THROW(w2.write("/nonexistent-dir/x.gguf"), IoError);
}

// A small valid file with two tensors, for the corruption tests below.
std::string sample_file(Header* h = nullptr) {
  Writer w;
  w.set("general.architecture", Value::str("llama"));
  w.set("tokenizer.ggml.tokens", Value::str_array({"a", "bc"}));
  w.set("x.bool", Value::boolean(false));
  w.add("w", Tensor::from_f32(std::vector<float>(64, 0.5f), {2, 32}), ggml::Type::Q8_0);
  w.add("n", Tensor::from_f32({1.f, 2.f}, {2}), ggml::Type::F32);
  const std::string b = w.to_bytes();
  if (h) *h = parse(b);
  return b;
}

TEST(Gguf, EveryTruncationIsAFormatError) {
  Header h;
  const std::string b = sample_file(&h);
  uint64_t end = 0;
  for (const auto& t : h.tensors) end = std::max<uint64_t>(end, h.data_start + t.offset + t.nbytes);
  for (size_t n = 0; n < b.size(); ++n) {
    const std::string cut = b.substr(0, n);
    if (n < end) {
      EXPECT_THROW(parse(cut), FormatError) << "prefix " << n;
    } else {
      EXPECT_NO_THROW(parse(cut)) << "prefix " << n;  // only trailing padding is missing
    }
  }
}

TEST(Gguf, MalformedHeadersAreRejected) {
  const std::string good = sample_file();
  const size_t kv0 = 24;  // first metadata key
  auto expect_bad = [](std::string b, const char* why) { EXPECT_THROW(parse(b), Error) << why; };

  std::string b = good;
  b[0] = 'X';
  expect_bad(b, "magic");
  b = good;
  b.replace(4, 4, u32le(1));
  EXPECT_THROW(parse(b), UnsupportedError);
  b = good;
  b.replace(4, 4, u32le(0x03000000));  // big-endian version 3
  EXPECT_THROW(parse(b), UnsupportedError);
  b = good;
  b.replace(8, 8, u64le(~0ull));
  expect_bad(b, "tensor count");
  b = good;
  b.replace(16, 8, u64le(1ull << 40));
  expect_bad(b, "kv count");
  b = good;
  b.replace(kv0, 8, u64le(~0ull >> 1));
  expect_bad(b, "key length");
  // value type of the first kv -> 13 (unknown)
  b = good;
  b.replace(kv0 + 8 + 20, 4, u32le(13));
  expect_bad(b, "value type");

  // Hand-built files for the remaining checks.
  auto file = [](const std::string& kvs, uint64_t nkv, const std::string& tinfo, uint64_t nt, size_t data = 64) {
    std::string f = "GGUF" + u32le(3) + u64le(nt) + u64le(nkv) + kvs + tinfo;
    f.append((32 - f.size() % 32) % 32, '\0');
    f.append(data, '\0');
    return f;
  };
  auto kv_bool = [](uint8_t v) { return gstr("x.b") + u32le(7) + std::string(1, char(v)); };
  auto tinfo = [](const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t off) {
    std::string s = gstr(name) + u32le(uint32_t(ne.size()));
    for (uint64_t d : ne) s += u64le(d);
    return s + u32le(type) + u64le(off);
  };
  EXPECT_NO_THROW(parse(file(kv_bool(1), 1, "", 0)));
  expect_bad(file(kv_bool(2), 1, "", 0), "bool 2");
  expect_bad(file(kv_bool(1) + kv_bool(0), 2, "", 0), "duplicate key");
  const std::string align = [](uint32_t a, uint32_t type) {
    return gstr("general.alignment") + u32le(type) + (type == 4 ? u32le(a) : u64le(a));
  }(24, 4);
  expect_bad(file(align, 1, "", 0), "alignment not a power of two");
  expect_bad(file(gstr("general.alignment") + u32le(10) + u64le(32), 1, "", 0), "alignment type");
  EXPECT_NO_THROW(parse(file("", 0, tinfo("t", {32, 1}, 0, 0), 1, 128)));
  expect_bad(file("", 0, tinfo("t", {32, 1}, 0, 0), 1, 64), "data beyond end");
  expect_bad(file("", 0, tinfo("t", {4}, 0, 16), 1), "misaligned offset");
  // found by fuzz_gguf: an empty tensor whose offset lies far beyond the file
  expect_bad(file("", 0, tinfo("t", {0, 2}, 0, 1ull << 62), 1), "empty tensor offset");
  expect_bad(file("", 0, tinfo("t", {4}, 77, 0), 1), "unknown ggml type");
  expect_bad(file("", 0, tinfo("t", {31}, 8, 0), 1), "row not a block multiple");
  expect_bad(file("", 0, tinfo("t", {1, 1, 1, 1, 1}, 0, 0), 1), "5 dims");
  expect_bad(file("", 0, tinfo("t", {1ull << 62, 1ull << 62}, 0, 0), 1), "numel overflow");
  expect_bad(file("", 0, tinfo("t", {4}, 0, 0) + tinfo("t", {4}, 0, 32), 2), "duplicate tensor");
  expect_bad(file("", 0, tinfo("a", {16}, 0, 0) + tinfo("b", {4}, 0, 32), 2), "overlap");
  // nested arrays beyond the depth limit
  std::string deep = gstr("x.deep") + u32le(9);
  for (int k = 0; k < 10; ++k) deep += u32le(9) + u64le(1);
  deep += u32le(0) + u64le(0);
  expect_bad(file(deep, 1, "", 0), "array depth");
  // an array whose declared count cannot fit in the file
  expect_bad(file(gstr("x.a") + u32le(9) + u32le(4) + u64le(1ull << 40), 1, "", 0), "array count");
}

TEST(Gguf, OpenReportsThePath) {
  const std::string path = tmp_path("garbage.gguf");
  {
    std::ofstream out(path, std::ios::binary);
    out << "GGUF\x03";
  }
  try {
    File::open(path);
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
  }
  std::remove(path.c_str());
  EXPECT_THROW(File::open(path), IoError);
}

}  // namespace
}  // namespace calq::gguf
