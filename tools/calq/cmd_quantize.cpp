// calq quantize MODEL --method rtn|gptq|awq|smoothquant|naive-w8a8 [--bits 4] [--group-size 128]
//                     --calib SET -o OUT [method options] [--format fake|gptq|awq|gguf]
// Layer-wise quantization (src/quant/pipeline.h). OUT/qstate/ holds the resumable state; OUT/ gets
// the fake-quantized float checkpoint (src/formats/fakequant.h). A killed run resumes from the last
// finished layer when started again with the same arguments. --format also writes an export of the
// state (the writers of src/formats/, as `calq export` runs them).
#include <cstdio>
#include <memory>
#include <set>

#include "calib/calib_set.h"
#include "command.h"
#include "formats/export_rules.h"
#include "interrupt.h"
#include "formats/fakequant.h"
#include "formats/gguf_model.h"
#include "formats/hf_quant_export.h"
#include "formats/loader.h"
#include "progress_bar.h"
#include "quant/method_options.h"
#include "quant/pipeline.h"
#include "util/error.h"

namespace calq::cli {
namespace {

struct Opts {
  std::string model, calib, out, format = "fake";
  MethodOptions m;  // the method and its settings (src/quant/method_options.h)
  int64_t nsamples = -1, batch = 8;
  bool asym = false, no_true_seq = false, awq_no_clip = false, no_resume = false, no_fake = false;
  bool requantize = false, allow_tok = false;
};

// The exporters with their default options (`calq export` has them all). Each receives the finished
// state and OUT: the GPTQ/AWQ folders go to OUT/gptq, OUT/awq, the GGUF file to OUT/model-q8_0.gguf.
void print_report(const ExportReport& r) {
  for (const auto& w : r.warnings) info("warning: " + w);
  info("wrote " + r.out + ": " + std::to_string(r.quantized) + " quantized weights, " + std::to_string(r.replaced) +
       " replaced tensors, " + std::to_string(r.copied) + " copied");
}

void export_state(const std::string& format, const QuantState& qs, const std::string& out) {
  if (format == "gguf") {
    GgufExportOptions g;
    g.requantize = true;  // checked before the run (check_export_first)
    g.progress = bar("gguf q8_0");
    print_report(export_gguf(qs, path_join(out, "model-q8_0.gguf"), g));
    return;
  }
  HfExportOptions h;
  h.progress = bar(format + " pack");
  print_report(format == "gptq" ? export_gptq(qs, path_join(out, "gptq"), h) : export_awq(qs, path_join(out, "awq"), h));
}

// --format gptq|awq|gguf: whether the export can be written at all, before any quantization work
// (formats/export_rules.h: the loaders' rules on widths, group sizes and bits).
void check_export_first(const Opts& o, const QuantizeOptions& q, Decoder& model) {
  if (o.format == "fake") return;
  if (o.format == "gguf") {
    if (!o.requantize)
      throw UsageError("--format gguf writes OUT/model-q8_0.gguf by quantizing the run's fake-quant weights a second "
                       "time (GGUF's blocks cannot hold " + method_name(q.method) + " codes): add --requantize to do "
                       "that, or export later with `calq export OUT --format gguf --type f32|q8_0|...`");
    check_new_output_file(path_join(o.out, "model-q8_0.gguf"));
    return;
  }
  int bits = 0, group = -1;
  bool act_order = false;
  if (const auto* c = std::get_if<GptqConfig>(&q.method)) bits = c->bits, group = c->group_size, act_order = c->desc_act;
  if (const auto* c = std::get_if<AwqConfig>(&q.method)) bits = c->bits, group = c->group_size;
  if (const auto* c = std::get_if<RtnConfig>(&q.method)) {
    if (c->scheme.block == BlockShape::PerTensor)
      throw UnsupportedError("--per-tensor weights have no " + o.format + " layout (one scale per group or row)");
    bits = c->scheme.bits, group = c->scheme.block == BlockShape::PerGroup ? c->scheme.group_size : -1;
  }
  if (const auto* c = std::get_if<SmoothQuantConfig>(&q.method)) {
    if (c->per_tensor_weights)
      throw UnsupportedError("--per-tensor weights have no " + o.format + " layout (one scale per group or row)");
    bits = c->w_bits;
  }
  std::vector<LinearShape> shapes;
  for (Linear* l : model.all_linears(false)) shapes.push_back({l->name, l->out, l->in});
  check_exportable(o.format, shapes, bits, group, act_order);
  check_output_dir(path_join(o.out, o.format));  // the export's own folder must be free too
}

QuantizeOptions to_options(const Opts& o) {
  QuantizeOptions q;
  if (o.m.sym && o.asym) throw UsageError("--sym and --asym exclude each other");
  try {  // a bad or contradictory setting on the command line is a usage error (exit 2)
    q.method = o.m.to_method();
  } catch (const ArgError& e) {
    throw UsageError(e.what());
  }
  q.batch = o.batch;
  q.resume = !o.no_resume;
  q.check_tokenizer = !o.allow_tok;
  q.threads = threads();
  q.log = [](const std::string& s) { info(s); };
  q.progress = bar("quantize " + method_name(q.method));
  return q;
}

// A group size that does not divide a linear's input width: the last group is partial (AutoGPTQ's
// g_idx = c / G convention). Said once, with the widths concerned.
void note_partial_groups(Decoder& m, const QuantizeOptions& q) {
  int g = 0;
  if (const auto* c = std::get_if<GptqConfig>(&q.method)) g = c->group_size;
  if (const auto* c = std::get_if<AwqConfig>(&q.method)) g = c->group_size;
  if (const auto* c = std::get_if<RtnConfig>(&q.method); c && c->scheme.block == BlockShape::PerGroup)
    g = c->scheme.group_size;
  if (g <= 0) return;
  std::set<int64_t> widths;
  for (Linear* l : m.all_linears(false))
    if (l->in % g) widths.insert(l->in);
  if (widths.empty()) return;
  std::string w;
  for (int64_t x : widths) w += (w.empty() ? "" : ", ") + std::to_string(x);
  info("note: group size " + std::to_string(g) + " does not divide input width " + w +
       ": the last group of each row is partial (ceil(in/G) groups; GPTQ/AWQ/GGUF exporters may refuse it)");
}

int run(const Opts& o) {
  const QuantizeOptions q = to_options(o);
  q.validate();
  if (q.needs_calibration() && o.calib.empty())
    throw UsageError(o.m.method + " needs calibration data: --calib SET (calq calib build)");
  auto model = load_model(o.model);
  if (!model->checkpoint()) throw ArgError(o.model + ": calq quantize needs a Hugging Face float folder");
  if (model->checkpoint()->config().contains("calq_quant"))
    throw ArgError(o.model + ": is already a calq fake-quantized checkpoint; quantize the float source");
  check_export_first(o, q, *model);
  note_partial_groups(*model, q);
  set_resume_hint("rerun the same command to resume from the last finished layer");
  if (!o.no_fake) check_output_dir(o.out, {"qstate"});  // before the run: OUT must be new or this run's
  std::unique_ptr<CalibSet> calib;
  if (q.needs_calibration()) {
    if (o.calib.empty()) throw UsageError(o.m.method + " needs calibration data: --calib SET (calq calib build)");
    CalibSet set = load_calib_set(o.calib);
    if (o.nsamples > 0 && o.nsamples < set.nsamples()) set = slice_calib_set(set, 0, o.nsamples);
    calib = std::make_unique<CalibSet>(std::move(set));
    info("calibration: " + std::to_string(calib->nsamples()) + " x " + std::to_string(calib->seqlen()) +
         " tokens from " + o.calib + (calib->padded() ? " (padded; padding left out)" : ""));
  }
  const std::string state_dir = path_join(o.out, "qstate");
  const QuantizeSummary s = quantize_model(*model, calib.get(), q, state_dir);
  const QuantState qs = QuantState::open(state_dir);
  if (!o.no_fake) write_fake_quant_checkpoint(qs, o.out);
  if (o.format != "fake") export_state(o.format, qs, o.out);
  std::printf("{\"method\": \"%s\", \"layers\": %d, \"quantized\": %d, \"resumed\": %d, \"seconds\": %.2f, "
              "\"state\": \"%s\", \"fake_quant\": \"%s\"}\n",
              method_name(q.method).c_str(), s.layers_total, s.layers_quantized, s.layers_resumed, s.seconds, state_dir.c_str(),
              o.no_fake ? "" : o.out.c_str());
  return 0;
}

CALQ_REGISTER_COMMAND(
    {{"quantize"},
     "Quantize a model layer by layer (RTN, GPTQ, AWQ, SmoothQuant, naive W8A8); resumable",
     [](CLI::App& app) -> Runner {
       auto o = std::make_shared<Opts>();
       app.add_option("model", o->model, "Hugging Face float model folder")->required();
       MethodOptions& m = o->m;
       app.add_option("--method", m.method, "rtn | gptq | awq | smoothquant | naive-w8a8")
           ->capture_default_str()
           ->check(one_of({"rtn", "gptq", "awq", "smoothquant", "naive-w8a8"}));
       app.add_option("--calib", o->calib, "calibration set (calq calib build; safetensors input_ids [n, seq])");
       app.add_option("--nsamples", o->nsamples, "use the first N samples of the set");
       app.add_flag("--allow-tokenizer-mismatch", o->allow_tok, "accept a set tokenized with another tokenizer");
       app.add_option("-o,--out", o->out, "output folder (fake-quant checkpoint + qstate/)")->required();
       app.add_option("--bits", m.bits, "weight bits, 2..8 (default 4; 8 for smoothquant / naive-w8a8)");
       app.add_option("--group-size", m.group_size, "input columns per group, -1 = per output channel")
           ->capture_default_str();
       app.add_flag("--sym", m.sym, "symmetric weights (default asymmetric / zero point)");
       app.add_flag("--asym", o->asym, "asymmetric weights (the default)");
       app.add_flag("--per-tensor", m.per_tensor, "rtn / W8A8: one weight scale per tensor");
       app.add_option("--scale-dtype", m.scale_dtype, "f16 (default: scales as exported files store them) or f32");
       app.add_option("--percdamp", m.percdamp, "gptq: dampening, fraction of mean(diag H)")->capture_default_str();
       app.add_option("--block-size", m.block_size, "gptq: lazy-update block")->capture_default_str();
       app.add_flag("--desc-act", m.desc_act, "gptq: act-order (columns by decreasing H_ii)");
       app.add_flag("--static-groups", m.static_groups, "gptq: group parameters fixed before the updates");
       app.add_flag("--no-true-sequential", o->no_true_seq, "gptq: all Hessians of a layer from one pass");
       app.add_flag("--awq-no-clip", o->awq_no_clip, "awq: skip the clipping search");
       app.add_flag("--awq-duo-scaling", m.awq_duo_scaling, "awq: AutoAWQ duo scaling (x^a / w^(1-a))");
       app.add_option("--awq-grid", m.awq_grid, "awq: grid points for alpha")->capture_default_str();
       app.add_option("--alpha", m.alpha, "smoothquant: migration strength")->capture_default_str();
       app.add_option("--act", m.act, "W8A8 activations: per_token | per_tensor | per_channel | per_tensor_static")
           ->capture_default_str()
           ->check(one_of({"per_token", "per_tensor", "per_channel", "per_tensor_static"}));
       app.add_option("--a-bits", m.a_bits, "W8A8 activation bits, 2..8")->capture_default_str();
       app.add_option("--batch", o->batch, "calibration sequences per forward chunk")->capture_default_str();
       app.add_flag("--no-resume", o->no_resume, "refuse to continue an existing state in OUT/qstate");
       app.add_flag("--no-fake", o->no_fake, "do not write the fake-quantized checkpoint");
       app.add_option("--format", o->format,
                      "also export: fake (only the fake-quant checkpoint) | gptq (OUT/gptq) | awq (OUT/awq) | "
                      "gguf (OUT/model-q8_0.gguf, needs --requantize); checked before the run; calq export has every option")
           ->capture_default_str()
           ->check(one_of({"fake", "gptq", "awq", "gguf"}));
       app.add_flag("--requantize", o->requantize, "--format gguf: quantize the fake-quant weights again into q8_0");
       return [o] {
         o->m.true_sequential = !o->no_true_seq;
         o->m.awq_clip = !o->awq_no_clip;
         return run(*o);
       };
     }});

}  // namespace
}  // namespace calq::cli
