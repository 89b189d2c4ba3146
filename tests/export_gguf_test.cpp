// Round trips of issue item 7 (d): HF model (or fake-quant run) -> GGUF Q8_0/Q4_0 -> calq load.
// The reference is built independently in HF layout: every tensor re-quantized with ggml's
// reference quantizer and dequantized (the q/k permutation commutes with the row-wise blocks), so
// a wrong name mapping, permutation, shape order or type policy shows as a weight mismatch.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "formats/gguf_model.h"
#include "formats/gguf_names.h"
#include "formats/gguf_tokenizer.h"
#include "export_fixtures.h"
#include "io/checkpoint.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "formats/loader.h"
#include "test_util.h"
#include "util/error.h"

namespace calq::test {
namespace {

// The fake-quant model of a GGUF export: W -> dequantize(quantize_ref(W)) with the export's type
// policy, norms and biases F32.
std::unique_ptr<Decoder> requantized_reference(const std::string& model_dir, const MemoryRun* q,
                                               const GgufExportOptions& o) {
  auto ck = std::make_shared<const Checkpoint>(Checkpoint::open(model_dir));
  const ModelConfig cfg = ModelConfig::from_json(ck->config(), model_dir);
  auto src = std::make_shared<MapSource>();
  for (const auto& n : ck->names()) {
    Tensor w = ck->get(n).to(DType::F32);
    if (q && n.ends_with(".weight"))
      if (auto it = q->weights.find(n.substr(0, n.size() - 7)); it != q->weights.end()) w = it->second.dequantize();
    const auto g = hf_to_gguf_name(n);
    if (!g) {
      ADD_FAILURE() << "no GGUF name for " << n;
      continue;
    }
    const ggml::Type t = gguf_tensor_type(*g, w.dim(-1), w.ndim(), cfg.tie_embeddings, o);
    const std::string bytes = gguf::quantize_tensor(w, t);
    src->tensors[n] = gguf::dequantize_tensor(reinterpret_cast<const uint8_t*>(bytes.data()), t, w.shape());
  }
  return Decoder::from_source(cfg, src);
}


void expect_same_model(Decoder& want, Decoder& got, const std::string& model_dir) {
  auto wl = want.all_linears(true), gl = got.all_linears(true);
  ASSERT_EQ(wl.size(), gl.size());
  for (size_t i = 0; i < wl.size(); ++i) {
    EXPECT_TRUE(bitwise_equal(wl[i]->weight_f32(), gl[i]->weight_f32())) << wl[i]->name;
    if (wl[i]->bias.defined()) {
      EXPECT_TRUE(bitwise_equal(wl[i]->bias, gl[i]->bias)) << wl[i]->name << ".bias";
    }
  }
  EXPECT_TRUE(bitwise_equal(want.embed_tokens().to(DType::F32), got.embed_tokens().to(DType::F32)));
  EXPECT_EQ(want.config().sliding_window, got.config().sliding_window);
  EXPECT_EQ(want.config().rope_scaling.type, got.config().rope_scaling.type);
  const Tensor a = fixture_logits(want, model_dir), b = fixture_logits(got, model_dir);
  EXPECT_TRUE(bitwise_equal(a, b)) << "max |dlogit| " << max_abs_diff(a, b);
}

TEST(ExportGguf, PermutationKnownAnswer) {
  // One head of size 4: HF rows (r0, r1 | r2, r3) pair (0,2) and (1,3); GGUF interleaves them.
  const Tensor w = Tensor::from_f32({0, 0, 1, 1, 2, 2, 3, 3}, {4, 2});
  const Tensor p = permute_qk_to_gguf(w, 1);
  EXPECT_EQ(std::vector<float>(p.f32(), p.f32() + 8), (std::vector<float>{0, 0, 2, 2, 1, 1, 3, 3}));
  const Tensor two = permute_qk_to_gguf(Tensor::from_f32({0, 1, 2, 3, 4, 5, 6, 7}, {8}), 2);  // bias, 2 heads
  EXPECT_EQ(std::vector<float>(two.f32(), two.f32() + 8), (std::vector<float>{0, 2, 1, 3, 4, 6, 5, 7}));
  EXPECT_TRUE(bitwise_equal(permute_qk_from_gguf(p, 1), w));
  EXPECT_THROW(permute_qk_to_gguf(w, 3), ArgError);
}

TEST(ExportGguf, TypePolicy) {
  GgufExportOptions q4;
  q4.type = ggml::Type::Q4_0;
  EXPECT_EQ(gguf_tensor_type("blk.0.attn_q.weight", 64, 2, false, q4), ggml::Type::Q4_0);
  EXPECT_EQ(gguf_tensor_type("blk.0.ffn_down.weight", 172, 2, false, q4), ggml::Type::F16);  // not a block multiple
  EXPECT_EQ(gguf_tensor_type("blk.0.attn_norm.weight", 64, 1, false, q4), ggml::Type::F32);
  EXPECT_EQ(gguf_tensor_type("output.weight", 64, 2, false, q4), ggml::Type::Q8_0);
  EXPECT_EQ(gguf_tensor_type("token_embd.weight", 64, 2, false, q4), ggml::Type::Q4_0);
  EXPECT_EQ(gguf_tensor_type("token_embd.weight", 64, 2, true, q4), ggml::Type::Q8_0);  // tied: it is the output
  q4.pure = true;
  EXPECT_EQ(gguf_tensor_type("output.weight", 64, 2, false, q4), ggml::Type::Q4_0);
}

struct Case {
  const char* model;
  ggml::Type type;
};

TEST(ExportGguf, LoadEqualsRequantizedModelBitwise) {
  const Case cases[] = {
      {"models/stories260K", ggml::Type::Q8_0}, {"models/stories260K", ggml::Type::Q4_0},
      {"models/tiny/llama2", ggml::Type::Q4_0}, {"models/tiny/llama2", ggml::Type::Q8_0},
      {"models/tiny/mistral", ggml::Type::Q8_0},  // GQA + sliding window
      {"models/tiny/qwen2", ggml::Type::Q4_0},    // arch qwen2: biases, no permutation
      {"models/tiny/llama3", ggml::Type::Q8_0},   // bf16 source, tied, llama3 rope scaling
      {"models/tiny/llama2", ggml::Type::Q5_1},
  };
  int k = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.model) + " " + ggml::type_name(c.type));
    const std::string model = data(c.model);
    ScratchDir dir("gguf" + std::to_string(k++));
    GgufExportOptions o;
    o.type = c.type;
    const std::string out = dir / "m.gguf";
    export_gguf(model, out, o);
    EXPECT_EQ(detect_model_format(out), "gguf");
    auto want = requantized_reference(model, nullptr, o);
    auto got = load_dequantized(out);
    expect_same_model(*want, *got, model);
  }
}

