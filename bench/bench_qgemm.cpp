// Quantized kernels (kernels/qgemm.h) against the float GEMMs, at the llama-1b linear shapes
// (hidden 2048, 8 KV heads × 64, FFN 8192), in one run with this machine's measured limits:
//  * prefill: the 7 linears of a decoder layer (q, k, v, o, gate, up, down) at 512 rows; GFLOP/s,
//    % of the fp32 GEMM peak (oneDNN / OpenBLAS best, bench_util.h) and × calq's bf16 GEMM.
//  * decode: the same 7 products at 1 row, cycling through >= 256 MB of weights (copies of the
//    layer), GB/s of packed weights read per token, % of the measured memory bandwidth (streaming
//    read of a 1 GiB buffer, best 64 MiB segment).
// Run it with the default OpenMP wait policy (not OMP_WAIT_POLICY=passive): waking sleeping
// threads costs tens of µs per product, a large share of a decode step.
//  * W8A8 against oneDNN's int8 matmul (s8 × s8, per-channel output scales, per-row scales as a
//    binary post-op, activation quantization included in both).
// Formats: f32, bf16 (oneDNN); w4g128 (GPTQ layout, bf16 compute), w4g128-f32 (f32 compute);
// q4_0, q4_1, q5_0, q5_1, q8_0 (GGUF blocks, bf16 compute); "-a8" suffix (w4g128-a8, q4_0-a8,
// q4_1-a8): int8 activations (W4A8); w8a8 (per-token).
// Usage: bench_qgemm [--threads 1,2] [--reps 5] [--isa avx2|avx512|scalar] [--formats f32,bf16,...]
//                    [--decode-only 1] (no prefill column, no GEMM peaks: the decode GEMVs and the read probe)
#include <cstdlib>
#include <map>
#include <memory>
#include <sstream>

#include "bench_util.h"
#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "kernels/qgemm.h"
#include "tensor/dtype.h"

using namespace calq;
using namespace calq::bench;

