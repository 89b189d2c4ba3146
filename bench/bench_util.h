// Shared by the benchmarks: timing, thread control, machine load, and the GEMM peak measurement
// that the prefill benchmark's "GEMM-bound limit" is defined against.
#pragma once
#include <cblas.h>
#include <omp.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <dnnl.hpp>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

extern "C" void openblas_set_num_threads(int);

namespace calq::bench {

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// CPU time of the whole process (all threads), seconds.
inline double cpu_s() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// Best (minimum) and median wall time of `reps` runs after `warm` untimed runs, and the least
// process CPU time of a run (on a busy machine, cpu/threads is what a quiet one would approach).
struct Timing {
  double best = 0, median = 0, cpu = 0, mean = 0, cpu_mean = 0;
};
inline Timing time_runs(const std::function<void()>& f, int reps, int warm = 1) {
  for (int i = 0; i < warm; ++i) f();
  std::vector<double> t, c;
  for (int i = 0; i < reps; ++i) {
    const double t0 = now_s(), c0 = cpu_s();
    f();
    t.push_back(now_s() - t0);
    c.push_back(cpu_s() - c0);
  }
  double sum = 0, csum = 0;
  for (size_t i = 0; i < t.size(); ++i) sum += t[i], csum += c[i];
  std::sort(t.begin(), t.end());
  return {t.front(), t[t.size() / 2], *std::min_element(c.begin(), c.end()), sum / double(reps), csum / double(reps)};
}

// The shared data pack: $CALQ_DATA, else ../shared (run the benchmarks from the repository root).
inline std::string data_root() {
  const char* env = std::getenv("CALQ_DATA");
  return env && *env ? std::string(env) : std::string("../shared");
}

inline void set_threads(int n) {
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

// 1-minute load average and the CPU count: printed with every result (the machine is shared).
inline std::string load_line() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return "loadavg " + a + " " + b + " " + c + ", " + std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) + " CPUs";
}

inline std::vector<float> random_vec(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

// GFLOP/s of a product: from the best wall time, and from the least CPU time per thread.
struct Rate {
  double wall = 0, cpu = 0;
};
inline Rate rate(double flops, const Timing& t) {
  return {flops / t.best * 1e-9, flops / (t.cpu / omp_get_max_threads()) * 1e-9};
}

// Raw oneDNN matmul y[M,N] = x[M,K] · W[K,N], W pre-reordered to the layout oneDNN picks
// (format_tag::any), src already in `dt`: the library's best case.
inline Rate onednn_matmul_gflops(int64_t M, int64_t N, int64_t K, dnnl::memory::data_type dt, int reps) {
  using namespace dnnl;
  using tag = memory::format_tag;
  engine eng(engine::kind::cpu, 0);
  stream s(eng);
  const memory::desc src({M, K}, dt, tag::ab), wany({K, N}, dt, tag::any), dst({M, N}, memory::data_type::f32, tag::ab);
  matmul::primitive_desc pd(matmul::desc(src, wany, dst), eng);
  memory a(src, eng), w(pd.weights_desc(), eng), c(dst, eng);
  auto av = random_vec(size_t(M * K), 1), wv = random_vec(size_t(K * N), 2);
  memory af({{M, K}, memory::data_type::f32, tag::ab}, eng, av.data());
  memory wf({{K, N}, memory::data_type::f32, tag::ba}, eng, wv.data());
  reorder(af, a).execute(s, af, a);
  reorder(wf, w).execute(s, wf, w);
  matmul mm(pd);
  const Timing t = time_runs([&] {
    mm.execute(s, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, c}});
    s.wait();
  }, reps);
  return rate(2.0 * double(M) * double(N) * double(K), t);
}

// OpenBLAS sgemm, y = x · Wᵀ with W [N, K] row-major (the linear-layer layout).
inline Rate openblas_sgemm_gflops(int64_t M, int64_t N, int64_t K, int reps) {
  auto a = random_vec(size_t(M * K), 1), w = random_vec(size_t(N * K), 2);
  std::vector<float> c(size_t(M * N));
  const Timing t = time_runs([&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(M), int(N), int(K), 1.0f, a.data(), int(K), w.data(),
                int(K), 0.0f, c.data(), int(N));
  }, reps);
  return rate(2.0 * double(M) * double(N) * double(K), t);
}

struct Shape3 {
  int64_t m, n, k;
};
// The two "large square-ish" shapes the peaks are measured at.
inline const std::vector<Shape3>& peak_shapes() {
  static const std::vector<Shape3> s = {{512, 8192, 2048}, {2048, 2048, 2048}};
  return s;
}

struct Peak {
  Rate gflops;
  std::string how;  // library and shape of the best wall-time result
};

// Measured fp32 GEMM peak at the current thread count: best of oneDNN f32 and OpenBLAS sgemm over
// peak_shapes() (wall and CPU-time rates maximised separately). With `bf16`, oneDNN bf16
// (f32 accumulation) instead.
inline Peak measure_peak(bool bf16, int reps = 5) {
  Peak p;
  auto take = [&p](const Rate& r, const std::string& how) {
    if (r.wall > p.gflops.wall) p.how = how;
    p.gflops.wall = std::max(p.gflops.wall, r.wall);
    p.gflops.cpu = std::max(p.gflops.cpu, r.cpu);
  };
  for (const auto& s : peak_shapes()) {
    const std::string shape = std::to_string(s.m) + "x" + std::to_string(s.n) + "x" + std::to_string(s.k);
    take(onednn_matmul_gflops(s.m, s.n, s.k, bf16 ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32, reps),
         std::string("oneDNN ") + (bf16 ? "bf16 " : "f32 ") + shape);
    if (!bf16) take(openblas_sgemm_gflops(s.m, s.n, s.k, reps), "OpenBLAS sgemm " + shape);
  }
  return p;
}

// Streaming read bandwidth (GB/s) at the current thread count: a 1 GiB buffer (32x a 32 MiB L3)
// read in 64 MiB segments, the best segment over `reps` passes. Segments of about a decode
// layer's bytes, timed like the decode runs (best of many short runs), so the two compare. Each
// thread reads its own contiguous part of a segment (static schedule), as the GEMV kernels do.
inline double memory_bandwidth(int reps) {
  const size_t words = size_t(1) << 27, seg = size_t(1) << 23;  // 1 GiB, 64 MiB of uint64
  std::vector<uint64_t> buf(words, 1);
  volatile uint64_t sink = 0;
  double best = 1e30;
  for (int rep = 0; rep < reps; ++rep)
    for (size_t s0 = 0; s0 < words; s0 += seg) {
      const double t0 = now_s();
      uint64_t total = 0;
#pragma omp parallel for reduction(+ : total) schedule(static)
      for (int64_t i = int64_t(s0); i < int64_t(s0 + seg); i += 8) {
        const uint64_t* p = buf.data() + i;
        total += (p[0] ^ p[1]) + (p[2] ^ p[3]) + (p[4] ^ p[5]) + (p[6] ^ p[7]);
      }
      best = std::min(best, now_s() - t0);
      sink = sink + total;
    }
  return double(seg * 8) / best * 1e-9;
}

}  // namespace calq::bench
