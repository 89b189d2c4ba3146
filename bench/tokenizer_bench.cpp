// Tokenizer throughput: loading each tokenizer.json of the data pack, and encoding the whole of
// WikiText-2 test (1.29 MB, one call, as perplexity evaluation does) with a cold piece cache
// (fresh tokenizer) and a warm one. Run from the repository root (data: $CALQ_DATA or ../shared):
//   ./build/tokenizer_bench --benchmark_min_time=1
#include <benchmark/benchmark.h>

#include "bench_util.h"
#include "tokenizer/tokenizer.h"
#include "util/fs.h"

namespace {

const char* kNames[] = {"llama2", "mistral", "llama3", "qwen3", "gpt2", "stories260K"};

std::string tokenizer_dir(const std::string& name) {
  const std::string root = calq::bench::data_root();
  return name == "stories260K" ? calq::path_join(root, "models/stories260K")
                               : calq::path_join(root, "tokenizers/" + name);
}

const std::string& wikitext() {
  static const std::string text = calq::read_file(calq::path_join(calq::bench::data_root(), "data/wikitext-2-raw/wiki.test.raw"));
  return text;
}

void BM_Load(benchmark::State& state) {
  const std::string dir = tokenizer_dir(kNames[state.range(0)]);
  for (auto _ : state) benchmark::DoNotOptimize(calq::Tokenizer::from_path(dir));
  state.SetLabel(kNames[state.range(0)]);
}

void BM_EncodeWikiTextCold(benchmark::State& state) {
  const std::string dir = tokenizer_dir(kNames[state.range(0)]);
  const std::string& text = wikitext();
  size_t tokens = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto tok = calq::Tokenizer::from_path(dir);
    state.ResumeTiming();
    tokens = tok->encode(text).size();
    benchmark::DoNotOptimize(tokens);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
  state.counters["tokens"] = double(tokens);
  state.SetLabel(kNames[state.range(0)]);
}

void BM_EncodeWikiTextWarm(benchmark::State& state) {
  auto tok = calq::Tokenizer::from_path(tokenizer_dir(kNames[state.range(0)]));
  const std::string& text = wikitext();
  tok->encode(text);
  for (auto _ : state) benchmark::DoNotOptimize(tok->encode(text));
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
  state.SetLabel(kNames[state.range(0)]);
}

void BM_DecodeWikiText(benchmark::State& state) {
  auto tok = calq::Tokenizer::from_path(tokenizer_dir(kNames[state.range(0)]));
  const auto ids = tok->encode(wikitext());
  for (auto _ : state) benchmark::DoNotOptimize(tok->decode(ids));
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(wikitext().size()));
  state.SetLabel(kNames[state.range(0)]);
}

BENCHMARK(BM_Load)->DenseRange(0, 5)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodeWikiTextCold)->DenseRange(0, 5)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodeWikiTextWarm)->DenseRange(0, 5)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DecodeWikiText)->DenseRange(0, 5)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
