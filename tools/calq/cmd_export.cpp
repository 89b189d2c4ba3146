// calq export RUN_OR_MODEL --format gptq|awq|gguf [--type q8_0|q4_0|...] [--requantize] -o OUT
// Writes a quantization run as a GPTQ or AWQ checkpoint folder or a GGUF file; a plain Hugging Face
// float folder can be written as GGUF. The run is the folder of `calq quantize -o RUN` (its state is
// RUN/qstate) or that qstate folder itself. GGUF cannot hold a run's integer codes: any type but
// f32 quantizes the fake-quant weights a second time, done only with --requantize. Outputs appear
// under a temporary name and are renamed when complete; an existing OUT is never overwritten.
#include <map>
#include <memory>

#include "command.h"
#include "formats/gguf_model.h"
#include "formats/hf_quant_export.h"
#include "io/checkpoint.h"
#include "io/ggml_quants.h"
#include "io/gguf.h"
#include "progress_bar.h"
#include "util/error.h"

namespace calq::cli {
namespace {

struct Opts {
  std::string input, format, type = "q8_0", output_type, out, gptq_format = "v1";
  bool pure = false, requantize = false;
};

ggml::Type parse_type(const std::string& s, const char* flag) {
  ggml::Type t;
  if (!ggml::type_from_name(s, &t) || !ggml::can_quantize(t))
    throw UsageError(std::string(flag) + " '" + s + "': calq writes f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1");
  return t;
}

// The QuantState of `input`: a qstate folder, or a run folder holding one; "" for anything else.
std::string state_dir_of(const std::string& input) {
  if (file_exists(path_join(input, "state.json"))) return input;
  if (file_exists(path_join(input, "qstate/state.json"))) return path_join(input, "qstate");
  return "";
}

// "12 q4_0, 2 q8_0, 11 f32": what the written GGUF file holds, by tensor type.
std::string stored_types(const std::string& path) {
  std::map<std::string, int> n;
  const auto file = gguf::File::open(path);  // kept alive: tensors() refers into it
  for (const auto& t : file->tensors()) ++n[ggml::type_name(t.type)];
  std::string s;
  for (const auto& [type, count] : n) s += (s.empty() ? "" : ", ") + std::to_string(count) + " " + type;
  return s;
}

void report_gguf(const Opts& o, const ExportReport& rep, bool from_run) {
  std::string how;
  if (o.type == "f32")
    how = from_run ? "the run's fake-quant weights stored exactly as f32" : "the weights stored as f32";
  else if (from_run)
    how = "the run's fake-quant weights re-quantized to " + o.type + " with ggml's reference quantizers (a second "
          "quantization, --requantize)";
  else if (o.type == "f16" || o.type == "bf16")
    how = "2-D weights converted to " + o.type;
  else
    how = "2-D weights quantized to " + o.type + " with ggml's reference quantizers";
  info("wrote " + rep.out + " (gguf): " + how + "; tensors stored as " + stored_types(rep.out) +
       " (1-D tensors are f32; rows not a multiple of the block size f16; see docs/formats.md)");
}

int run(const Opts& o) {
  const std::string state_dir = state_dir_of(o.input);
  if (state_dir.empty() && !file_exists(path_join(o.input, "config.json")))
    throw IoError(o.input + ": neither a quantization run (RUN/qstate or a qstate folder with state.json) nor a "
                  "Hugging Face model folder (config.json)");
  std::unique_ptr<QuantState> q;
  if (!state_dir.empty()) q = std::make_unique<QuantState>(QuantState::open(state_dir));
  ExportReport rep;
  if (o.format == "gguf") {
    GgufExportOptions g;
    g.type = parse_type(o.type, "--type");
    if (!o.output_type.empty()) g.output_type = parse_type(o.output_type, "--output-type");
    g.pure = o.pure;
    g.requantize = o.requantize;
    g.progress = bar("gguf " + ggml::type_name(g.type));
    rep = q ? export_gguf(*q, o.out, g) : export_gguf(o.input, o.out, g);
  } else {
    if (!q)
      throw ArgError(o.input + ": --format " + o.format + " needs a quantization run (the integer codes in RUN/qstate "
                     "from `calq quantize -o RUN`), not a " +
                     (Checkpoint::open(o.input).config().contains("calq_quant") ? "fake-quant checkpoint without its qstate/"
                                                                                : "float model"));
    HfExportOptions h;
    h.progress = bar(o.format + " pack");
    if (o.format == "gptq") {
      h.zeros = o.gptq_format == "v1" ? GptqZeroFormat::V1 : GptqZeroFormat::V2;
      rep = export_gptq(*q, o.out, h);
    } else {
      rep = export_awq(*q, o.out, h);
    }
  }
  for (const auto& w : rep.warnings) info("warning: " + w);
  if (o.format == "gguf") {
    report_gguf(o, rep, q != nullptr);
  } else {
    info("wrote " + rep.out + " (" + o.format + "): " + std::to_string(rep.quantized) + " packed weights, " +
         std::to_string(rep.replaced) + " replaced tensors, " + std::to_string(rep.copied) + " copied");
  }
  return 0;
}

CALQ_REGISTER_COMMAND({{"export"}, "Write a quantization run as a GPTQ / AWQ checkpoint or a GGUF file",
                       [](CLI::App& app) -> Runner {
                         auto o = std::make_shared<Opts>();
                         app.add_option("input", o->input,
                                        "quantization run (the -o folder of calq quantize, or its qstate/), or an HF "
                                        "float model (gguf only)")
                             ->required();
                         app.add_option("--format", o->format, "gptq | awq | gguf")
                             ->required()
                             ->check(one_of({"gptq", "awq", "gguf"}));
                         app.add_option("--type", o->type,
                                        "gguf: tensor type of the 2-D weights (q8_0, q4_0, q4_1, q5_0, q5_1, f16, bf16, f32)")
                             ->capture_default_str();
                         app.add_option("--output-type", o->output_type, "gguf: type of the output matrix (default q8_0 for 4/5-bit types)");
                         app.add_flag("--pure", o->pure, "gguf: every 2-D weight in --type (no Q8_0 output matrix)");
                         app.add_flag("--requantize", o->requantize,
                                      "gguf from a run: quantize its fake-quant weights again into --type (any type but f32)");
                         app.add_option("--gptq-format", o->gptq_format,
                                        "gptq: v1 (checkpoint_format gptq, zero-1; default) or v2 (gptq_v2)")
                             ->check(one_of({"v1", "v2"}));
                         app.add_option("-o,--out", o->out, "output folder (gptq, awq) or .gguf file")->required();
                         return [o] { return run(*o); };
                       }});

}  // namespace
}  // namespace calq::cli
