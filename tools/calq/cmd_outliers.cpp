// calq outliers STATS.safetensors [--k 8] [--massive-abs 100] [--massive-ratio 1000]
//               [--token-share 0.06] [--layer-share 0.25] [--top 5] [--tokenizer PATH] [--json OUT]
// Outlier channels per layer (relative, massive, LLM.int8) and the tokens with the largest values
// (src/analysis/outliers.h). Token text comes from --tokenizer or the stats' model folder.
#include <cstdio>
#include <memory>

#include <algorithm>

#include "analysis/outliers.h"
#include "calib/calib_set.h"
#include "cmd_stats_common.h"
#include "command.h"

namespace calq::cli {
namespace {

struct OutlierOpts {
  std::string stats, tokenizer, json, calib;
  OutlierConfig cfg;
};

// A token's text; byte pieces and partial UTF-8 show as their vocabulary entry (e.g. <0x93>).
std::string token_text(const Tokenizer& tok, int32_t id) {
  const std::string t = tok.decode({id}, false);
  return (t.empty() || t.find("\xEF\xBF\xBD") != std::string::npos) ? tok.id_to_token(id) : t;
}

// "…up to 6 tokens before⟦token⟧" when the calibration set is at hand, else the token alone.
TopValueText describe(const Tokenizer& tok, const CalibSet* set) {
  return [&tok, set](const TopValue& v) {
    const std::string t = "[" + token_text(tok, v.token) + "]";
    if (!set || v.sample < 0 || v.sample >= set->nsamples() || v.position < 0 || v.position >= set->seqlen() ||
        set->sample(v.sample)[v.position] != v.token)
      return t;
    const int32_t* row = set->sample(v.sample);
    const int64_t from = std::max<int64_t>(0, v.position - 6);
    std::string ctx = tok.decode(std::vector<int32_t>(row + from, row + v.position), false);
    if (ctx.size() > 40) ctx = "…" + ctx.substr(ctx.size() - 40);
    return ctx + t;
  };
}

int run(const OutlierOpts& o) {
  const ActStats s = load_stats(o.stats);
  std::string tk = o.tokenizer;
  if (tk.empty()) tk = s.meta.value("model", Json::object()).value("path", std::string());
  auto tok = open_tokenizer(tk, o.tokenizer.empty());
  std::unique_ptr<CalibSet> set;
  if (!o.calib.empty()) set = std::make_unique<CalibSet>(load_calib_set(o.calib));
  TopValueText text;
  if (tok) text = describe(*tok, set.get());
  const OutlierReport r = analyze_outliers(s, o.cfg);
  std::printf("%s", format_outlier_report(r, text).c_str());
  if (!o.json.empty()) {
    write_json_atomic(o.json, outlier_report_json(r, text), 2);
    info("wrote " + o.json);
  }
  return 0;
}

CALQ_REGISTER_COMMAND({{"outliers"}, "Outlier channels and the tokens behind the largest activations", [](CLI::App& app) -> Runner {
  auto o = std::make_shared<OutlierOpts>();
  app.add_option("stats", o->stats, "statistics file from `calq stats`")->required();
  app.add_option("-k,--k", o->cfg.rel_k, "relative outlier: absmax > k x median channel absmax")->capture_default_str();
  app.add_option("--massive-abs", o->cfg.massive_abs, "massive: |x| above this ...")->capture_default_str();
  app.add_option("--massive-ratio", o->cfg.massive_ratio, "... and above this x median |x|")->capture_default_str();
  app.add_option("--token-share", o->cfg.int8_token_share, "LLM.int8: share of tokens")->capture_default_str();
  app.add_option("--layer-share", o->cfg.int8_layer_share, "LLM.int8: share of layers")->capture_default_str();
  app.add_option("--top", o->cfg.top, "largest values listed per tensor")->capture_default_str();
  app.add_option("--tokenizer", o->tokenizer, "tokenizer for token text (default: the model's)");
  app.add_option("--calib", o->calib, "the calibration set the stats came from: show each token with its context");
  app.add_option("--json", o->json, "write the full report as JSON");
  return [o] { return run(*o); };
}});

}  // namespace
}  // namespace calq::cli