// stories260K's weights lie on llama2.c's Q8_0 grid (int8 x fp32 scale per 32 inputs, d = amax/127
// like ggml): re-quantizing to Q8_0 reproduces them up to the fp16 rounding of d, so the GGUF model
// must match the independent float64 golden logits closely. A wrong permutation, name or shape
// order would move the logits by O(1).
TEST(ExportGguf, Stories260KQ8_0MatchesGoldenLogits) {
  const std::string model = data("models/stories260K");
  ScratchDir dir("gguf_golden");
  export_gguf(model, dir / "m.gguf");
  auto got = load_model(dir / "m.gguf");
  const auto golden = SafetensorsFile::open(path_join(model, "golden/logits.safetensors"));
  const Json j = load_json_file(path_join(model, "golden/input_ids.json"));
  double worst = 0, scale = 0;
  for (size_t i = 0; i < j.at("input_ids").size(); ++i) {
    const std::vector<int32_t> ids = j["input_ids"][i].get<std::vector<int32_t>>();
    const Tensor l = got->forward(ids.data(), 1, int64_t(ids.size())).logits;
    const Tensor g = golden->get("logits." + std::to_string(i));
    worst = std::max(worst, max_abs_diff(l.reshaped(g.shape()), g));
    scale = std::max(scale, max_abs_diff(g, Tensor::zeros(DType::F32, g.shape())));
  }
  std::printf("stories260K Q8_0 GGUF vs golden: max |dlogit| %g (max |logit| %g)\n", worst, scale);
  EXPECT_LT(worst, 0.02);
}

