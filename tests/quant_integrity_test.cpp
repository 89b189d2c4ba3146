// Integrity of what calq reads back: statistics files and quantization-state files carry a content
// hash (io/content_hash.h), verified on load. Before, flipped bytes in a statistics file silently
// changed outliers/imatrix/compare output, and a layer file with one scale multiplied by 8 was
// resumed and exported silently.
#include <gtest/gtest.h>

#include <filesystem>

#include "io/content_hash.h"
#include "observe/stats_runner.h"
#include "quant_test_util.h"
#include "util/error.h"

namespace calq {
namespace {

namespace fs = std::filesystem;

template <class F>
std::string format_error_of(F&& f) {
  try {
    f();
  } catch (const FormatError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no FormatError";
  return "";
}

void expect_has(const std::string& msg, std::initializer_list<std::string> needles) {
  for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
}

// Rewrites a safetensors file with `edit` applied to copies of its tensors and metadata (the stored
// content hash is kept as it was unless `edit` changes it).
void rewrite(const std::string& path, const std::function<void(std::map<std::string, Tensor>&,
                                                              std::map<std::string, std::string>&)>& edit) {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> meta;
  {
    auto f = SafetensorsFile::open(path);
    for (const auto& ti : f->tensors()) tensors[ti.name] = f->get(ti.name).clone();
    meta = f->metadata();
  }
  edit(tensors, meta);
  SafetensorsWriter w;
  for (const auto& [n, t] : tensors) w.add(n, t);
  for (const auto& [k, v] : meta) w.set_metadata(k, v);
  w.write(path);
}

TEST(Integrity, StatisticsFilesAreVerified) {
  test::TempDir t("istats");
  auto m = Decoder::load(test::tiny("llama2"));
  const CalibSet set = test::lcg_calib_set(2, 8, 3, 120, 1);
  save_stats(collect_stats(*m, set, StatsRunOptions{}), t / "s.safetensors");
  const ActStats good = load_stats(t / "s.safetensors");
  const std::string bytes = read_file(t / "s.safetensors");

  // One flipped bit in the tensor data (the last bytes of the file).
  std::string flipped = bytes;
  flipped[flipped.size() - 3] ^= 0x10;
  write_file_atomic(t / "s.safetensors", flipped);
  expect_has(format_error_of([&] { load_stats(t / "s.safetensors"); }),
             {t / "s.safetensors", "content hash mismatch", "modified or damaged"});
  // A changed count in the JSON header (still valid JSON): covered too.
  write_file_atomic(t / "s.safetensors", bytes);
  rewrite(t / "s.safetensors", [](auto&, auto& meta) {
    Json head = parse_json(meta["stats"], "stats");
    head["samples"] = head["samples"].template get<int64_t>() + 1;
    meta["stats"] = head.dump();
  });
  expect_has(format_error_of([&] { load_stats(t / "s.safetensors"); }), {"content hash mismatch"});
  // A file without a hash (older calq): refused, saying how to get a good one.
  rewrite(t / "s.safetensors", [](auto&, auto& meta) { meta.erase(kContentHashKey); });
  expect_has(format_error_of([&] { load_stats(t / "s.safetensors"); }), {"no content hash", "calq stats"});
  // The command line: one line, exit 1.
  write_file_atomic(t / "s.safetensors", flipped);
  std::string out;
  EXPECT_EQ(test::run_command(test::cli() + " outliers " + t / "s.safetensors", &out), 1);
  expect_has(out, {"calq: error:", "content hash mismatch"});
  // Unchanged bytes still load to the same statistics.
  write_file_atomic(t / "s.safetensors", bytes);
  EXPECT_EQ(load_stats(t / "s.safetensors").tensors[0].sum2, good.tensors[0].sum2);
}

TEST(Integrity, QuantStateFilesAreVerified) {
  test::TempDir t("iqstate");
  auto m = Decoder::load(test::tiny("llama2"));
  const CalibSet calib = test::make_calib(test::random_ids(2, 16, m->config().vocab_size, 1), 2, 16);
  const QuantizeOptions o = test::method_options("rtn");
  quantize_model(*m, &calib, o, t / "s");
  const std::string layer0 = read_file(t / "s/layer.0.safetensors"), layer1 = read_file(t / "s/layer.1.safetensors");
  const std::string state = read_file(t / "s/state.json");
  auto restore = [&] {
    write_file_atomic(t / "s/layer.0.safetensors", layer0);
    write_file_atomic(t / "s/layer.1.safetensors", layer1);
    write_file_atomic(t / "s/state.json", state);
  };
  const std::string scale = "model.layers.0.self_attn.q_proj.scale";

  // One scale multiplied by 8: still a valid quantized weight, so only the hash can tell.
  rewrite(t / "s/layer.0.safetensors", [&](auto& tensors, auto&) { tensors.at(scale).f32_mut()[0] *= 8.0f; });
  expect_has(format_error_of([&] { QuantState::open(t / "s"); }),
             {t / "s/layer.0.safetensors", "content hash mismatch"});
  expect_has(format_error_of([&] { quantize_model(*m, &calib, o, t / "s"); }), {"layer.0.safetensors"});
  // The same with a recomputed (self-consistent) hash: not the file state.json recorded.
  rewrite(t / "s/layer.0.safetensors", [&](auto& tensors, auto& meta) {
    meta[kContentHashKey] = content_sha256(tensors, meta);
  });
  expect_has(format_error_of([&] { QuantState::open(t / "s"); }), {"layer.0.safetensors", "state.json records"});
  // Two layer files swapped.
  restore();
  write_file_atomic(t / "s/layer.0.safetensors", layer1);
  write_file_atomic(t / "s/layer.1.safetensors", layer0);
  expect_has(format_error_of([&] { QuantState::open(t / "s"); }), {"state.json records"});
  // state.json edited where it matters (the bits of the run).
  restore();
  Json j = parse_json(state, "state");
  j["settings"]["bits"] = 3;
  write_file_atomic(t / "s/state.json", j.dump(1));
  expect_has(format_error_of([&] { QuantState::open(t / "s"); }), {"state.json", "was modified"});
  // A state written before the hashes: refused, saying what to do.
  j = parse_json(state, "state");
  j.erase("layer_sha256");
  write_file_atomic(t / "s/state.json", j.dump(1));
  expect_has(format_error_of([&] { QuantState::open(t / "s"); }), {"layer_sha256", "calq quantize again"});
  // Intact again: resumes (nothing to do) and exports.
  restore();
  EXPECT_EQ(quantize_model(*m, &calib, o, t / "s").layers_resumed, m->num_layers());
  EXPECT_TRUE(QuantState::open(t / "s").complete());
}

}  // namespace
}  // namespace calq
