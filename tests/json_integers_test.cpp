// Integers read from JSON are JSON integers within the range of what they count: an oversized
// value (2^32 + 2 layers), a fraction (2.9) or a float-typed whole number (2.0, 1e3) is refused
// with an error naming the field and the file, never narrowed, rounded or wrapped. Before the
// checked accessors (util/json.h), num_hidden_layers 2^32 + 2 loaded as 2 and 2.9 as 2.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "calib/calib_set.h"
#include "eval/task_data.h"
#include "formats/gguf_model.h"
#include "formats/load_quantized.h"
#include "io/content_hash.h"
#include "io/gguf.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "observe/act_stats.h"
#include "test_util.h"
#include "util/error.h"
#include "util/json.h"

namespace calq {
namespace {

// JSON literals that are not valid integer field values, and why.
const char* const kBadLiterals[] = {
    "4294967298",              // 2^32 + 2: was read as 2
    "4294967360",              // 2^32 + 64: was read as 64
    "1099511627776",           // 2^40: was read as 0
    "18446744073709551616",    // 2^64: beyond 64 bits, a double in nlohmann
    "2.9",                     // was read as 2
    "2.0",                     // a float, not an integer
    "1e3",                     // likewise
};

// Runs f, expects E with every needle in its one-line message.
template <class E, class F>
void expect_error(F f, std::initializer_list<std::string> needles) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one naming " << *needles.begin();
  } catch (const E& e) {
    const std::string m = e.what();
    for (const auto& n : needles) EXPECT_NE(m.find(n), std::string::npos) << "'" << n << "' not in: " << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
}

TEST(JsonIntegers, ProblemsAreNamedExactly) {
  auto p = [](const char* lit, int64_t lo, int64_t hi) { return json_int_problem(Json::parse(lit), lo, hi); };
  EXPECT_EQ(p("7", 1, 100000), "");
  EXPECT_EQ(p("-1", -1, 5), "");
  EXPECT_EQ(p("4294967298", 1, 100000), "= 4294967298 is out of range [1, 100000]");
  EXPECT_EQ(p("0", 1, 100000), "= 0 is out of range [1, 100000]");
  EXPECT_EQ(p("-3", 0, 10), "= -3 is out of range [0, 10]");
  EXPECT_EQ(p("2.9", 1, 100000), "must be an integer (no fraction or exponent), got 2.9");
  EXPECT_EQ(p("2.0", 1, 100000), "must be an integer (no fraction or exponent), got 2.0");
  EXPECT_EQ(p("1e3", 1, 100000), "must be an integer (no fraction or exponent), got 1000.0");
  EXPECT_EQ(p("1e12", 1, 100000), "= 1000000000000.0 is out of range [1, 100000]");
  EXPECT_EQ(p("18446744073709551616", 0, INT64_MAX),
            "= 1.8446744073709552e+19 is out of range [0, 9223372036854775807]");
  EXPECT_EQ(p("\"12\"", 0, 100), "has the wrong type (string), expected an integer");
  EXPECT_EQ(p("5", 0, -1), "= 5 is out of range [0, -1]");  // an empty range admits nothing
  EXPECT_EQ(json_uint_problem(Json::parse("18446744073709551615"), UINT64_MAX), "");
  EXPECT_EQ(json_uint_problem(Json::parse("-1"), UINT64_MAX), "= -1 is out of range [0, 18446744073709551615]");
}

TEST(JsonIntegers, TypedGettersNeverNarrow) {
  const Json j = Json::parse(R"({"a": 4294967298, "b": 2.9, "c": 2.0, "d": -1, "e": 7, "f": 300})");
  for (const char* k : {"a", "b", "c"}) expect_error<ConfigError>([&] { json_get<int>(j, k, "x.json"); }, {"x.json", k});
  expect_error<ConfigError>([&] { json_get<size_t>(j, "d", "x.json"); }, {"x.json", "'d' = -1 is out of range"});
  expect_error<ConfigError>([&] { json_get<uint8_t>(j, "f", "x.json"); }, {"'f' = 300 is out of range [0, 255]"});
  expect_error<ConfigError>([&] { json_get_or<int>(j, "b", 0, "x.json"); }, {"'b' must be an integer"});
  EXPECT_EQ(json_get<int>(j, "e", "x.json"), 7);
  EXPECT_EQ(json_get<int64_t>(j, "a", "x.json"), 4294967298);
  EXPECT_EQ(json_get_or<int>(j, "missing", 5, "x.json"), 5);
  EXPECT_EQ(json_get_int(j, "e", "x.json", 1, 7), 7);
  expect_error<ConfigError>([&] { json_get_int(j, "e", "x.json", 1, 6); }, {"'e' = 7 is out of range [1, 6]"});
}

// ---- config.json ---------------------------------------------------------------------------------

Json tiny_config(const std::string& arch) { return load_json_file(test::data("models/tiny/" + arch + "/config.json")); }

TEST(JsonIntegers, ConfigJsonFieldsAreRangeChecked) {
  struct Case {
    std::string arch;
    std::vector<std::string> path;  // the field, nested keys in order
  };
  const std::vector<Case> cases = {
      {"llama2", {"vocab_size"}},           {"llama2", {"hidden_size"}},
      {"llama2", {"intermediate_size"}},    {"llama2", {"num_hidden_layers"}},
      {"llama2", {"num_attention_heads"}},  {"llama2", {"num_key_value_heads"}},
      {"llama2", {"head_dim"}},             {"llama2", {"max_position_embeddings"}},
      {"llama2", {"bos_token_id"}},         {"llama2", {"eos_token_id"}},
      {"mistral", {"sliding_window"}},      {"qwen2", {"max_window_layers"}},
      {"opt", {"ffn_dim"}},                 {"opt", {"word_embed_proj_dim"}},
      {"cohere", {"num_hidden_layers"}},    {"llama3", {"rope_scaling", "original_max_position_embeddings"}},
  };
  for (const auto& c : cases) {
    for (const char* lit : kBadLiterals) {
      Json j = tiny_config(c.arch);
      if (c.arch == "qwen2") j["use_sliding_window"] = true;
      Json* field = &j;
      for (const auto& k : c.path) field = &(*field)[k];
      *field = Json::parse(lit);
      SCOPED_TRACE(c.arch + " " + c.path.back() + " = " + lit);
      expect_error<ConfigError>([&] { ModelConfig::from_json(j, "dir/config.json"); },
                                {"dir/config.json", "field '" + c.path.back() + "'"});
    }
  }
  // An eos list names the entry; 2^40 layers is out of range, not "must be positive".
  Json j = tiny_config("llama2");
  j["eos_token_id"] = Json::parse("[2, 4294967298]");
  expect_error<ConfigError>([&] { ModelConfig::from_json(j, "c.json"); }, {"c.json", "'eos_token_id[1]' = 4294967298"});
  j = tiny_config("llama2");
  j["num_hidden_layers"] = Json::parse("1099511627776");
  expect_error<ConfigError>([&] { ModelConfig::from_json(j, "c.json"); },
                            {"'num_hidden_layers' = 1099511627776 is out of range [1, 100000]"});
  // The boundaries themselves load.
  j = tiny_config("llama2");
  j["bos_token_id"] = -1;
  j["max_position_embeddings"] = int64_t(1) << 26;
  EXPECT_EQ(ModelConfig::from_json(j, "c.json").max_position, 1 << 26);
}

TEST(JsonIntegers, CliNamesTheConfigField) {
  const std::string dir = test::temp_path("json_ints", "model");
  std::filesystem::create_directories(dir);
  Json j = tiny_config("llama2");
  j["hidden_size"] = Json::parse("4294967360");
  std::ofstream(dir + "/config.json") << j.dump();
  std::filesystem::copy_file(test::data("models/tiny/llama2/model.safetensors"), dir + "/model.safetensors",
                             std::filesystem::copy_options::overwrite_existing);
  std::string out;
  EXPECT_EQ(test::run_command(test::cli() + " inspect " + dir, &out), 1);
  EXPECT_EQ(out.rfind("calq: error: " + dir + "/config.json: field 'hidden_size' = 4294967360 is out of range", 0), 0u)
      << out;
  std::filesystem::remove_all(dir);
}

TEST(JsonIntegers, QuantizationConfigFields) {
  const Json gptq = Json::parse(R"({"quant_method": "gptq", "bits": 4, "group_size": 128})");
  EXPECT_EQ(PackedFormat::from_config(gptq, "q/config.json").group_size, 128);
  for (const char* k : {"bits", "group_size"})
    for (const char* lit : {"4294967300", "4.0", "128.5"}) {
      Json q = gptq;
      q[k] = Json::parse(lit);
      expect_error<ConfigError>([&] { PackedFormat::from_config(q, "q/config.json"); },
                                {"q/config.json quantization_config", std::string("'") + k + "'"});
    }
}

// ---- GGUF metadata turned into a config ----------------------------------------------------------

TEST(JsonIntegers, GgufCountsBeyondTheConfigRangeAreNamed) {
  using gguf::Value;
  const std::string path = test::temp_path("json_ints", "big.gguf");
  gguf::Writer w;
  w.set("general.architecture", Value::str("llama"));
  w.set("llama.embedding_length", Value::u32(8));
  w.set("llama.attention.head_count", Value::u32(2));
  w.set("llama.feed_forward_length", Value::u32(16));
  w.set("llama.block_count", Value::u64((uint64_t(1) << 32) + 2));  // was loaded as 2 layers
  w.set("llama.attention.layer_norm_rms_epsilon", Value::f32(1e-5f));
  w.add("token_embd.weight", Tensor::zeros(DType::F32, {4, 8}), ggml::Type::F32);
  w.write(path);
  expect_error<ConfigError>([&] { load_gguf_model(path); }, {path, "'num_hidden_layers' = 4294967298 is out of range"});
  w.set("llama.block_count", Value::u64(UINT64_MAX));  // was -1: "must be positive"
  w.write(path);
  expect_error<ConfigError>([&] { load_gguf_model(path); }, {path, "'num_hidden_layers' = 18446744073709551615"});
  std::remove(path.c_str());
}

// ---- calibration sets and statistics files ------------------------------------------------------

// Rewrites the safetensors file at `path` with metadata `key` replaced by `value`.
// Replaces one metadata entry. A file that carries a content hash (statistics) gets a fresh, valid
// one: the range checks must hold for a file whose hash is right (a foreign or faulty writer).
void rewrite_metadata(const std::string& path, const std::string& key, const std::string& value) {
  SafetensorsWriter w;
  {
    auto f = SafetensorsFile::open(path);
    std::map<std::string, Tensor> tensors;
    std::map<std::string, std::string> meta;
    for (const auto& t : f->tensors()) tensors[t.name] = f->get(t.name).clone();
    for (const auto& [k, v] : f->metadata()) meta[k] = k == key ? value : v;
    if (meta.count(kContentHashKey)) {
      add_with_content_hash(w, tensors, meta);
    } else {
      for (const auto& [n, t] : tensors) w.add(n, t);
      for (const auto& [k, v] : meta) w.set_metadata(k, v);
    }
  }
  w.write(path);
}

TEST(JsonIntegers, CalibrationManifestCounts) {
  const std::string path = test::temp_path("json_ints", "calib.safetensors");
  save_calib_set(test::lcg_calib_set(2, 8, 0, 100, 7), path);
  const Json good = load_calib_set(path).manifest;
  EXPECT_EQ(good["nsamples"], 2);
  for (const char* key : {"nsamples", "seqlen", "tokens"})
    for (const char* lit : {"4294967298", "2.0", "2.9", "18446744073709551616", "-1"}) {
      Json m = good;
      m[key] = Json::parse(lit);
      rewrite_metadata(path, "manifest", m.dump());
      SCOPED_TRACE(std::string(key) + " = " + lit);
      expect_error<FormatError>([&] { load_calib_set(path); }, {path + " (manifest)", std::string("'") + key + "'"});
    }
  Json m = good;
  m["seqlen"] = 9;  // an integer, but not the tensors' shape
  rewrite_metadata(path, "manifest", m.dump());
  expect_error<FormatError>([&] { load_calib_set(path); }, {"'seqlen' = 9 does not match the tensors (8)"});
  m = good;
  m["seed"] = Json::parse("2.5");
  rewrite_metadata(path, "manifest", m.dump());
  expect_error<FormatError>([&] { load_calib_set(path); }, {"'seed' must be an integer"});
  m["seed"] = Json::parse("18446744073709551615");  // the whole u64 range is a valid seed
  rewrite_metadata(path, "manifest", m.dump());
  EXPECT_EQ(load_calib_set(path).manifest["seed"].get<uint64_t>(), UINT64_MAX);
  std::remove(path.c_str());
}

ActStats small_stats() {
  ActStats s;
  s.meta = {{"model", {{"model_type", "llama"}, {"num_layers", 2}, {"hidden_size", 4}, {"config_sha256", "x"}}},
            {"thresholds", {6.0, 20.0}},
            {"topn", 4},
            {"samples", 3},
            {"tokens", 12.0},
            {"sources", Json::array({{{"calib", {{"seqlen", 4}, {"nsamples", 3}}}, {"range", {0, 3}}}})}};
  TensorStats t;
  t.name = "model.layers.1.mlp.down_proj";
  t.modules = {t.name};
  t.kind = "mlp_out";
  t.layer = 1;
  t.init(4);
  t.count = 12;
  s.tensors.push_back(t);
  StatsSnapshot sn;
  sn.samples = 1;
  sn.tokens = 4;
  sn.sum2 = {std::vector<double>(4, 1.0)};
  sn.absmax = {std::vector<float>(4, 1.0f)};
  s.snapshots.push_back(sn);
  return s;
}

TEST(JsonIntegers, StatisticsHeaderIntegers) {
  const std::string path = test::temp_path("json_ints", "stats.safetensors");
  save_stats(small_stats(), path);
  const std::string head = SafetensorsFile::open(path)->metadata().at("stats");
  EXPECT_EQ(load_stats(path).topn(), 4);
  const std::vector<std::pair<std::string, std::string>> fields = {
      {"/topn", "topn"},
      {"/samples", "samples"},
      {"/model/num_layers", "model.num_layers"},
      {"/model/hidden_size", "model.hidden_size"},
      {"/sources/0/range/1", "sources[0].range[1]"},
      {"/sources/0/calib/seqlen", "sources[0].calib.seqlen"},
      {"/tensors/0/layer", "layer"},
      {"/tensors/0/cols", "cols"},
      {"/tensors/0/top", "top"},
      {"/snapshots/0/samples", "samples"},
  };
  for (const auto& [pointer, name] : fields)
    for (const char* lit : {"2199023255552", "18446744073709551616", "4.0", "2.5"}) {  // 2^41: beyond every count
      Json j = Json::parse(head);
      j[Json::json_pointer(pointer)] = Json::parse(lit);
      rewrite_metadata(path, "stats", j.dump());
      SCOPED_TRACE(pointer + " = " + lit);
      expect_error<FormatError>([&] { load_stats(path); }, {path + " (stats header)", "'" + name + "'"});
    }
  std::remove(path.c_str());
}

// ---- safetensors headers -----------------------------------------------------------------------

SafetensorsHeader parse_st(const std::string& header_json, size_t data_bytes) {
  std::string b(8, '\0');
  const uint64_t n = header_json.size();
  std::memcpy(b.data(), &n, 8);
  b += header_json;
  b.append(data_bytes, '\0');
  return parse_safetensors_header(reinterpret_cast<const uint8_t*>(b.data()), b.size(), "m.safetensors");
}

TEST(JsonIntegers, SafetensorsShapesAndOffsets) {
  auto entry = [](const std::string& dtype, const std::string& shape, const std::string& offsets) {
    return R"({"w": {"dtype": ")" + dtype + R"(", "shape": )" + shape + R"(, "data_offsets": )" + offsets + "}}";
  };
  EXPECT_EQ(parse_st(entry("F32", "[2, 3]", "[0, 24]"), 24).tensors.at(0).shape, (Shape{2, 3}));
  for (const char* lit : {"2.0", "2.9", "18446744073709551616", "-2", "4611686018427387905"})
    expect_error<FormatError>([&] { parse_st(entry("F32", std::string("[") + lit + ", 3]", "[0, 24]"), 24); },
                              {"m.safetensors: tensor 'w'", "'shape[0]'"});
  for (const char* lit : {"24.0", "1e1", "-24", "18446744073709551616"})
    expect_error<FormatError>([&] { parse_st(entry("F32", "[2, 3]", std::string("[0, ") + lit + "]"), 24); },
                              {"m.safetensors: tensor 'w'", "'data_offsets[1]'"});
  // numel * 8 wrapped to 0 for F64 [2^61], so this 0-byte entry passed as a 2^61-element tensor.
  expect_error<FormatError>([&] { parse_st(entry("F64", "[2305843009213693952]", "[0, 0]"), 0); },
                            {"tensor 'w'", "overflows"});
  // A zero dimension kept the element count 0 while 2^64 - 1 became the dimension -1.
  expect_error<FormatError>([&] { parse_st(entry("F32", "[0, 18446744073709551615]", "[0, 0]"), 0); },
                            {"tensor 'w'", "'shape[1]' = 18446744073709551615 is out of range"});
}

// ---- task files --------------------------------------------------------------------------------

TEST(JsonIntegers, TaskLabels) {
  const std::string dir = test::temp_path("json_ints", "tasks");
  std::filesystem::create_directories(dir);
  const std::string f = dir + "/hellaswag_val_1000.jsonl";
  auto with_label = [&](const std::string& label) {
    std::ofstream(f, std::ios::binary | std::ios::trunc)
        << R"({"activity_label": "A", "ctx_a": "x", "ctx_b": "y", "endings": ["1", "2"], "label": )" << label << "}\n";
  };
  with_label("\"99999999999999999999\"");  // std::stoll threw std::out_of_range, not a calq error
  expect_error<FormatError>([&] { eval::load_task("hellaswag", dir); }, {f + ":1", "'label'"});
  with_label("1.0");  // was read as 1
  expect_error<FormatError>([&] { eval::load_task("hellaswag", dir); }, {f + ":1", "'label' must be an integer"});
  with_label("4294967297");  // was read as 1
  expect_error<FormatError>([&] { eval::load_task("hellaswag", dir); }, {f + ":1", "'label'"});
  with_label("\"1\"");
  EXPECT_EQ(eval::load_task("hellaswag", dir).docs.size(), 1u);
  std::filesystem::remove_all(dir);
}

TEST(JsonIntegers, LogitsInputIds) {
  const std::string ids = test::temp_path("json_ints", "ids.json");
  const std::string out = test::temp_path("json_ints", "logits.safetensors");
  std::ofstream(ids) << R"({"input_ids": [[1, 4294967297]]})";  // was read as token 1
  std::string msg;
  EXPECT_EQ(test::run_command(test::cli() + " logits " + test::data("models/tiny/llama2") + " --ids " + ids + " -o " + out, &msg), 1);
  EXPECT_EQ(msg.rfind("calq: error: " + ids + ": input_ids entries must be integers: field 'input_ids' = 4294967297 is out of range", 0), 0u) << msg;
  EXPECT_FALSE(std::filesystem::exists(out));
  std::remove(ids.c_str());
}

}  // namespace
}  // namespace calq
