// Non-finite values are never silent: a NaN/inf weight is named (tensor and file) when the model
// loads, whatever its dtype and family; activations that go non-finite stop the forward pass naming
// the layer and the first module; the logits are checked last. (Quantizers: quant_nonfinite_test.)
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "formats/gguf_model.h"
#include "formats/loader.h"
#include "io/gguf.h"
#include "model/decoder.h"
#include "quant/act_quant.h"
#include "test_util.h"
#include "util/error.h"

namespace calq {
namespace {

namespace fs = std::filesystem;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

void set_value(Tensor& t, int64_t flat, float v) {
  convert_from_f32(&v, t.dtype(), static_cast<uint8_t*>(t.raw_mut()) + size_t(flat) * dtype_size(t.dtype()), 1);
}

template <class E = NonFiniteError, class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

void expect_has(const std::string& msg, std::initializer_list<std::string> needles) {
  for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

TEST(NonFinite, FindNonFiniteEveryDtype) {
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::F64}) {
    for (size_t n : {size_t(1), size_t(37), size_t(8192), size_t(8193), size_t(3) << 19}) {  // one block .. parallel
      Tensor x = Tensor::zeros(t, {int64_t(n)});
      for (size_t i = 0; i < n; i += 7) set_value(x, int64_t(i), float(i % 13) - 6.5f);
      // The largest finite values are finite; subnormals too.
      const float big = t == DType::F16 ? 65504.0f : t == DType::BF16 ? bf16_to_f32(0x7f7f) : std::numeric_limits<float>::max();
      set_value(x, 0, big);
      if (n > 1) set_value(x, 1, t == DType::F16 ? 6e-8f : 1e-40f);
      EXPECT_EQ(find_non_finite(x), -1) << dtype_name(t) << " n=" << n;
      for (float bad : {kNaN, kInf, -kInf}) {
        const int64_t at = int64_t(n) - 1 - int64_t(n / 3);
        Tensor y = x.clone();
        set_value(y, at, bad);
        if (at + 1 < int64_t(n)) set_value(y, int64_t(n) - 1, kNaN);  // a later one does not count
        EXPECT_EQ(find_non_finite(y), at) << dtype_name(t) << " n=" << n << " " << bad;
        EXPECT_STREQ(non_finite_kind(y.raw(), t, size_t(at)), bad != bad ? "NaN" : bad > 0 ? "+inf" : "-inf");
      }
    }
  }
  EXPECT_EQ(describe_non_finite(Tensor::from_f32({1, 2, kNaN, 4, 5, 6}, {2, 3}), 2), "NaN at [0, 2] of F32 [2, 3]");
}

// Every family and float dtype: a NaN in a projection and an inf in a norm are named at load, with
// the tensor and the file (before: all-NaN logits with exit 0).
TEST(NonFinite, WeightsAreCheckedAtLoad) {
  const std::string root = test::temp_path("nonfinite", "load");
  for (const auto& arch : test::tiny_archs())
    for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
      const std::string src = test::data("models/tiny/" + arch);
      const std::string dir = root + "/" + arch + "_" + dtype_name(dt);
      std::string proj, norm;
      for (const auto& n : Checkpoint::open(src).names()) {
        if (proj.empty() && n.find(".layers.1.") != std::string::npos && n.find("v_proj.weight") != std::string::npos)
          proj = n;
        if (norm.empty() && n.find(".layers.0.") != std::string::npos && n.find("layernorm.weight") != std::string::npos)
          norm = n;
        if (norm.empty() && n.find(".layers.0.") != std::string::npos && n.find("layer_norm.weight") != std::string::npos)
          norm = n;
      }
      ASSERT_FALSE(proj.empty()) << arch;
      ASSERT_FALSE(norm.empty()) << arch;
      test::write_model_copy(src, dir, dt, [&](const std::string& n, Tensor& t) {
        if (n == proj) set_value(t, 5, kNaN);
      });
      std::string m = error_of([&] { load_model(dir); });
      expect_has(m, {proj, dir + "/model.safetensors", "NaN at [0, 5]"});
      test::write_model_copy(src, dir, dt, [&](const std::string& n, Tensor& t) {
        if (n == norm) set_value(t, 3, -kInf);
      });
      m = error_of([&] { load_model(dir); });
      expect_has(m, {norm, "-inf at [3]"});
    }
  fs::remove_all(root);
}

// GGUF: an F32 norm and the f16 block scale of a Q8_0 weight (which dequantizes a whole block to NaN)
// are named with the file and both names (GGUF and Hugging Face).
TEST(NonFinite, GgufTensorsAreCheckedAtLoad) {
  const std::string dir = test::temp_path("nonfinite", "gguf");
  fs::create_directories(dir);
  const std::string good = dir + "/good.gguf";
  export_gguf(test::data("models/stories260K"), good);
  const std::string bytes = read_file(good);
  const gguf::Header h =
      gguf::parse_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), good);
  auto patched = [&](const std::string& tensor, size_t at, const std::string& with) {
    for (const auto& ti : h.tensors)
      if (ti.name == tensor) {
        std::string b = bytes;
        b.replace(size_t(h.data_start + ti.offset) + at, with.size(), with);
        const std::string out = dir + "/" + tensor + ".gguf";
        write_file_atomic(out, b);
        return out;
      }
    ADD_FAILURE() << "no tensor " << tensor;
    return std::string();
  };
  const float nan = kNaN;
  std::string path = patched("blk.1.attn_norm.weight", 8, std::string(reinterpret_cast<const char*>(&nan), 4));
  expect_has(error_of([&] { load_model(path); }),
             {path, "blk.1.attn_norm.weight", "model.layers.1.input_layernorm.weight", "NaN at [2]"});
  const uint16_t f16_inf = 0x7c00;  // the first Q8_0 block's scale d
  path = patched("blk.0.attn_v.weight", 0, std::string(reinterpret_cast<const char*>(&f16_inf), 2));
  expect_has(error_of([&] { load_model(path); }), {path, "blk.0.attn_v.weight", "model.layers.0.self_attn.v_proj"});
  // A quantized embedding table (Q8_0 here) is dequantized row by row on lookup, never as a whole:
  // its block scales are checked at load too (block 5: row 0 holds 64 / 32 = 2 blocks).
  path = patched("token_embd.weight", 5 * 34, std::string(reinterpret_cast<const char*>(&f16_inf), 2));
  expect_has(error_of([&] { load_model(path); }),
             {path, "token_embd.weight", "model.embed_tokens.weight", "non-finite block scale", "block 5"});
  fs::remove_all(dir);
}

