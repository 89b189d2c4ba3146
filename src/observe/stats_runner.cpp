#include "observe/stats_runner.h"

#include <algorithm>

#include "io/checkpoint.h"
#include "kernels/threads.h"
#include "util/error.h"
#include "util/sha256.h"

namespace calq {

Json stats_source(const CalibSet& set, int64_t begin, int64_t end, double tokens) {
  Json calib = Json::object();
  for (const char* k : {"builder", "token_sha256", "tokenizer_sha256", "nsamples", "seqlen", "seed", "name"})
    if (set.manifest.contains(k)) calib[k] = set.manifest[k];
  if (!calib.contains("token_sha256")) calib["token_sha256"] = token_sha256(set.ids);
  return {{"calib", calib}, {"range", {begin, end}}, {"tokens", tokens}};
}

namespace {

void check_set_fits(const Decoder& model, const CalibSet& set, bool check_tokenizer) {
  const ModelConfig& c = model.config();
  if (c.max_position > 0 && set.seqlen() > c.max_position)
    throw ArgError(set.name() + ": seqlen " + std::to_string(set.seqlen()) + " exceeds the model's context (" +
                   std::to_string(c.max_position) + " positions, max_position_embeddings); rebuild it with --seqlen " +
                   std::to_string(c.max_position) + " or less");
  const int32_t* ids = set.ids.data<int32_t>();
  for (int64_t i = 0; i < set.ids.numel(); ++i)
    if (ids[i] >= c.vocab_size)
      throw ArgError(set.name() + ": sample " + std::to_string(i / set.seqlen()) + " has token id " +
                     std::to_string(ids[i]) + " >= the model's vocab_size " + std::to_string(c.vocab_size) +
                     " (built with another tokenizer?)");
  if (check_tokenizer && model.checkpoint())
    check_calib_tokenizer(set, path_join(model.checkpoint()->dir(), "tokenizer.json"));
}

}  // namespace

ActStats collect_stats(const Decoder& model, const CalibSet& set, const StatsRunOptions& opt, const ActStats* resume,
                       const std::function<void(const ActStats&)>& on_checkpoint) {
  const ThreadScope threads(opt.threads);
  validate_calib_set(set, "");
  const int64_t begin = opt.begin, end = opt.end < 0 ? set.nsamples() : opt.end;
  if (begin < 0 || end > set.nsamples() || begin >= end)
    throw ArgError("stats: sample range [" + std::to_string(begin) + ", " + std::to_string(end) +
                   ") is empty or outside the set's " + std::to_string(set.nsamples()) + " samples");
  if (opt.batch <= 0) throw ArgError("stats: batch must be positive");
  check_set_fits(model, set, opt.check_tokenizer);

  int64_t start = begin;
  if (resume) {
    const Json& srcs = resume->meta.at("sources");
    if (srcs.size() != 1) throw ArgError("stats: can only resume a file from one run (it merges several)");
    const Json& src = srcs[0];
    if (src.at("calib").value("token_sha256", "") != token_sha256(set.ids))
      throw ArgError("stats: the file to resume was collected on another calibration set");
    if (src.at("range").at(0).get<int64_t>() != begin)
      throw ArgError("stats: the file to resume starts at sample " + src["range"][0].dump() + ", not " +
                     std::to_string(begin));
    start = src["range"][1].get<int64_t>();
    if (start > end) throw ArgError("stats: the file to resume goes beyond the requested range");
    if (start == end) return *resume;  // already complete
  }

  ActStatsCollector col(model, opt.collect);
  ForwardOptions fo;
  fo.observer = &col;
  fo.logits = opt.collect.lm_head ? ForwardOptions::Logits::All : ForwardOptions::Logits::None;
  const int64_t T = set.seqlen();
  int64_t next_snap = 1;
  while (next_snap <= start - begin) next_snap *= 2;
  auto current = [&](int64_t upto) {
    ActStats r = col.result();
    r.meta["samples"] = upto - start;
    r.meta["sources"] = Json::array({stats_source(set, start, upto, r.meta["tokens"].get<double>())});
    if (!resume) return r;
    ActStats m = *resume;
    m.merge(r);
    m.meta["sources"] = Json::array({stats_source(set, begin, upto, m.meta["tokens"].get<double>())});
    return m;
  };
  int64_t batches = 0;
  for (int64_t s = start; s < end; s += opt.batch) {
    const int64_t b = std::min(opt.batch, end - s);
    col.begin_batch(s, set.padded() ? set.mask.data<uint8_t>() + s * T : nullptr);
    model.forward(set.sample(s), b, T, fo);
    const int64_t since_begin = s + b - begin;
    if (since_begin >= next_snap) {
      col.snapshot(s + b - start);
      while (next_snap <= since_begin) next_snap *= 2;
    }
    try {
      report_progress(opt.progress, s + b - start, end - start, "samples");
    } catch (const Interrupted&) {  // stopped by the caller: keep what is done for --resume
      if (on_checkpoint && s + b < end) on_checkpoint(current(s + b));
      throw;
    }
    ++batches;
    if (on_checkpoint && opt.checkpoint_every > 0 && batches % opt.checkpoint_every == 0 && s + b < end)
      on_checkpoint(current(s + b));
  }
  report_progress(opt.progress, end - start, end - start, "samples", "", true);
  return current(end);
}

}  // namespace calq
