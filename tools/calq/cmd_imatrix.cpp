// calq imatrix STATS.safetensors -o imatrix.gguf [--dataset NAME ...] [--chunk-size N]
// Exports the importance matrix (Σx² per input channel and token counts) as a llama.cpp imatrix
// GGUF file for `llama-quantize --imatrix` (src/analysis/imatrix.h).
#include <memory>

#include "formats/imatrix.h"
#include "command.h"

namespace calq::cli {
namespace {

struct ImatrixOpts {
  std::string stats, out;
  ImatrixOptions opt;
};

CALQ_REGISTER_COMMAND({{"imatrix"}, "Export statistics as a llama.cpp imatrix GGUF", [](CLI::App& app) -> Runner {
  auto o = std::make_shared<ImatrixOpts>();
  app.add_option("stats", o->stats, "statistics file from `calq stats`")->required();
  app.add_option("-o,--out", o->out, "output .gguf")->required();
  app.add_option("--dataset", o->opt.datasets, "imatrix.datasets entries (default: the calibration sets)");
  app.add_option("--chunk-size", o->opt.chunk_size, "imatrix.chunk_size (default: the sets' seqlen)");
  return [o] {
    const ActStats s = load_stats(o->stats);
    const gguf::Writer w = imatrix_writer(s, o->opt);
    w.write(o->out);
    info("wrote " + o->out + ": " + std::to_string(w.tensor_count() / 3) + " weights, " +
         std::to_string(s.meta.value("samples", int64_t(0))) + " chunks");
    return 0;
  };
}});

}  // namespace
}  // namespace calq::cli