// Activations: weights changed after load (as a method would) that overflow or are NaN stop the
// forward pass, naming the layer and the module whose output first went non-finite.
TEST(NonFinite, ActivationsNameLayerAndModule) {
  auto m = Decoder::load(test::data("models/tiny/llama2"));
  const std::vector<int32_t> ids = {1, 5, 9, 14, 3, 7, 11, 2};
  const Tensor ok = m->forward(ids.data(), 2, 4).logits;
  EXPECT_EQ(find_non_finite(ok), -1);

  Linear& up = m->layer(1).up;
  const Tensor keep = up.weight();
  Tensor w = f32_copy(keep);
  w.f32_mut()[7] = kNaN;
  up.set_weight(w);
  std::string msg = error_of([&] { m->forward(ids.data(), 2, 4); });
  expect_has(msg, {"layer 1 (model.layers.1)", "the output of model.layers.1.mlp.up_proj"});
  // The same through the layer-wise entry points (the quantization pipeline's).
  Tensor x = m->embed(ids.data(), 2, 4);
  m->run_layer(0, x, 2, 4);
  msg = error_of([&] { m->layer_forward(1, x, 2, 4); });
  expect_has(msg, {"layer 1 (model.layers.1)", "the output of model.layers.1.mlp.up_proj"});
  up.set_weight(keep);

  // Finite but huge q and k weights (finite q and k): the scores q·k overflow, the softmax returns NaN.
  Linear& q = m->layer(0).q;
  Linear& kp = m->layer(0).k;
  const Tensor qkeep = q.weight(), kkeep = kp.weight();
  for (Linear* l : {&q, &kp}) {
    Tensor big = f32_copy(l->weight());
    for (int64_t k = 0; k < big.numel(); ++k) big.f32_mut()[k] *= 1e30f;
    l->set_weight(big);
  }
  msg = error_of([&] { m->forward(ids.data(), 2, 4); });
  expect_has(msg, {"layer 0 (model.layers.0)"});
  EXPECT_TRUE(msg.find("the self-attention of model.layers.0.self_attn") != std::string::npos) << msg;
  q.set_weight(qkeep);
  kp.set_weight(kkeep);

  // lm_head: checked on the logits.
  Linear& head = m->lm_head();
  const Tensor hkeep = head.weight();
  Tensor hw = f32_copy(hkeep);
  hw.f32_mut()[0] = kInf;
  head.set_weight(hw);
  msg = error_of([&] { m->forward(ids.data(), 2, 4); });
  expect_has(msg, {"non-finite logits", "the output of lm_head"});
  head.set_weight(hkeep);
  EXPECT_EQ(find_non_finite(m->forward(ids.data(), 2, 4).logits), -1);
}

// W8A8 activation quantizers refuse a non-finite input (before: NaN rows passed through, an inf was
// clamped to a finite code); the Linear running one names its module.
TEST(NonFinite, ActivationQuantizersNameTheModule) {
  std::vector<float> x = {1, 2, 3, 4, 5, kInf, 7, 8};
  std::string msg = error_of([&] { PerTokenActQuant(8).apply(x.data(), 2, 4); });
  expect_has(msg, {"input row 1", "+inf at [0, 1]"});
  msg = error_of([&] { PerTensorStaticActQuant(8, 0.1f).apply(x.data(), 2, 4); });
  expect_has(msg, {"+inf"});
  auto m = Decoder::load(test::data("models/tiny/llama2"));
  Linear& up = m->layer(0).up;
  up.input_transform = std::make_shared<PerTokenActQuant>(8);
  std::vector<float> in(size_t(up.in) * 2, 0.5f), out(size_t(up.out) * 2);
  in[3] = kNaN;
  msg = error_of([&] { linear_forward(up, in.data(), 2, out.data(), ComputeType::F32); });
  expect_has(msg, {"model.layers.0.mlp.up_proj", "NaN"});
}

// The command line: one `calq: error:` line naming the tensor, exit 1, for logits, stats and eval.
TEST(NonFinite, CommandLineNamesTheTensor) {
  const std::string dir = test::temp_path("nonfinite", "cli");
  const std::string src = test::data("models/stories260K");
  test::write_model_copy(src, dir, DType::BF16, [&](const std::string& n, Tensor& t) {
    if (n == "model.layers.2.mlp.down_proj.weight") set_value(t, 100, kNaN);
  });
  std::string out;
  const std::string ids = dir + "/ids.json";
  write_file_atomic(ids, "{\"input_ids\": [[1, 2, 3, 4]]}");
  EXPECT_EQ(test::run_command(test::cli() + " logits " + dir + " --ids " + ids + " -o " + dir + "/l.safetensors", &out),
            1);
  expect_has(out.substr(0, out.size() - 1), {"calq: error:", "model.layers.2.mlp.down_proj.weight", "NaN"});
  EXPECT_FALSE(fs::exists(dir + "/l.safetensors"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace calq