TEST(ExportGguf, FileContentsMatchLlamaCppConventions) {
  const std::string model = data("models/stories260K");
  ScratchDir dir("gguf_meta");
  GgufExportOptions o;
  o.type = ggml::Type::Q4_0;
  export_gguf(model, dir / "m.gguf", o);
  auto f = gguf::File::open(dir / "m.gguf");
  EXPECT_EQ(f->kv().front().key, "general.architecture");
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->get_uint("general.file_type"), 2u);  // MOSTLY_Q4_0
  EXPECT_EQ(f->get_uint("general.quantization_version"), 2u);
  EXPECT_EQ(f->get_uint("llama.block_count"), 5u);
  EXPECT_EQ(f->get_uint("llama.embedding_length"), 64u);
  EXPECT_EQ(f->get_uint("llama.feed_forward_length"), 172u);
  EXPECT_EQ(f->get_uint("llama.attention.head_count"), 8u);
  EXPECT_EQ(f->get_uint("llama.attention.head_count_kv"), 4u);
  EXPECT_EQ(f->get_uint("llama.context_length"), 512u);
  EXPECT_EQ(f->get_uint("llama.rope.dimension_count"), 8u);
  EXPECT_EQ(float(f->get_float("llama.attention.layer_norm_rms_epsilon")), 1e-5f);
  EXPECT_EQ(float(f->get_float("llama.rope.freq_base")), 10000.f);
  // Tied embeddings: no output tensor; token_embd is the output matrix, so Q8_0.
  EXPECT_EQ(f->find_tensor("output.weight"), nullptr);
  EXPECT_EQ(f->find_tensor("token_embd.weight")->type, ggml::Type::Q8_0);
  EXPECT_EQ(f->find_tensor("token_embd.weight")->ne, (std::vector<int64_t>{64, 512}));
  EXPECT_EQ(f->find_tensor("blk.0.ffn_down.weight")->type, ggml::Type::F16);
  EXPECT_EQ(f->find_tensor("blk.0.ffn_gate.weight")->type, ggml::Type::Q4_0);
  EXPECT_EQ(f->find_tensor("blk.0.ffn_gate.weight")->ne, (std::vector<int64_t>{64, 172}));
  EXPECT_EQ(f->find_tensor("blk.4.attn_norm.weight")->type, ggml::Type::F32);
  EXPECT_EQ(f->tensors().size(), 2u + 5u * 9u);
  // attn_k's stored bytes are exactly the reference quantization of the permuted HF weight (4 kv heads).
  const Checkpoint ck = Checkpoint::open(model);
  const std::string want = gguf::quantize_tensor(permute_qk_to_gguf(ck.get("model.layers.2.self_attn.k_proj.weight"), 4), ggml::Type::Q4_0);
  const gguf::TensorInfo* kt = f->find_tensor("blk.2.attn_k.weight");
  ASSERT_EQ(kt->nbytes, want.size());
  EXPECT_EQ(0, std::memcmp(f->tensor_data(*kt), want.data(), want.size()));
  // Tokenizer from tokenizer.model, as convert_hf_to_gguf.py's sentencepiece path.
  EXPECT_EQ(f->get_string("tokenizer.ggml.model"), "llama");
  const auto tokens = f->get_string_array("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 512u);
  EXPECT_EQ(tokens[1], "<s>");
  EXPECT_EQ(tokens[3], "<0x00>");
  const gguf::Value* types = f->find("tokenizer.ggml.token_type");
  ASSERT_TRUE(types);
  EXPECT_EQ(types->at(1).i, 3);    // control (added_tokens_decoder special)
  EXPECT_EQ(types->at(3).i, 6);    // byte
  EXPECT_EQ(types->at(300).i, 1);  // normal
  const auto sp = parse_sentencepiece_model(read_file(path_join(model, "tokenizer.model")), "tokenizer.model");
  ASSERT_EQ(sp.size(), 512u);
  const gguf::Value* scores = f->find("tokenizer.ggml.scores");
  EXPECT_EQ(float(scores->at(300).f), sp[300].score);
  EXPECT_EQ(tokens[300], sp[300].piece);
  EXPECT_EQ(f->get_uint("tokenizer.ggml.bos_token_id"), 1u);
  EXPECT_EQ(f->get_uint("tokenizer.ggml.eos_token_id"), 2u);
  EXPECT_TRUE(f->get_bool("tokenizer.ggml.add_bos_token"));
  // The export refuses to overwrite.
  EXPECT_THROW(export_gguf(model, dir / "m.gguf", o), ArgError);
}

