// calq generate MODEL --prompt TEXT -n N: greedy decoding with a KV cache (eval/generate.h): the
// prompt runs once, then one cached step per token; prints the text, and prefill/decode tokens/s
// on stderr. --no-cache recomputes the whole sequence per token (the reference path).
#include <cstdio>
#include <memory>

#include "cmd_eval_common.h"
#include "cmd_stats_common.h"
#include "command.h"
#include "eval/generate.h"
#include "formats/loader.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace calq::cli {
namespace {

struct Opts {
  std::string model, prompt, tokenizer;
  int n = 32;
  bool show_ids = false, no_cache = false, bf16 = false, f32 = false, int8_acts = false;
  KvQuant kv;
};

int run(const Opts& o) {
  if (o.bf16 && o.f32) throw UsageError("--bf16 and --f32 exclude each other");
  LoadOptions lo;  // compute: what the weights call for unless forced (formats/loader.h natural_compute)
  if (o.bf16) lo.compute = ComputeType::BF16;
  if (o.f32) lo.compute = ComputeType::F32;
  lo.pack = true;  // pack every layer now, so the prefill time is the prefill's
  if (o.int8_acts) lo.acts = QActs::Int8;
  auto model = load_model(o.model, lo);
  // A .gguf model carries its tokenizer in its metadata (open_tokenizer reads it from there).
  auto tok = open_tokenizer(o.tokenizer.empty() ? o.model : o.tokenizer, /*optional=*/false);
  const std::vector<int32_t> prompt = tok->encode(o.prompt);
  if (prompt.empty()) throw ArgError("the prompt encodes to no tokens and the tokenizer adds no BOS");
  eval::GenerateOptions go;
  go.n = o.n;
  go.kv_cache = !o.no_cache;
  go.threads = threads();
  go.kv = o.kv;
  const eval::GenerateResult r = eval::generate_greedy(*model, prompt, go);
  std::vector<int32_t> ids = prompt;
  ids.insert(ids.end(), r.ids.begin(), r.ids.end());
  std::printf("%s\n", tok->decode(ids, /*skip_special_tokens=*/true).c_str());
  if (o.show_ids) {
    std::printf("generated ids:");
    for (int32_t id : r.ids) std::printf(" %d", id);
    std::printf("\n");
  }
  std::fflush(stdout);
  std::fprintf(stderr, "compute %s, %s; prefill %lld tokens %.3f s (%.1f tok/s), decode %zu tokens %.3f s (%.1f tok/s)\n",
               describe_compute(*model).c_str(), o.no_cache ? "no KV cache" : "KV cache",
               static_cast<long long>(r.prompt_tokens), r.prefill_seconds, r.prefill_tokens_per_s(),
               r.ids.empty() ? size_t(0) : r.ids.size() - 1, r.decode_seconds, r.decode_tokens_per_s());
  return 0;
}

CALQ_REGISTER_COMMAND({{"generate"}, "Greedy text continuation (KV cache; prints tokens/s)", [](CLI::App& app) -> Runner {
                         auto o = std::make_shared<Opts>();
                         app.add_option("model", o->model, "model folder or .gguf file")->required();
                         app.add_option("-p,--prompt", o->prompt, "prompt text (BOS added as the tokenizer does)");
                         app.add_option("-n", o->n, "tokens to generate")->check(CLI::Range(0, 100000));
                         app.add_option("--tokenizer", o->tokenizer, "tokenizer.json or folder (default: the model's)");
                         app.add_flag("--ids", o->show_ids, "also print the generated token ids");
                         app.add_flag("--no-cache", o->no_cache, "recompute the whole sequence per token (reference)");
                         app.add_flag("--bf16", o->bf16, "bf16 activations (f32 accumulation; the default for bf16/f16 and quantized weights)");
                         app.add_flag("--f32", o->f32, "f32 compute (the default for f32 weights)");
                         app.add_flag("--int8-acts", o->int8_acts,
                                      "int8 activations in blocks of 32: llama.cpp's arithmetic for GGUF Q4/Q8 weights");
                         evalcmd::add_kv_options(app, o->kv);
                         return [o] { return run(*o); };
                       }});

}  // namespace
}  // namespace calq::cli