namespace {

struct Shape {
  const char* name;
  int64_t n, k;
};
const std::vector<Shape>& layer_shapes() {
  static const std::vector<Shape> s = {{"q", 2048, 2048}, {"k", 512, 2048}, {"v", 512, 2048}, {"o", 2048, 2048},
                                       {"gate", 8192, 2048}, {"up", 8192, 2048}, {"down", 2048, 8192}};
  return s;
}

std::vector<uint8_t> random_blocks(ggml::Type t, int64_t n, int64_t k, uint32_t seed) {
  // Random codes and a small f16 scale (and min) per block: speed does not depend on the values.
  const size_t bs = ggml::type_traits(uint32_t(t)).type_size, nb = size_t(n * k / 32);
  std::vector<uint8_t> b(bs * nb);
  std::mt19937 g(seed);
  for (auto& v : b) v = uint8_t(g());
  const uint16_t d = f32_to_f16(0.01f), m = f32_to_f16(-0.05f);
  for (size_t i = 0; i < nb; ++i) {
    std::memcpy(b.data() + i * bs, &d, 2);
    if (t == ggml::Type::Q4_1 || t == ggml::Type::Q5_1) std::memcpy(b.data() + i * bs + 2, &m, 2);
  }
  return b;
}

// A GPTQ-style W4 g128 asymmetric weight (f16 scales, integer zero points): random codes.
std::shared_ptr<PackedWeight> make_w4(int64_t n, int64_t k, uint32_t seed, ComputeType c, QActs acts = QActs::Float) {
  std::mt19937 g(seed);
  const int64_t groups = k / 128;
  std::vector<uint8_t> q(size_t(n * k));
  for (auto& v : q) v = uint8_t(g() & 15u);
  std::vector<float> scale(size_t(n * groups)), zero(scale.size());
  for (size_t i = 0; i < scale.size(); ++i) scale[i] = f16_to_f32(f32_to_f16(0.001f + 0.001f * float(g() % 16))), zero[i] = float(g() % 16);
  QuantCodesView v;
  v.bits = 4;
  v.rows = n;
  v.cols = k;
  v.q = q.data();
  v.scale = scale.data();
  v.zero = zero.data();
  v.groups = groups;
  v.group_size = 128;
  return pack_quantized(v, c, "w4", acts);
}

std::shared_ptr<PackedWeight> make_w8a8(int64_t n, int64_t k, uint32_t seed) {
  std::mt19937 g(seed);
  std::vector<int8_t> w(size_t(n * k));
  for (auto& v : w) v = int8_t(int(g() % 255) - 127);
  std::vector<float> s(size_t(n), 0.001f);
  return pack_w8a8(w8a8_pack(w.data(), s.data(), n, k), W8A8Options{});
}

std::shared_ptr<PackedWeight> make_weight(const std::string& fmt, int64_t n, int64_t k, uint32_t seed) {
  if (fmt == "f32" || fmt == "bf16") {
    const auto w = random_vec(size_t(n * k), seed);
    return pack_weight(w.data(), n, k, fmt == "f32" ? ComputeType::F32 : ComputeType::BF16);
  }
  // "-a8": int8 activations (QActs::Int8, W4A8).
  const bool a8 = fmt.size() > 3 && fmt.compare(fmt.size() - 3, 3, "-a8") == 0;
  const std::string base = a8 ? fmt.substr(0, fmt.size() - 3) : fmt;
  const QActs acts = a8 ? QActs::Int8 : QActs::Float;
  if (base == "w4g128") return make_w4(n, k, seed, ComputeType::BF16, acts);
  if (fmt == "w4g128-f32") return make_w4(n, k, seed, ComputeType::F32);
  if (fmt == "w8a8") return make_w8a8(n, k, seed);
  ggml::Type t;
  if (!ggml::type_from_name(base, &t)) {
    std::fprintf(stderr, "unknown format %s\n", fmt.c_str());
    std::exit(2);
  }
  const auto b = random_blocks(t, n, k, seed);
  return pack_ggml(t, b.data(), n, k, ComputeType::BF16, "w", acts);
}

size_t weight_bytes(const std::string& fmt, const PackedWeight& w) {
  // The float kinds hold oneDNN's blocked copy; count the values it reads.
  if (fmt == "f32") return size_t(w.n() * w.k()) * 4;
  if (fmt == "bf16") return size_t(w.n() * w.k()) * 2;
  return w.bytes();
}

struct Result {
  Rate prefill;         // GFLOP/s over the layer's 7 products at 512 rows
  double decode_s = 0;  // best seconds for the 7 products at 1 row (per layer)
  double decode_cpu = 0;
  size_t bytes = 0;     // packed weight bytes of one layer
};

Result run_format(const std::string& fmt, int reps, uint32_t seed, bool decode_only) {
  const int64_t M = 512;
  // Decode cycles through copies of the layer's weights, >= 256 MB in all (8 × the L3), so that
  // every token reads its weights from memory.
  std::vector<std::vector<std::shared_ptr<PackedWeight>>> w(1);
  Result r;
  for (const auto& s : layer_shapes()) {
    w[0].push_back(make_weight(fmt, s.n, s.k, seed++));
    r.bytes += weight_bytes(fmt, *w[0].back());
  }
  const int copies = int(std::max<size_t>(2, (size_t(256) << 20) / r.bytes + 1));
  for (int c = 1; c < copies; ++c) {
    w.emplace_back();
    for (const auto& s : layer_shapes()) w.back().push_back(make_weight(fmt, s.n, s.k, seed++));
  }
  auto x = random_vec(size_t(M * 8192), 99);
  std::vector<float> y(size_t(M * 8192));
  double flops = 0;
  for (const auto& s : layer_shapes()) flops += 2.0 * double(M) * double(s.n) * double(s.k);
  if (!decode_only) {
    const Timing tp = time_runs([&] {
      for (const auto& p : w[0]) gemm_packed(x.data(), M, *p, nullptr, y.data());
    }, reps);
    r.prefill = rate(flops, tp);
  }
  int which = 0;
  const Timing td = time_runs([&] {
    for (const auto& p : w[size_t(which)]) gemm_packed(x.data(), 1, *p, nullptr, y.data());
    which = (which + 1) % copies;
  }, 20 * reps, 2);
  r.decode_s = td.best;
  r.decode_cpu = td.cpu / omp_get_max_threads();
  return r;
}

// oneDNN int8 matmul: y = (s8 x · s8 W) · sw[n], then y[m][·] *= sx[m] in a second pass (a
// per-row scale as a [M, 1] binary post-op sends oneDNN 2.6 to its reference kernel, ref_int8,
// ~100× slower), activation quantization included: what calq's W8A8 computes.
Rate onednn_int8_layer(int reps, std::string* impl) {
  using namespace dnnl;
  using tag = memory::format_tag;
  using dt = memory::data_type;
  const int64_t M = 512;
  engine eng(engine::kind::cpu, 0);
  stream st(eng);
  struct Prim {
    matmul mm;
    memory w, dst;
  };
  std::vector<Prim> prims;
  std::vector<int8_t> xq(size_t(M * 8192));
  std::vector<float> sx(size_t(M), 0.01f);
  const auto x = random_vec(size_t(M * 8192), 7);
  double flops = 0;
  for (const auto& s : layer_shapes()) {
    const memory::desc src({M, s.k}, dt::s8, tag::ab), wany({s.k, s.n}, dt::s8, tag::any), dst({M, s.n}, dt::f32, tag::ab);
    primitive_attr attr;
    attr.set_output_scales(1 << 1, std::vector<float>(size_t(s.n), 0.001f));
    matmul::primitive_desc pd(matmul::desc(src, wany, dst), attr, eng);
    *impl = pd.impl_info_str();
    std::vector<int8_t> wv(size_t(s.n * s.k), 3);
    memory wsrc({{s.k, s.n}, dt::s8, tag::ba}, eng, wv.data());
    memory w(pd.weights_desc(), eng);
    reorder(wsrc, w).execute(st, wsrc, w);
    st.wait();
    prims.push_back({matmul(pd), w, memory(dst, eng)});
    flops += 2.0 * double(M) * double(s.n) * double(s.k);
  }
  const Timing t = time_runs([&] {
    size_t i = 0;
    for (const auto& s : layer_shapes()) {
      quantize_act_int8(x.data(), M, s.k, W8A8Options{}, xq.data(), s.k, sx.data());
      Prim& p = prims[i++];
      memory src({{M, s.k}, dt::s8, tag::ab}, eng, xq.data());
      p.mm.execute(st, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, p.w}, {DNNL_ARG_DST, p.dst}});
      st.wait();
      float* y = static_cast<float*>(p.dst.get_data_handle());
#pragma omp parallel for schedule(static)
      for (int64_t m = 0; m < M; ++m)
        for (int64_t j = 0; j < s.n; ++j) y[m * s.n + j] *= sx[size_t(m)];
    }
  }, reps);
  return rate(flops, t);
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');) v.push_back(x);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> threads = {1, 2};
  int reps = 5;
  bool decode_only = false;
  std::vector<std::string> formats = {"f32",  "bf16",      "w4g128",  "q4_0",       "q8_0",
                                      "w8a8", "w4g128-a8", "q4_0-a8", "w4g128-f32", "q4_1", "q5_0"};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--reps") reps = std::atoi(v.c_str());
    if (k == "--threads") {
      threads.clear();
      for (const auto& t : split(v)) threads.push_back(std::atoi(t.c_str()));
    }
    if (k == "--formats") formats = split(v);
    if (k == "--decode-only") decode_only = v != "0";
    if (k == "--isa") {
      Isa isa;
      if (!isa_from_name(v, &isa)) {
        std::fprintf(stderr, "bench_qgemm: unknown ISA '%s'\n", v.c_str());
        return 2;
      }
      set_max_isa(isa);
    }
  }
  std::printf("bench_qgemm: llama-1b layer linears (q,k,v,o,gate,up,down; %.1f M params), kernels %s -- %s\n\n",
              60.8, isa_name(active_isa()), load_line().c_str());
  for (int t : threads) {
    set_threads(t);
    // No oneDNN bf16 matmul without AVX-512 (gemm.h gemm_bf16_native): no bf16 peak there.
    const Peak p32 = decode_only ? Peak{} : measure_peak(false, reps);
    const Peak p16 = decode_only || !gemm_bf16_native() ? Peak{} : measure_peak(true, reps);
    const double bw = memory_bandwidth(reps);
    std::printf("%d thread(s): fp32 GEMM peak %.1f GFLOP/s (%s; cpu-time %.1f), bf16 GEMM peak %.1f (cpu-time %.1f), "
                "memory bandwidth %.1f GB/s -- %s\n\n",
                t, p32.gflops.wall, p32.how.c_str(), p32.gflops.cpu, p16.gflops.wall, p16.gflops.cpu, bw, load_line().c_str());
    std::printf("| format | prefill GFLOP/s (512 rows) | %% fp32 peak | x bf16 GEMM | cpu-time GFLOP/s | decode us/layer | "
                "weights MB/layer | decode GB/s | %% bandwidth |\n|---|---|---|---|---|---|---|---|---|\n");
    std::map<std::string, Result> res;
    uint32_t seed = 1;
    for (const auto& f : formats) {
      const Result r = run_format(f, reps, seed += 100, decode_only);
      res[f] = r;
      const double bf16 = res.count("bf16") ? res["bf16"].prefill.wall : 0.0;
      const double gbs = double(r.bytes) / r.decode_s * 1e-9;
      std::printf("| %s | %.1f | %.0f %% | %s | %.1f | %.0f | %.1f | %.1f | %.0f %% |\n", f.c_str(), r.prefill.wall,
                  100.0 * r.prefill.wall / p32.gflops.wall,
                  bf16 > 0 ? (std::to_string(r.prefill.wall / bf16).substr(0, 4)).c_str() : "-", r.prefill.cpu,
                  r.decode_s * 1e6, double(r.bytes) * 1e-6, gbs, 100.0 * gbs / bw);
      std::fflush(stdout);
    }
    if (decode_only) continue;
    std::string impl;
    const Rate dn = onednn_int8_layer(reps, &impl);
    std::printf("| oneDNN int8 matmul, %s (w8a8) | %.1f | %.0f %% | %s | %.1f | - | - | - | - |\n",
                impl.c_str(), dn.wall, 100.0 * dn.wall / p32.gflops.wall,
                res.count("bf16") ? std::to_string(dn.wall / res["bf16"].prefill.wall).substr(0, 4).c_str() : "-", dn.cpu);
    std::printf("(%s)\n\n", load_line().c_str());
  }
  return 0;
}
