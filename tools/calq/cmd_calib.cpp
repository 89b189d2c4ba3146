// calq calib build BUILDER [options] -o SET.safetensors   (builders: text, punct, random-tokens,
//                                                          task, lang, mix; see src/calib/builders.h)
// calq calib show SET.safetensors
// Writes the set (input_ids [n, T] + manifest) and a sidecar SET.json with the manifest; prints
// the sha256 of the token tensor.
#include <cstdio>
#include <memory>

#include "calib/builders.h"
#include "cmd_stats_common.h"
#include "command.h"
#include "data_root.h"

namespace calq::cli {
namespace {

struct BuildOpts {
  CalibSpec spec;
  std::string tokenizer, out, data;
  std::vector<std::string> parts;
  bool no_special = false;
};

void print_set(const CalibSet& s, const std::string& path) {
  const Json& m = s.manifest;
  std::printf("calibration set  %s\n", path.c_str());
  std::printf("builder          %s\n", m.value("builder", std::string("?")).c_str());
  std::printf("shape            [%lld, %lld]%s\n", (long long)s.nsamples(), (long long)s.seqlen(),
              s.padded() ? " (right-padded, attention_mask)" : "");
  std::printf("tokens           %lld\n", (long long)s.token_count());
  if (m.contains("seed")) std::printf("seed             %s\n", m["seed"].dump().c_str());
  if (m.contains("source"))
    std::printf("source           %s (sha256 %s)\n", m["source"].value("path", std::string()).c_str(),
                m["source"].value("sha256", std::string()).c_str());
  if (m.contains("tokenizer_sha256"))
    std::printf("tokenizer        sha256 %s\n", m["tokenizer_sha256"].get<std::string>().c_str());
  std::printf("sha256           %s\n", token_sha256(s.ids).c_str());
}

int build(BuildOpts& o) {
  CalibSpec& s = o.spec;
  s.add_special_tokens = !o.no_special;
  s.data_root = o.data.empty() ? data_root() : o.data;
  for (const auto& p : o.parts) s.parts.push_back(parse_mix_part(p, s));
  if (s.builder != "mix" && !o.parts.empty()) throw ArgError("--part is only for the 'mix' builder");
  auto tok = open_tokenizer(o.tokenizer, false);
  if (!tok && s.builder != "random-tokens")
    throw ArgError("calib " + s.builder + ": --tokenizer MODEL_DIR|tokenizer.json is required");
  const CalibSet set = build_calib_set(s, tok.get());
  save_calib_set(set, o.out);
  write_json_atomic(sidecar_json(o.out), set.manifest, 2);
  print_set(set, o.out);
  info("wrote " + o.out + " and " + sidecar_json(o.out));
  return 0;
}

CALQ_REGISTER_COMMAND({{"calib", "build"}, "Build a calibration set (token ids + manifest)", [](CLI::App& app) -> Runner {
  auto o = std::make_shared<BuildOpts>();
  CalibSpec& s = o->spec;
  app.add_option("builder", s.builder, "text | punct | random-tokens | task | lang | mix")
      ->required()
      ->check(CLI::IsMember({"text", "punct", "random-tokens", "task", "lang", "mix"}));
  app.add_option("-o,--out", o->out, "output .safetensors")->required();
  app.add_option("--tokenizer", o->tokenizer, "model folder or tokenizer.json");
  app.add_option("-n,--nsamples", s.nsamples, "samples")->capture_default_str();
  app.add_option("-T,--seqlen", s.seqlen, "tokens per sample")->capture_default_str();
  app.add_option("--seed", s.seed, "random seed")->capture_default_str();
  app.add_option("--source", s.source, "text: corpus file (.txt, .jsonl, .raw)");
  app.add_option("--mode", s.mode, "text: gptq (default) | concat | document; task, lang: concat (default) | document");
  app.add_option("--field", s.field, "text: jsonl field")->capture_default_str();
  app.add_option("--split", s.split, "text: auto | blank | line | file | wikitext")->capture_default_str();
  app.add_option("--task", s.task, "task: name under data/tasks (arc_challenge, piqa, ...) or a .jsonl file");
  app.add_option("--lang", s.lang, "lang: FLORES-200 code, e.g. fra_Latn");
  app.add_option("--charset", s.charset, "punct: characters to draw from (default: ASCII punctuation)");
  app.add_option("--vocab", s.vocab, "random-tokens: ids in [0, vocab) (default: the tokenizer's)");
  app.add_option("--part", o->parts, "mix: WEIGHT:BUILDER[:key=value,...] (repeat), e.g. 0.5:lang:lang=fra_Latn");
  app.add_flag("--no-special-tokens", o->no_special, "no BOS at the start of samples/documents");
  app.add_option("--data", o->data, "data pack root for task/lang (default: $CALQ_DATA or ../shared)");
  return [o] { return build(*o); };
}});

CALQ_REGISTER_COMMAND({{"calib", "show"}, "Print a calibration set's summary and manifest", [](CLI::App& app) -> Runner {
  auto path = std::make_shared<std::string>();
  auto full = std::make_shared<bool>(false);
  app.add_option("set", *path, "calibration set .safetensors")->required();
  app.add_flag("--manifest", *full, "also print the full manifest JSON");
  return [path, full] {
    const CalibSet s = load_calib_set(*path);
    print_set(s, *path);
    if (*full) std::printf("%s\n", s.manifest.dump(2).c_str());
    return 0;
  };
}});

}  // namespace
}  // namespace calq::cli
