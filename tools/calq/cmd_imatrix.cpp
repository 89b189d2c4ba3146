// calq imatrix STATS.safetensors -o imatrix.gguf [--format gguf|dat] [--dataset NAME ...] [--chunk-size N]
// Exports the importance matrix (Σx² per input channel and token counts) as a llama.cpp imatrix
// file for `llama-quantize --imatrix` (src/formats/imatrix.h): GGUF, or the legacy .dat that older
// llama.cpp releases and their forks read. Default: by the output's extension (.dat -> dat).
#include <memory>

#include "formats/output.h"
#include "io/mapped_file.h"

#include "formats/imatrix.h"
#include "command.h"

namespace calq::cli {
namespace {

struct ImatrixOpts {
  std::string stats, out, format;
  ImatrixOptions opt;
};

CALQ_REGISTER_COMMAND({{"imatrix"}, "Export statistics as a llama.cpp imatrix GGUF", [](CLI::App& app) -> Runner {
  auto o = std::make_shared<ImatrixOpts>();
  app.add_option("stats", o->stats, "statistics file from `calq stats`")->required();
  app.add_option("-o,--out", o->out, "output .gguf")->required();
  app.add_option("--dataset", o->opt.datasets, "imatrix.datasets entries (default: the calibration sets)");
  app.add_option("--chunk-size", o->opt.chunk_size, "imatrix.chunk_size (default: the sets' seqlen)");
  app.add_option("--format", o->format,
                 "gguf (llama.cpp since the GGUF imatrix format, mid-2025) | dat (legacy: older releases and forks); "
                 "default: dat for a .dat output, else gguf")
      ->check(one_of({"gguf", "dat"}));
  return [o] {
    const ActStats s = load_stats(o->stats);
    if (o->format == "dat" || (o->format.empty() && o->out.ends_with(".dat"))) {
      check_new_output_file(o->out);
      write_file_atomic(o->out, imatrix_dat_bytes(s, o->opt));
      info("wrote " + o->out + " (legacy imatrix .dat)");
      return 0;
    }
    const gguf::Writer w = imatrix_writer(s, o->opt);
    w.write(o->out);
    info("wrote " + o->out + ": " + std::to_string(w.tensor_count() / 3) + " weights, " +
         std::to_string(s.meta.value("samples", int64_t(0))) + " chunks");
    return 0;
  };
}});

}  // namespace
}  // namespace calq::cli
