// What the load-time finiteness check (model/decoder.cpp fetch: one find_non_finite pass over every
// tensor the decoder takes from its file) costs, on a synthetic Llama-shaped ~1B model written to
// disk (`calq synth --preset llama-1b --dtype bf16|f32`), page cache warm:
//   load    Decoder::load: header parsing, the mapping, and the check pass (the weights stay mapped
//           in their file dtype: the check is the first read of their bytes);
//   ready   load + packing every linear for the compute type (dtype conversion and the GEMM layout):
//           what the first forward pass pays before any product, i.e. the load a user waits for;
//   check   the check pass alone, over every tensor of the file (after a warm-up read).
// Reported: check / ready (the target: <= 2 %) and check / load.
//
// Usage: bench_load [--dir DIR] [--dtype bf16|f32] [--reps 3] [--threads 1,2] [--layers N]
//        (DIR defaults to $TMPDIR/calq_bench_load_<preset>_<dtype>; written once, reused after)
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "bench_util.h"
#include "io/checkpoint.h"
#include "model/synthetic.h"

using namespace calq;
using namespace calq::bench;

namespace {

struct Args {
  std::string dir, dtype = "bf16", preset = "llama-1b";
  int reps = 3, layers = 0;
  std::vector<int> threads = {1, 2};
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--dir") a.dir = v;
    else if (k == "--dtype") a.dtype = v;
    else if (k == "--reps") a.reps = std::atoi(v.c_str());
    else if (k == "--layers") a.layers = std::atoi(v.c_str());
    else if (k == "--preset") a.preset = v;
    else if (k == "--threads") {
      a.threads.clear();
      std::stringstream ss(v);
      for (std::string x; std::getline(ss, x, ',');) a.threads.push_back(std::atoi(x.c_str()));
    } else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      std::exit(2);
    }
  }
  if (a.dir.empty())
    a.dir = (std::filesystem::temp_directory_path() / ("calq_bench_load_" + a.preset + "_" + a.dtype)).string();
  return a;
}

// Every tensor of the checkpoint through the check (what Decoder::load does per tensor); returns
// the number of non-finite tensors (0) so the work cannot be optimised away.
int check_all(const Checkpoint& ck) {
  int bad = 0;
  for (const auto& n : ck.names()) bad += find_non_finite(ck.get(n)) >= 0;
  return bad;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  std::printf("bench_load: preset %s, %s storage, best of %d timed runs, page cache warm\n", a.preset.c_str(),
              a.dtype.c_str(), a.reps);
  std::printf("conditions at start: %s\n", load_line().c_str());
  if (!std::filesystem::exists(path_join(a.dir, "model.safetensors"))) {
    const double t0 = now_s();
    SynthOptions so;
    so.dtype = a.dtype == "f32" ? DType::F32 : DType::BF16;
    write_synth_model(synth_config_json(a.preset, a.layers), so, a.dir);
    std::printf("wrote %s in %.1f s\n", a.dir.c_str(), now_s() - t0);
  }
  const Checkpoint ck = Checkpoint::open(a.dir);
  size_t bytes = 0;
  for (const auto& n : ck.names()) bytes += ck.info(n).end - ck.info(n).begin;
  std::printf("model: %s, %.2f GB of tensors\n", a.dir.c_str(), double(bytes) * 1e-9);
  const ComputeType compute = a.dtype == "f32" ? ComputeType::F32 : ComputeType::BF16;

  std::printf("\n| threads | load s | ready s (load + pack, %s) | check s | check GB/s | check / ready | check / load |\n",
              compute_type_name(compute));
  std::printf("|---|---|---|---|---|---|---|\n");
  for (int th : a.threads) {
    set_threads(th);
    int sink = check_all(ck);  // warm-up: the file in the page cache, the threads started
    const Timing load = time_runs([&] { sink += Decoder::load(a.dir, compute)->num_layers(); }, a.reps, 1);
    const Timing ready = time_runs(
        [&] {
          auto m = Decoder::load(a.dir, compute);
          for (Linear* l : m->all_linears(true)) l->packed(compute);
        },
        a.reps, 0);
    const Timing check = time_runs([&] { sink += check_all(ck); }, a.reps, 0);
    std::printf("| %d | %.3f | %.3f | %.3f | %.1f | %.2f%% | %.0f%% |\n", th, load.best, ready.best, check.best,
                double(bytes) / check.best * 1e-9, 100.0 * check.best / ready.best, 100.0 * check.best / load.best);
    if (sink < 0) std::printf("(impossible)\n");
  }
  std::printf("\ncheck = one find_non_finite pass per tensor (exponent-mask test on the stored bits); load includes "
              "it.\nconditions at end: %s\n", load_line().c_str());
  return 0;
}
