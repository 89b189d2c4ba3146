// calq tokenize PATH --text "..." [--no-special] [--split-special] [--summary]
// calq tokenize PATH --batch IN.json --out OUT.json
// PATH is a model folder (its tokenizer.json) or a tokenizer.json. With --text, prints the ids
// and the token pieces; with --batch, IN is a JSON list of strings and OUT a JSON list of
// {text, ids_with_special, ids_no_special, decoded, decoded_skip_special}: the fields of the
// goldens in ../shared/tokenizers, so any text set can be checked against Hugging Face at once.
#include <cstdio>
#include <memory>

#include "command.h"
#include "io/mapped_file.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/json.h"

namespace calq::cli {
namespace {

struct Opts {
  std::string path, text, batch, out;
  bool have_text = false, no_special = false, split_special = false, summary = false;
};

std::string json_string(const std::string& s) {
  return Json(s).dump(-1, ' ', false, Json::error_handler_t::replace);
}

int run_text(const Tokenizer& tok, const Opts& o) {
  EncodeOptions eo;
  eo.add_special_tokens = !o.no_special;
  eo.split_special_tokens = o.split_special;
  const auto ids = tok.encode(o.text, eo);
  std::string line = "ids (" + std::to_string(ids.size()) + "): [";
  for (size_t i = 0; i < ids.size(); ++i) line += (i ? ", " : "") + std::to_string(ids[i]);
  std::printf("%s]\n", line.c_str());
  for (size_t i = 0; i < ids.size(); ++i)
    std::printf("%6zu %8d  %s%s\n", i, ids[i], json_string(tok.id_to_token(ids[i])).c_str(),
                tok.is_special(ids[i]) ? "  (special)" : "");
  std::printf("decoded: %s\n", json_string(tok.decode(ids, false)).c_str());
  return 0;
}

int run_batch(const Tokenizer& tok, const Opts& o) {
  if (o.out.empty()) throw UsageError("--batch needs --out OUT.json");
  const Json in = load_json_file(o.batch);
  if (!in.is_array()) throw FormatError(o.batch + ": expected a JSON list of strings");
  std::string out = "[\n";
  EncodeOptions with, without;
  without.add_special_tokens = false;
  for (size_t i = 0; i < in.size(); ++i) {
    if (!in[i].is_string()) throw FormatError(o.batch + ": entry " + std::to_string(i) + " is not a string");
    const std::string text = in[i].get<std::string>();
    const auto ids_with = tok.encode(text, with);
    nlohmann::ordered_json e;
    e["text"] = text;
    e["ids_with_special"] = ids_with;
    e["ids_no_special"] = tok.encode(text, without);
    e["decoded"] = tok.decode(ids_with, false);
    e["decoded_skip_special"] = tok.decode(ids_with, true);
    // One object per line, fields in the goldens' order.
    out += (i ? ",\n" : "") + e.dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  write_file_atomic(o.out, out + "\n]\n");
  info("wrote " + o.out + ": " + std::to_string(in.size()) + " texts");
  return 0;
}

int run(const Opts& o) {
  const auto tok = Tokenizer::from_path(o.path);
  if (o.summary) std::printf("%s\n", tok->summary().c_str());
  if (!o.batch.empty()) return run_batch(*tok, o);
  if (o.have_text) return run_text(*tok, o);
  if (!o.summary) throw UsageError("give --text TEXT, --batch IN.json --out OUT.json, or --summary");
  return 0;
}

CALQ_REGISTER_COMMAND({{"tokenize"}, "Tokenize text with a Hugging Face tokenizer.json (ids, pieces, decode)",
                       [](CLI::App& app) -> Runner {
                         auto o = std::make_shared<Opts>();
                         app.add_option("path", o->path, "model folder or tokenizer.json")->required();
                         auto* text = app.add_option("--text", o->text, "text to tokenize");
                         app.add_flag("--no-special", o->no_special, "do not apply the post-processor (no BOS)");
                         app.add_flag("--split-special", o->split_special,
                                      "do not match special added tokens in the text");
                         auto* batch = app.add_option("--batch", o->batch, "JSON list of strings to tokenize");
                         app.add_option("-o,--out", o->out, "output JSON for --batch");
                         app.add_flag("--summary", o->summary, "print the tokenizer's summary first");
                         text->excludes(batch);
                         return [o, text] {
                           o->have_text = text->count() > 0;
                           return run(*o);
                         };
                       }});

}  // namespace
}  // namespace calq::cli
