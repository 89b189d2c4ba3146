// calq export QSTATE_OR_MODEL --format gptq|awq|gguf [--type q8_0|q4_0|...] -o OUT
// Writes a quantization run (QuantState directory) as a GPTQ or AWQ checkpoint folder or a GGUF
// file; a plain Hugging Face float folder can be written as GGUF. Outputs appear under a temporary
// name and are renamed when complete; an existing OUT is never overwritten.
#include <memory>

#include "command.h"
#include "formats/gguf_model.h"
#include "formats/hf_quant_export.h"
#include "io/checkpoint.h"
#include "io/ggml_quants.h"
#include "progress_bar.h"
#include "util/error.h"

namespace calq::cli {
namespace {

struct Opts {
  std::string input, format, type = "q8_0", output_type, out, gptq_format = "v1";
  bool pure = false;
};

ggml::Type parse_type(const std::string& s, const char* flag) {
  ggml::Type t;
  if (!ggml::type_from_name(s, &t) || !ggml::can_quantize(t))
    throw ArgError(std::string(flag) + " '" + s + "': calq writes f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1");
  return t;
}

int run(const Opts& o) {
  const bool is_qstate = file_exists(path_join(o.input, "state.json"));
  if (!is_qstate && !file_exists(path_join(o.input, "config.json")))
    throw IoError(o.input + ": neither a QuantState directory (state.json) nor a Hugging Face model folder (config.json)");
  std::unique_ptr<QuantState> q;
  if (is_qstate) q = std::make_unique<QuantState>(QuantState::open(o.input));
  ExportReport rep;
  if (o.format == "gguf") {
    GgufExportOptions g;
    g.type = parse_type(o.type, "--type");
    if (!o.output_type.empty()) g.output_type = parse_type(o.output_type, "--output-type");
    g.pure = o.pure;
    g.progress = bar("gguf " + ggml::type_name(g.type));
    rep = q ? export_gguf(*q, o.out, g) : export_gguf(o.input, o.out, g);
  } else {
    if (!q)
      throw ArgError(o.input + ": --format " + o.format + " needs a QuantState directory (integer codes from `calq quantize`), "
                     "not a float model");
    HfExportOptions h;
    h.progress = bar(o.format + " pack");
    if (o.format == "gptq") {
      if (o.gptq_format != "v1" && o.gptq_format != "v2") throw ArgError("--gptq-format must be v1 or v2");
      h.zeros = o.gptq_format == "v1" ? GptqZeroFormat::V1 : GptqZeroFormat::V2;
      rep = export_gptq(*q, o.out, h);
    } else {
      rep = export_awq(*q, o.out, h);
    }
  }
  for (const auto& w : rep.warnings) info("warning: " + w);
  if (o.format == "gguf") {
    info("wrote " + rep.out + " (gguf, " + o.type + "): " + std::to_string(rep.quantized + rep.replaced + rep.copied) +
         " tensors (" + std::to_string(rep.quantized) + " fake-quant weights of the run, " + std::to_string(rep.replaced) +
         " replaced, " + std::to_string(rep.copied) + " from the float model), re-quantized with ggml's reference quantizers");
  } else {
    info("wrote " + rep.out + " (" + o.format + "): " + std::to_string(rep.quantized) + " packed weights, " +
         std::to_string(rep.replaced) + " replaced tensors, " + std::to_string(rep.copied) + " copied");
  }
  return 0;
}

CALQ_REGISTER_COMMAND({{"export"}, "Write a quantization run as a GPTQ / AWQ checkpoint or a GGUF file",
                       [](CLI::App& app) -> Runner {
                         auto o = std::make_shared<Opts>();
                         app.add_option("input", o->input, "QuantState directory, or an HF float model (gguf only)")
                             ->required();
                         app.add_option("--format", o->format, "gptq | awq | gguf")
                             ->required()
                             ->check(CLI::IsMember({"gptq", "awq", "gguf"}));
                         app.add_option("--type", o->type, "gguf: tensor type of the 2-D weights (q8_0, q4_0, q4_1, q5_0, q5_1, f16, bf16, f32)");
                         app.add_option("--output-type", o->output_type, "gguf: type of the output matrix (default q8_0 for 4/5-bit types)");
                         app.add_flag("--pure", o->pure, "gguf: every 2-D weight in --type (no Q8_0 output matrix)");
                         app.add_option("--gptq-format", o->gptq_format, "gptq: v1 (checkpoint_format gptq, zero-1; default) or v2 (gptq_v2)");
                         app.add_option("-o,--out", o->out, "output folder (gptq, awq) or .gguf file")->required();
                         return [o] { return run(*o); };
                       }});

}  // namespace
}  // namespace calq::cli
