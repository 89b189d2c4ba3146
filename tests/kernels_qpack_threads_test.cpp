// Packing at load (kernels/qpack.cpp fill_codes) runs one thread per row tile and writes whole
// words: every packed code reads back (QPacked::code, the layout the kernels use) as the input
// code of its source column (0 in padding), and the bytes (codes, 5-bit high bits, scales, zeros)
// are identical to a one-thread packing, for 4- and 8-bit codes with act-order and for ggml Q5_0
// / Q4_1 blocks, on shapes large enough to go parallel.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>
#include <random>
#include <vector>

#include "io/ggml_quants.h"
#include "kernels/qpack.h"

namespace calq {
namespace {

bool same(const AlignedBytes& a, const AlignedBytes& b) {
  return a.size() == b.size() && (a.size() == 0 || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

template <class F>
void expect_thread_independent(F&& pack, const char* what) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const QPacked one = pack();
  omp_set_num_threads(4);
  const QPacked many = pack();
  omp_set_num_threads(saved);
  EXPECT_TRUE(same(one.codes, many.codes)) << what;
  EXPECT_TRUE(same(one.hbits, many.hbits)) << what;
  EXPECT_TRUE(same(one.scales, many.scales)) << what;
  EXPECT_TRUE(same(one.zeros, many.zeros)) << what;
  EXPECT_EQ(one.perm, many.perm) << what;
  EXPECT_GT(one.codes.size(), 0u);
}

TEST(QPackThreads, CodesPackTheSameOnAnyThreadCount) {
  const int64_t rows = 272, cols = 4096, group = 128, groups = cols / group;  // 272: a partial tile pair
  std::mt19937 g(3);
  for (int bits : {4, 8}) {
    std::vector<uint8_t> q(size_t(rows * cols));
    for (auto& x : q) x = uint8_t(g() % (1u << bits));
    std::vector<float> scale(size_t(rows * groups)), zero(size_t(rows * groups));
    for (size_t i = 0; i < scale.size(); ++i) {
      scale[i] = 0.01f * float(1 + g() % 50);
      zero[i] = float(g() % (1u << bits));
    }
    std::vector<int32_t> gidx(static_cast<size_t>(cols));
    for (int64_t c = 0; c < cols; ++c) gidx[size_t(c)] = int32_t((c * 7919) % cols / group);  // act-order
    QuantCodesView v;
    v.bits = bits;
    v.rows = rows;
    v.cols = cols;
    v.q = q.data();
    v.scale = scale.data();
    v.zero = zero.data();
    v.groups = groups;
    v.g_idx = gidx.data();
    expect_thread_independent([&] { return qpack_codes(v); }, bits == 4 ? "4-bit" : "8-bit");
    const QPacked p = qpack_codes(v);
    int bad = 0;
    for (int64_t o = 0; o < rows; ++o)
      for (int64_t i = 0; i < p.kp; ++i) {
        const int32_t c = p.perm.empty() ? (i < cols ? int32_t(i) : -1) : p.perm[size_t(i)];
        const uint32_t want = c < 0 ? 0u : q[size_t(o * cols + c)];
        if (p.code(o, i) != want && bad++ < 3) ADD_FAILURE() << bits << "-bit: code(" << o << ", " << i << ")";
      }
    EXPECT_EQ(bad, 0);
  }
}

TEST(QPackThreads, GgmlBlocksPackTheSameOnAnyThreadCount) {
  const int64_t n = 272, k = 4096;
  std::mt19937 g(5);
  for (ggml::Type t : {ggml::Type::Q5_0, ggml::Type::Q4_1}) {
    std::vector<uint16_t> data(ggml::row_size(t, k) * size_t(n) / 2);
    for (auto& x : data) x = uint16_t(g());
    expect_thread_independent([&] { return qpack_ggml(t, data.data(), n, k); }, ggml::type_name(t).c_str());
  }
}

}  // namespace
}  // namespace calq
