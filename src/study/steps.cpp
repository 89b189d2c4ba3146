#include "study/steps.h"

#include <chrono>
#include <filesystem>
#include <memory>

#include "calib/builders.h"
#include "eval/jobs.h"
#include "eval/results.h"
#include "formats/fakequant.h"
#include "formats/loader.h"
#include "formats/output.h"
#include "io/mapped_file.h"
#include "analysis/summary.h"
#include "observe/stats_runner.h"
#include "quant/pipeline.h"
#include "study/machine.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace calq::study {

namespace fs = std::filesystem;

namespace {

std::string partial(const std::string& dir) { return dir + ".partial"; }
std::string record_file(const std::string& dir) { return path_join(dir, "artifact.json"); }

void make_dir(const std::string& d) {
  std::error_code ec;
  fs::create_directories(d, ec);
  if (ec) throw IoError(d + ": cannot create folder (" + ec.message() + ")");
}

// Completes an artifact: its record into the partial folder, then one rename. A concurrent
// builder that finished first wins; ours is dropped (both are the same bytes by construction).
void commit(const std::string& dir, const Json& record) {
  const std::string p = partial(dir);
  write_json_atomic(record_file(p), record, 2);
  std::error_code ec;
  fs::rename(p, dir, ec);
  if (ec) {
    if (file_exists(record_file(dir))) {
      fs::remove_all(p, ec);
      return;
    }
    throw IoError(dir + ": cannot move the finished artifact into place (" + ec.message() + ")");
  }
}

const Step& dep_of_kind(const Grid& g, const Step& s, StepKind k) {
  for (const auto& d : s.deps)
    if (g.step(d).kind == k) return g.step(d);
  throw ArgError("study: step " + s.label + " has no " + step_kind_name(k) + " input");
}

eval::JobHooks hooks(const StepEnv& env) { return {env.log, env.progress, env.threads}; }

// ---- the builders: each fills the partial folder `out` -----------------------------------------

Json build_model(const Step& s, const StepEnv& env, const std::string& out) {
  const ModelEntry& m = env.cfg.models[size_t(s.model)];
  const Json cfg = synth_config_json(m.preset, m.layers);
  SynthOptions so;
  so.seed = m.seed;
  so.progress = env.progress;
  if (!m.outliers.empty())
    so.gains = std::make_shared<const SynthGains>(outlier_gains(ModelConfig::from_json(cfg, m.preset), m.outliers));
  write_synth_model(cfg, so, out);  // as `calq synth --preset P --layers L --seed S [outliers] --tokenizer T`
  copy_side_files(m.tokenizer, out);
  return {{"preset", m.preset}, {"layers", m.layers}};
}

Json build_calib(const Step& s, const StepEnv& env, const std::string& out) {
  CalibSpec spec = env.cfg.calib[size_t(s.calib)].spec;
  spec.seed = s.seed;
  const auto tok = Tokenizer::from_path(tokenizer_dir(env.cfg, s.model));
  const CalibSet set = build_calib_set(spec, tok.get());  // as `calq calib build`
  const std::string f = path_join(out, "set.safetensors");
  save_calib_set(set, f);
  write_json_atomic(path_join(out, "set.json"), set.manifest, 2);
  return {{"manifest", set.manifest}};
}

Json build_stats(const Step& s, const StepEnv& env, const std::string& out) {
  const Step& cs = dep_of_kind(env.grid, s, StepKind::Calib);
  const CalibSet set = load_calib_set(calib_path(env.cfg, cs));
  const auto model = load_model(model_dir(env.cfg, env.grid, s.model));
  StatsRunOptions o;  // `calq stats MODEL --calib SET -b B`: its defaults
  o.batch = env.cfg.stats_batch;
  o.checkpoint_every = 16;
  o.progress = env.progress;
  o.threads = env.threads;
  const std::string f = path_join(out, "stats.safetensors");
  std::unique_ptr<ActStats> resume;
  if (file_exists(f)) resume = std::make_unique<ActStats>(load_stats(f));
  const ActStats st = collect_stats(*model, set, o, resume.get(), [&](const ActStats& p) { save_stats(p, f); });
  save_stats(st, f);
  write_json_atomic(path_join(out, "stats.json"), stats_summary_json(st), 2);
  return {{"samples", st.meta.value("samples", int64_t(0))}, {"tokens", st.meta.value("tokens", 0.0)}};
}

Json build_kldref(const Step& s, const StepEnv& env, const std::string& out) {
  const EvalEntry& e = env.cfg.evals[size_t(s.eval)];
  eval::KldRefJob job;  // `calq eval kld-ref MODEL --data ... -k K -o ref.safetensors`
  job.model = model_dir(env.cfg, env.grid, s.model);
  job.w = e.w;
  job.k = e.k;
  job.hooks = hooks(env);
  job.out = path_join(out, "ref.safetensors");
  if (file_exists(job.out)) fs::remove(job.out);  // a single-file output is never half there; start anew
  const eval::KldRefRun r = eval::run_kld_reference(job);
  return {{"predictions", r.predictions}, {"bytes", r.bytes}};
}

Json build_quant(const Step& s, const StepEnv& env, const std::string& out) {
  const MethodEntry& me = env.cfg.methods[size_t(s.method)];
  const std::string src = model_dir(env.cfg, env.grid, s.model);
  auto model = load_model(src);  // as `calq quantize MODEL --method ... --calib SET -o OUT`
  if (!model->checkpoint()) throw ArgError(src + ": quantization needs a Hugging Face float folder");
  if (model->checkpoint()->config().contains("calq_quant"))
    throw ArgError(src + ": is already a calq fake-quantized checkpoint; quantize the float source");
  QuantizeOptions q;
  q.method = me.options.to_method();
  q.batch = env.cfg.quant_batch;
  q.threads = env.threads;
  q.progress = env.progress;
  q.log = env.log;
  q.validate();
  std::unique_ptr<CalibSet> calib;
  if (q.needs_calibration())
    calib = std::make_unique<CalibSet>(load_calib_set(calib_path(env.cfg, dep_of_kind(env.grid, s, StepKind::Calib))));
  const QuantizeSummary sum = quantize_model(*model, calib.get(), q, path_join(out, "qstate"));
  model.reset();
  write_fake_quant_checkpoint(QuantState::open(path_join(out, "qstate")), out);
  return {{"method", method_name(q.method)}, {"layers", sum.layers_total}, {"layers_resumed", sum.layers_resumed}};
}

Json build_eval(const Step& s, const StepEnv& env, const std::string& out) {
  const EvalEntry& e = env.cfg.evals[size_t(s.eval)];
  std::string model;
  for (const auto& d : s.deps)
    if (env.grid.step(d).kind == StepKind::Quant) model = quant_dir(env.cfg, env.grid.step(d));
  if (model.empty()) model = model_dir(env.cfg, env.grid, s.model);
  const bool bf16 = env.cfg.models[size_t(s.model)].compute == "bf16";
  const KvQuant kv = env.cfg.kv[size_t(s.kv)].kv;
  const std::string resume = path_join(out, "resume.log");
  Json results;
  if (e.kind == "ppl") {  // `calq eval ppl MODEL --data ... [--kv-bits ...] -o result.json`
    eval::PplJob job;
    job.model = model;
    job.w = e.w;
    job.bf16 = bf16;
    job.kv = kv;
    job.hooks = hooks(env);
    job.resume = resume;
    results = eval::run_ppl(job).results;
  } else if (e.kind == "kld") {  // `calq eval kld MODEL --ref ref.safetensors`
    eval::KldJob job;
    job.model = model;
    job.ref = kldref_path(env.cfg, dep_of_kind(env.grid, s, StepKind::KldRef));
    job.w.batch = e.w.batch;
    job.bf16 = bf16;
    job.kv = kv;
    job.hooks = hooks(env);
    job.resume = resume;
    results = eval::run_kld(job).results;
  } else {  // `calq eval tasks MODEL --tasks ... --limit N`
    eval::TasksJob job;
    job.model = model;
    job.tasks = e.tasks;
    job.task_dir = e.task_dir;
    job.limit = e.limit;
    job.bf16 = bf16;
    job.kv = kv;
    job.hooks = hooks(env);
    job.resume = resume;
    results = eval::run_tasks(job).results_file;
  }
  eval::write_results(path_join(out, "result.json"), results);
  return {{"result", results}};
}

}  // namespace

