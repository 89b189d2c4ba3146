// calq synth --preset NAME [--dtype f32|bf16|f16] [--layers N] [--seed S] -o DIR
// Writes a Hugging Face folder (config.json + model.safetensors) with a real architecture's
// shapes and seeded random weights (src/model/synthetic.h), for speed and quantization work.
#include <memory>

#include "command.h"
#include "progress_bar.h"
#include "formats/output.h"
#include "model/synthetic.h"
#include "util/error.h"

namespace calq::cli {
namespace {

struct Opts {
  std::string preset, dtype = "f32", out, tokenizer;
  int layers = 0;
  uint64_t seed = 0;
  bool list = false;
  OutlierPlan outliers;
};

DType parse_dtype(const std::string& s) {
  if (s == "f32" || s == "float32") return DType::F32;
  if (s == "bf16" || s == "bfloat16") return DType::BF16;
  if (s == "f16" || s == "float16") return DType::F16;
  throw UsageError("--dtype must be f32, bf16 or f16 (got '" + s + "')");
}

int run(const Opts& o) {
  if (o.list) {
    for (const auto& p : synth_presets()) std::printf("%-12s %s\n", p.name.c_str(), p.description.c_str());
    return 0;
  }
  if (o.preset.empty() || o.out.empty()) throw UsageError("synth: --preset and -o are required (--list shows presets)");
  SynthOptions so;
  so.seed = o.seed;
  so.dtype = parse_dtype(o.dtype);
  so.progress = bar("synth " + o.out);
  const Json cfg = synth_config_json(o.preset, o.layers);
  if (!o.outliers.empty())
    so.gains = std::make_shared<const SynthGains>(outlier_gains(ModelConfig::from_json(cfg, o.preset), o.outliers));
  write_synth_model(cfg, so, o.out);
  if (!o.tokenizer.empty()) copy_side_files(o.tokenizer, o.out);
  const ModelConfig mc = synth_config(o.preset, o.layers);
  info("wrote " + o.out + ": " + o.preset + ", " + std::to_string(mc.num_layers) + " layers, " + o.dtype +
       ", seed " + std::to_string(o.seed));
  return 0;
}

CALQ_REGISTER_COMMAND({{"synth"}, "Write a synthetic model (real architecture shape, seeded random weights)",
                       [](CLI::App& app) -> Runner {
                         auto o = std::make_shared<Opts>();
                         app.add_option("--preset", o->preset, "llama-1b, llama-7b, mistral-7b, llama3-8b, llama-tiny");
                         app.add_option("--dtype", o->dtype, "storage dtype: f32 (default), bf16, f16");
                         app.add_option("--layers", o->layers, "override the number of layers")
                             ->check(CLI::NonNegativeNumber);
                         app.add_option("--seed", o->seed, "random seed (default 0)");
                         app.add_option("-o,--out", o->out, "output folder");
                         app.add_flag("--list", o->list, "list the presets");
                         app.add_option("--outliers-act-scales", o->outliers.act_scales,
                                        "plant outliers whose per-channel input profile follows this act_scales "
                                        "file (e.g. $CALQ_DATA/data/opt-125m-act-scales/act_scales.safetensors)");
                         app.add_option("--outlier-channels", o->outliers.channels,
                                        "plant outliers in these hidden channels (norm weights x --outlier-factor)")
                             ->delimiter(',');
                         app.add_option("--outlier-factor", o->outliers.factor, "gain of --outlier-channels")
                             ->capture_default_str();
                         app.add_option("--tokenizer", o->tokenizer,
                                        "copy this model folder's tokenizer files beside the weights");
                         return [o] { return run(*o); };
                       }});

}  // namespace
}  // namespace calq::cli
