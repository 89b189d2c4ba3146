// calq calib build BUILDER [options] -o SET.safetensors   (one subcommand per builder: text, punct,
//                                                          random-tokens, task, lang, mix; src/calib/builders.h)
// calq calib show SET.safetensors
// Writes the set (input_ids [n, T] + manifest) and a sidecar SET.json with the manifest; prints
// the sha256 of the token tensor. With --tokenizer MODEL_DIR the window length defaults to what the
// model takes (GPTQ's 2048, capped at max_position_embeddings) and a longer -T is refused here.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "calib/builders.h"
#include "cmd_stats_common.h"
#include "command.h"
#include "data_root.h"
#include "model/config.h"

namespace calq::cli {
namespace {

CALQ_REGISTER_GROUP({{"calib"}, "Calibration sets: build one (a subcommand per builder) or show one"});
CALQ_REGISTER_GROUP({{"calib", "build"}, "Build a calibration set (token ids [n, T] + manifest): text, punct, "
                                         "random-tokens, task, lang or mix"});

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

// The model's context when --tokenizer names a model folder (config.json beside tokenizer.json), else 0.
int64_t model_context(const std::string& tokenizer) {
  namespace fs = std::filesystem;
  if (tokenizer.empty() || !fs::is_directory(tokenizer)) return 0;
  const std::string cfg = path_join(tokenizer, "config.json");
  if (!file_exists(cfg)) return 0;
  return ModelConfig::from_json(load_json_file(cfg), cfg).max_position;
}

bool uses_data_pack(const CalibSpec& s) {
  if (s.builder == "lang" || (s.builder == "task" && !s.task.ends_with(".jsonl"))) return true;
  for (const auto& p : s.parts)
    if (uses_data_pack(p.spec)) return true;
  return false;
}

int build(BuildOpts& o) {
  CalibSpec& s = o.spec;
  s.add_special_tokens = !o.no_special;
  s.seqlen = calib_seqlen(s.seqlen, model_context(o.tokenizer), o.tokenizer);
  for (const auto& p : o.parts) s.parts.push_back(parse_mix_part(p, s));
  if (uses_data_pack(s)) s.data_root = o.data.empty() ? data_root() : o.data;
  auto tok = open_tokenizer(o.tokenizer, false);
  if (!tok && !(s.builder == "random-tokens" && s.vocab > 0))
    throw UsageError("calib build " + s.builder + ": --tokenizer MODEL_DIR|tokenizer.json is required" +
                     (s.builder == "random-tokens" ? " (or --vocab N)" : ""));
  const CalibSet set = [&] {
    try {
      return build_calib_set(s, tok.get());
    } catch (const ArgError& e) {  // a missing task or language: say which data pack was searched
      if (!uses_data_pack(s) || !o.data.empty()) throw;
      throw ArgError(std::string(e.what()) + "; " + data_root_origin());
    }
  }();
  save_calib_set(set, o.out);
  write_json_atomic(sidecar_json(o.out), set.manifest, 2);
  print_set(set, o.out);
  info("wrote " + o.out + " and " + sidecar_json(o.out));
  return 0;
}

// The options every builder takes.
std::shared_ptr<BuildOpts> common_options(CLI::App& app, const std::string& builder) {
  auto o = std::make_shared<BuildOpts>();
  CalibSpec& s = o->spec;
  s.builder = builder;
  s.seqlen = 0;  // calib_seqlen(): the model's context or 2048
  app.add_option("-o,--out", o->out, "output .safetensors (a sidecar .json holds the manifest)")->required();
  app.add_option("--tokenizer", o->tokenizer,
                 "model folder (its tokenizer.json; -T defaults to its context) or tokenizer.json");
  app.add_option("-n,--nsamples", s.nsamples, "samples")->capture_default_str();
  app.add_option("-T,--seqlen", s.seqlen,
                 "tokens per sample (default: 2048, or the --tokenizer model's max_position_embeddings when smaller)");
  app.add_option("--seed", s.seed, "random seed")->capture_default_str();
  app.add_flag("--no-special-tokens", o->no_special, "no BOS at the start of samples/documents");
  return o;
}

void add_data_option(CLI::App& app, BuildOpts& o) {
  app.add_option("--data", o.data, "data pack root (default: $CALQ_DATA, else ../shared beside the repository)");
}

Runner runner(std::shared_ptr<BuildOpts> o) {
  return [o] { return build(*o); };
}

CALQ_REGISTER_COMMAND({{"calib", "build", "text"},
                       "Windows of a text corpus: gptq (random windows of long documents), concat or document",
                       [](CLI::App& app) -> Runner {
                         auto o = common_options(app, "text");
                         CalibSpec& s = o->spec;
                         app.add_option("--source", s.source, "corpus file (.txt, .jsonl, .raw)")->required();
                         app.add_option("--mode", s.mode,
                                        "gptq (default: random windows of documents longer than -T) | concat "
                                        "(documents joined and cut into blocks) | document (one per sample, padded)")
                             ->check(one_of({"gptq", "concat", "document"}));
                         app.add_option("--field", s.field, "jsonl field holding the text")->capture_default_str();
                         app.add_option("--split", s.split, "document split: auto | blank | line | file | wikitext")
                             ->capture_default_str()
                             ->check(one_of({"auto", "blank", "line", "file", "wikitext"}));
                         return runner(o);
                       }});

CALQ_REGISTER_COMMAND({{"calib", "build", "punct"}, "Random strings of punctuation (the study's nonsensical set)",
                       [](CLI::App& app) -> Runner {
                         auto o = common_options(app, "punct");
                         app.add_option("--charset", o->spec.charset, "characters to draw from (default: ASCII punctuation)");
                         return runner(o);
                       }});

CALQ_REGISTER_COMMAND({{"calib", "build", "random-tokens"}, "Token ids drawn uniformly from the vocabulary",
                       [](CLI::App& app) -> Runner {
                         auto o = common_options(app, "random-tokens");
                         app.add_option("--vocab", o->spec.vocab,
                                        "ids in [0, vocab) (default: the tokenizer's, minus special tokens; with it "
                                        "no tokenizer is needed)");
                         return runner(o);
                       }});

CALQ_REGISTER_COMMAND({{"calib", "build", "task"}, "Zero-shot task items as question + answer text, packed",
                       [](CLI::App& app) -> Runner {
                         auto o = common_options(app, "task");
                         app.add_option("--task", o->spec.task,
                                        "name under <data pack>/data/tasks (arc_challenge, piqa, ...) or a .jsonl file")
                             ->required();
                         app.add_option("--mode", o->spec.mode, "concat (default) | document")
                             ->check(one_of({"concat", "document"}));
                         add_data_option(app, *o);
                         return runner(o);
                       }});

CALQ_REGISTER_COMMAND({{"calib", "build", "lang"}, "FLORES-200 sentences of one language, packed",
                       [](CLI::App& app) -> Runner {
                         auto o = common_options(app, "lang");
                         app.add_option("--lang", o->spec.lang, "FLORES-200 code, e.g. fra_Latn")->required();
                         app.add_option("--mode", o->spec.mode, "concat (default) | document")
                             ->check(one_of({"concat", "document"}));
                         add_data_option(app, *o);
                         return runner(o);
                       }});

CALQ_REGISTER_COMMAND({{"calib", "build", "mix"}, "A weighted mixture of the other builders",
                       [](CLI::App& app) -> Runner {
                         auto o = common_options(app, "mix");
                         app.add_option("--part", o->parts,
                                        "WEIGHT:BUILDER[:key=value,...] (repeat), e.g. 0.5:lang:lang=fra_Latn; keys: "
                                        "source, mode, field, split, task, lang, charset, vocab")
                             ->required();
                         add_data_option(app, *o);
                         return runner(o);
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