TEST(ExportGguf, TokenizerJsonPaths) {
  // SentencePiece-style BPE from tokenizer.json only: scores follow the merge ranks.
  ScratchDir dir("gguf_tok");
  std::filesystem::copy_file(data("models/stories260K/tokenizer.json"), dir / "tokenizer.json");
  ModelConfig cfg;
  cfg.vocab_size = 512;
  cfg.bos_token_id = 1;
  gguf::Writer w;
  const auto warnings = add_tokenizer_metadata(w, dir.path(), cfg);
  EXPECT_TRUE(warnings.empty());
  EXPECT_EQ(w.find("tokenizer.ggml.model")->s, "llama");
  const gguf::Value* types = w.find("tokenizer.ggml.token_type");
  EXPECT_EQ(types->at(0).i, 3);  // <unk>: an added special token
  EXPECT_EQ(types->at(10).i, 6);
  const gguf::Value* scores = w.find("tokenizer.ggml.scores");
  const Json tj = load_json_file(dir / "tokenizer.json");
  const std::string first = tj["model"]["merges"][0].get<std::string>();
  const std::string merged = first.substr(0, first.find(' ')) + first.substr(first.find(' ') + 1);
  const int64_t id = tj["model"]["vocab"][merged].get<int64_t>();
  EXPECT_EQ(scores->at(size_t(id)).f, 0.0);  // rank 0 -> the highest score of any merge
  EXPECT_EQ(w.find("tokenizer.ggml.bos_token_id")->u, 1u);
  // Byte-level BPE (Llama-3 tokenizer.json): gpt2 model with merges.
  cfg.vocab_size = 128256;
  gguf::Writer w3;
  add_tokenizer_metadata(w3, data("tokenizers/llama3"), cfg);
  EXPECT_EQ(w3.find("tokenizer.ggml.model")->s, "gpt2");
  EXPECT_EQ(w3.find("tokenizer.ggml.pre")->s, "llama-bpe");
  EXPECT_EQ(w3.find("tokenizer.ggml.tokens")->size(), 128256u);
  EXPECT_GT(w3.find("tokenizer.ggml.merges")->size(), 100000u);
  EXPECT_EQ(w3.find("tokenizer.ggml.token_type")->at(128000).i, 3);  // <|begin_of_text|>
  // Too many tokens for the model's embeddings: no tokenizer metadata, a warning.
  cfg.vocab_size = 1000;
  gguf::Writer w4;
  EXPECT_FALSE(add_tokenizer_metadata(w4, data("tokenizers/llama3"), cfg).empty());
  EXPECT_EQ(w4.find("tokenizer.ggml.tokens"), nullptr);
}