std::string tokenizer_dir(const StudyConfig& c, int model) {
  const ModelEntry& m = c.models[size_t(model)];
  return m.synthetic ? m.tokenizer : m.path;
}

std::string model_dir(const StudyConfig& c, const Grid& g, int model) { return g.inputs.model_dir[size_t(model)]; }
std::string calib_path(const StudyConfig& c, const Step& s) { return path_join(artifact_dir(c, s), "set.safetensors"); }
std::string stats_path(const StudyConfig& c, const Step& s) { return path_join(artifact_dir(c, s), "stats.safetensors"); }
std::string kldref_path(const StudyConfig& c, const Step& s) { return path_join(artifact_dir(c, s), "ref.safetensors"); }
std::string quant_dir(const StudyConfig& c, const Step& s) { return artifact_dir(c, s); }

bool artifact_complete(const StudyConfig& c, const Step& s) { return file_exists(record_file(artifact_dir(c, s))); }

Json artifact_record(const StudyConfig& c, const Step& s) {
  const std::string f = record_file(artifact_dir(c, s));
  return file_exists(f) ? load_json_file(f) : Json();
}

void remove_artifact(const StudyConfig& c, const Step& s) {
  const std::string d = artifact_dir(c, s);
  std::error_code ec;
  fs::remove_all(d, ec);
  fs::remove_all(partial(d), ec);
}

Json build_step(const Step& s, const StepEnv& env) {
  const std::string dir = artifact_dir(env.cfg, s);
  const std::string out = partial(dir);
  make_dir(out);
  const auto t0 = std::chrono::steady_clock::now();
  const PeakRss peak;
  Json info;
  switch (s.kind) {
    case StepKind::Model: info = build_model(s, env, out); break;
    case StepKind::Calib: info = build_calib(s, env, out); break;
    case StepKind::Stats: info = build_stats(s, env, out); break;
    case StepKind::KldRef: info = build_kldref(s, env, out); break;
    case StepKind::Quant: info = build_quant(s, env, out); break;
    case StepKind::Eval: info = build_eval(s, env, out); break;
  }
  Json record = {{"format", "calq-study-artifact"},
                 {"kind", step_kind_name(s.kind)},
                 {"key", s.key},
                 {"label", s.label},
                 {"identity", s.identity},
                 {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()},
                 {"peak_rss_mb", peak.mb()},
                 {"threads", env.threads},
                 {"finished_utc", utc_now()},
                 {"calq_version", CALQ_VERSION},
                 {"machine", machine_json()}};
  record.update(info);
  commit(dir, record);
  return record;
}

}  // namespace calq::study
