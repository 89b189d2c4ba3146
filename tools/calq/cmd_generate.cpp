// calq generate MODEL --prompt TEXT -n N: greedy decoding (full recompute per step; a smoke test
// of model + tokenizer, not a serving path).
#include <cstdio>
#include <memory>

#include "command.h"
#include "formats/loader.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace calq::cli {
namespace {

struct Opts {
  std::string model, prompt, tokenizer;
  int n = 32;
  bool show_ids = false;
};

int run(const Opts& o) {
  auto model = load_model(o.model);
  auto tok = Tokenizer::from_path(o.tokenizer.empty() ? o.model : o.tokenizer);
  std::vector<int32_t> ids = tok->encode(o.prompt);
  if (ids.empty()) throw ArgError("the prompt encodes to no tokens and the tokenizer adds no BOS");
  const size_t prompt_len = ids.size();
  ForwardOptions fo;
  fo.logits = ForwardOptions::Logits::Last;
  fo.threads = threads();
  for (int s = 0; s < o.n; ++s) {
    const ForwardOutput out = model->forward(ids.data(), 1, int64_t(ids.size()), fo);
    const float* l = out.logits.f32();
    int32_t best = 0;
    for (int32_t v = 1; v < model->config().vocab_size; ++v)
      if (l[v] > l[best]) best = v;
    ids.push_back(best);
  }
  std::printf("%s\n", tok->decode(ids, /*skip_special_tokens=*/true).c_str());
  if (o.show_ids) {
    std::printf("generated ids:");
    for (size_t i = prompt_len; i < ids.size(); ++i) std::printf(" %d", ids[i]);
    std::printf("\n");
  }
  return 0;
}

CALQ_REGISTER_COMMAND({{"generate"}, "Greedy text continuation (smoke test)", [](CLI::App& app) -> Runner {
                         auto o = std::make_shared<Opts>();
                         app.add_option("model", o->model, "model folder or .gguf file")->required();
                         app.add_option("-p,--prompt", o->prompt, "prompt text (BOS added as the tokenizer does)");
                         app.add_option("-n", o->n, "tokens to generate")->check(CLI::Range(0, 100000));
                         app.add_option("--tokenizer", o->tokenizer, "tokenizer.json or folder (default: the model's)");
                         app.add_flag("--ids", o->show_ids, "also print the generated token ids");
                         return [o] { return run(*o); };
                       }});

}  // namespace
}  // namespace calq::cli