TEST(ExportGguf, FromAFakeQuantRun) {
  const std::string model = data("models/stories260K");
  const MemoryRun q = rtn_quantize_model(model, {4, 32, false, false});
  ScratchDir dir("gguf_q");
  GgufExportOptions o;
  o.type = ggml::Type::Q8_0;
  // A second quantization only when asked for; nothing is written when refused.
  const QuantState qs = dir.state(q);
  try {
    export_gguf(qs, dir / "m.gguf", o);
    FAIL() << "re-quantized without requantize";
  } catch (const ArgError& e) {
    EXPECT_NE(std::string(e.what()).find("rtn 4-bit g32"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--requantize"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "m.gguf"));
  o.requantize = true;
  const ExportReport rep = export_gguf(qs, dir / "m.gguf", o);
  EXPECT_EQ(rep.quantized, int64_t(q.weights.size()));
  auto want = requantized_reference(model, &q, o);
  auto got = load_dequantized(dir / "m.gguf");
  expect_same_model(*want, *got, model);
  // Sanity: Q8_0 of the 4-bit fake-quant model stays close to the fake-quant model itself.
  auto fq = fake_quant_decoder(q);
  const Tensor lf = fixture_logits(*fq, model), lg = fixture_logits(*got, model);
  const double scale = max_abs_diff(lf, Tensor::zeros(DType::F32, lf.shape()));
  std::printf("fake-quant vs its Q8_0 GGUF: max |dlogit| %g of max |logit| %g\n", max_abs_diff(lf, lg), scale);
  EXPECT_LT(max_abs_diff(lf, lg), 0.05 * scale);
}

// F32 holds the fake-quant weights exactly: no requantize needed, and the loaded model is the
// fake-quant model bitwise.
TEST(ExportGguf, F32FromARunIsTheFakeQuantModel) {
  const std::string model = data("models/tiny/llama2");
  const MemoryRun q = rtn_quantize_model(model, {3, 32, false, false});
  ScratchDir dir("gguf_f32");
  GgufExportOptions o;
  o.type = ggml::Type::F32;
  const ExportReport rep = export_gguf(dir.state(q), dir / "m.gguf", o);
  EXPECT_EQ(rep.quantized, int64_t(q.weights.size()));
  auto fq = fake_quant_decoder(q);
  auto got = load_model(dir / "m.gguf");
  const Tensor a = fixture_logits(*fq, model), b = fixture_logits(*got, model);
  EXPECT_TRUE(bitwise_equal(a, b)) << "max |dlogit| " << max_abs_diff(a, b);
}

TEST(ExportGguf, BadFilesGiveOneLineErrors) {
  const std::string model = data("models/tiny/llama2");
  ScratchDir dir("gguf_bad");
  export_gguf(model, dir / "m.gguf");
  const std::string bytes = read_file(dir / "m.gguf");
  write_file_atomic(dir / "cut.gguf", bytes.substr(0, bytes.size() / 2));
  try {
    load_model(dir / "cut.gguf");
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("cut.gguf"), std::string::npos);
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
  }
  // A GGUF of an architecture calq does not run.
  gguf::Writer w;
  w.set("general.architecture", gguf::Value::str("falcon"));
  w.write(dir / "falcon.gguf");
  EXPECT_THROW(load_model(dir / "falcon.gguf"), UnsupportedError);
  // A GGUF missing a metadata key.
  gguf::Writer w2;
  w2.set("general.architecture", gguf::Value::str("llama"));
  w2.add("token_embd.weight", Tensor::zeros(DType::F32, {4, 32}), ggml::Type::F32);
  w2.write(dir / "nokeys.gguf");
  try {
    load_model(dir / "nokeys.gguf");
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("llama.embedding_length"), std::string::npos) << e.what();
  }
  // OPT has no llama.cpp layout in calq.
  EXPECT_THROW(export_gguf(data("models/tiny/opt"), dir / "opt.gguf"), UnsupportedError);
  EXPECT_FALSE(file_exists(dir / "opt.gguf"));
}

}  // namespace
}  // namespace calq::test
