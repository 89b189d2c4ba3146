#include "quant/quantizer.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <vector>

#include "tensor/dtype.h"
#include "util/error.h"

namespace calq {

const char* range_rule_name(RangeRule r) { return r == RangeRule::Gptq ? "gptq" : "awq"; }

const char* block_shape_name(BlockShape b) {
  switch (b) {
    case BlockShape::PerTensor: return "per_tensor";
    case BlockShape::PerChannel: return "per_channel";
    case BlockShape::PerGroup: return "per_group";
  }
  return "?";
}

void check_bits(int bits, const std::string& what) {
  if (bits < 2 || bits > 8)
    throw ArgError(what + ": bits must be in 2..8, got " + std::to_string(bits));
}

QuantScheme QuantScheme::weights(int bits, bool sym, int group_size, RangeRule rule, bool f16_scales) {
  QuantScheme s;
  s.bits = bits;
  s.sym = sym;
  s.block = group_size == -1 ? BlockShape::PerChannel : BlockShape::PerGroup;
  s.group_size = group_size == -1 ? 0 : group_size;
  s.rule = rule;
  s.f16_scales = f16_scales;
  return s;
}

void QuantScheme::validate() const {
  check_bits(bits, "quantizer");
  if (block == BlockShape::PerGroup && group_size < 1)
    throw ArgError("quantizer: group size must be >= 1 (or -1 for per-channel), got " + std::to_string(group_size));
}

int64_t QuantScheme::n_groups(int64_t cols) const { return QuantizedWeight::groups_for(cols, stored_group_size()); }

std::string QuantScheme::describe() const {
  std::string s = std::to_string(bits) + "-bit " + (sym ? "sym" : "asym") + " ";
  if (block == BlockShape::PerGroup) s += "g" + std::to_string(group_size);
  else s += block_shape_name(block);
  s += std::string(" (") + range_rule_name(rule) + " range, " + (f16_scales ? "fp16" : "fp32") + " scales)";
  return s;
}

Json QuantScheme::to_json() const {
  return {{"bits", bits}, {"sym", sym}, {"block", block_shape_name(block)}, {"group_size", stored_group_size()},
          {"range_rule", range_rule_name(rule)}, {"scale_dtype", f16_scales ? "f16" : "f32"}};
}

namespace {

// fp16 rounding of a positive scale; never 0 (the smallest fp16 subnormal instead), so that x / scale
// stays finite for blocks of tiny values.
float round_scale_f16(float s) {
  const float r = f16_to_f32(f32_to_f16(s));
  return r > 0.0f ? r : std::ldexp(1.0f, -24);
}

}  // namespace

AffineParams params_from_range(float xmin, float xmax, const QuantScheme& s) {
  const int maxq = s.maxq();
  AffineParams p;
  if (s.rule == RangeRule::Gptq) {
    // gptq quant.py find_params (perchannel rows): the range always contains 0.
    xmin = std::min(xmin, 0.0f);
    xmax = std::max(xmax, 0.0f);
    if (s.sym) {
      xmax = std::max(std::fabs(xmin), xmax);
      if (xmin < 0) xmin = -xmax;
    }
    if (xmin == 0.0f && xmax == 0.0f) {
      xmin = -1.0f;
      xmax = 1.0f;
    }
    p.scale = (xmax - xmin) / float(maxq);
    if (s.f16_scales) p.scale = round_scale_f16(p.scale);
    p.zero = s.sym ? float(maxq + 1) / 2.0f : std::nearbyint(-xmin / p.scale);
  } else if (s.sym) {
    // AutoAWQ (zero_point=False) / SmoothQuant absmax: scale = max(absmax, 1e-5) / (2^(b-1) - 1).
    const float amax = std::max(std::max(std::fabs(xmin), std::fabs(xmax)), 1e-5f);
    p.scale = amax / float((1 << (s.bits - 1)) - 1);
    if (s.f16_scales) p.scale = round_scale_f16(p.scale);
    p.zero = float(1 << (s.bits - 1));
  } else {
    // AutoAWQ pseudo_quantize_tensor (zero_point=True).
    p.scale = std::max(xmax - xmin, 1e-5f) / float(maxq);
    if (s.f16_scales) p.scale = round_scale_f16(p.scale);
    p.zero = std::clamp(-std::nearbyint(xmin / p.scale), 0.0f, float(maxq));
  }
  return p;
}

AffineParams find_params(const float* x, int64_t n, int64_t stride, const QuantScheme& s) {
  float lo = n > 0 ? x[0] : 0.0f, hi = lo;
  bool nan = lo != lo;
  for (int64_t i = 1; i < n; ++i) {
    const float v = x[i * stride];
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    nan |= v != v;
  }
  if (nan) return {std::nanf(""), std::nanf("")};  // refused by QuantizedWeight::validate()
  return params_from_range(lo, hi, s);
}

void require_finite(const float* x, int64_t rows, int64_t cols, const std::string& what) {
  const int64_t k = find_non_finite(x, size_t(rows * cols));
  if (k < 0) return;
  throw NonFiniteError(what + " holds " + non_finite_kind(x, DType::F32, size_t(k)) + " at [" +
                       std::to_string(k / std::max<int64_t>(cols, 1)) + ", " +
                       std::to_string(k % std::max<int64_t>(cols, 1)) + "]");
}

QuantizedWeight make_quantized_weight(int64_t rows, int64_t cols, const QuantScheme& s) {
  s.validate();
  QuantizedWeight qw;
  qw.bits = s.bits;
  qw.group_size = s.stored_group_size();
  qw.sym = s.sym;
  qw.rows = rows;
  qw.cols = cols;
  const int64_t ng = s.n_groups(cols);
  qw.q.assign(size_t(rows * cols), 0);
  qw.scale.assign(size_t(rows * ng), 1.0f);
  qw.zero.assign(size_t(rows * ng), 0.0f);
  qw.g_idx.resize(size_t(cols));
  for (int64_t c = 0; c < cols; ++c) qw.g_idx[size_t(c)] = s.block == BlockShape::PerGroup ? int32_t(c / s.group_size) : 0;
  return qw;
}

namespace {

// Quantizes row r of W into qw (row-local work: safe to run rows in parallel).
void rtn_row(const float* w, int64_t r, int64_t cols, const QuantScheme& s, const AffineParams* tensor_params,
             QuantizedWeight& qw) {
  const int maxq = s.maxq();
  const int64_t ng = qw.n_groups();
  const float* row = w + r * cols;
  const int64_t g_cols = s.block == BlockShape::PerGroup ? s.group_size : cols;
  for (int64_t g = 0; g < ng; ++g) {
    const int64_t c0 = g * g_cols, c1 = std::min(cols, c0 + g_cols);
    const AffineParams p = tensor_params ? *tensor_params : find_params(row + c0, c1 - c0, 1, s);
    qw.scale[size_t(r * ng + g)] = p.scale;
    qw.zero[size_t(r * ng + g)] = p.zero;
    for (int64_t c = c0; c < c1; ++c) qw.q[size_t(r * cols + c)] = quantize_code(row[c], p, maxq);
  }
}

}  // namespace

QuantizedWeight quantize_rtn_ref(const float* w, int64_t rows, int64_t cols, const QuantScheme& s) {
  require_finite(w, rows, cols, "the weight");
  QuantizedWeight qw = make_quantized_weight(rows, cols, s);
  AffineParams tp;
  if (s.block == BlockShape::PerTensor) tp = find_params(w, rows * cols, 1, s);
  for (int64_t r = 0; r < rows; ++r) rtn_row(w, r, cols, s, s.block == BlockShape::PerTensor ? &tp : nullptr, qw);
  return qw;
}

QuantizedWeight quantize_rtn(const float* w, int64_t rows, int64_t cols, const QuantScheme& s) {
  require_finite(w, rows, cols, "the weight");
  QuantizedWeight qw = make_quantized_weight(rows, cols, s);
  AffineParams tp;
  if (s.block == BlockShape::PerTensor) tp = find_params(w, rows * cols, 1, s);
  const AffineParams* tpp = s.block == BlockShape::PerTensor ? &tp : nullptr;
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
  for (int64_t r = 0; r < rows; ++r) rtn_row(w, r, cols, s, tpp, qw);
  return qw;
}

// ---- activations -------------------------------------------------------------------------

namespace {
inline float absmax_scale(float amax, int bits) { return std::max(amax, 1e-5f) / float((1 << (bits - 1)) - 1); }

// One row; false (row untouched) when it holds a NaN or ±inf: the absmax pass tests that on the side
// (!(|x| <= FLT_MAX) is true for both), so the check costs no extra read.
bool per_token_row(float* x, int64_t cols, int bits) {
  float amax = 0.0f;
  bool bad = false;
  for (int64_t c = 0; c < cols; ++c) {
    const float a = std::fabs(x[c]);
    amax = std::max(amax, a);
    bad |= !(a <= FLT_MAX);
  }
  if (bad) return false;
  const float s = absmax_scale(amax, bits);
  for (int64_t c = 0; c < cols; ++c) x[c] = s * std::nearbyint(x[c] / s);
  return true;
}

[[noreturn]] void non_finite_row(const float* x, int64_t row, int64_t cols) {
  require_finite(x + row * cols, 1, cols, "activation quantizer: input row " + std::to_string(row));
  throw NonFiniteError("activation quantizer: input row " + std::to_string(row) + " is not finite");
}
}  // namespace

float static_scale_for_absmax(float absmax, int bits) {
  check_bits(bits, "activation quantizer");
  return absmax_scale(absmax, bits);
}

void fake_quant_per_token_ref(float* x, int64_t rows, int64_t cols, int bits) {
  check_bits(bits, "activation quantizer");
  for (int64_t r = 0; r < rows; ++r)
    if (!per_token_row(x + r * cols, cols, bits)) non_finite_row(x, r, cols);
}

void fake_quant_per_token(float* x, int64_t rows, int64_t cols, int bits) {
  check_bits(bits, "activation quantizer");
  int64_t bad_row = rows;  // the first row that is not finite (an exception must not leave the loop)
#pragma omp parallel for schedule(static) reduction(min : bad_row) if (rows * cols > 65536)
  for (int64_t r = 0; r < rows; ++r)
    if (!per_token_row(x + r * cols, cols, bits)) bad_row = std::min(bad_row, r);
  if (bad_row < rows) non_finite_row(x, bad_row, cols);
}

void fake_quant_per_tensor_dynamic(float* x, int64_t n, int bits) {
  check_bits(bits, "activation quantizer");
  require_finite(x, 1, n, "activation quantizer: the input");
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float s = absmax_scale(amax, bits);
  for (int64_t i = 0; i < n; ++i) x[i] = s * std::nearbyint(x[i] / s);
}

namespace {
// Columns [c0, c1) of x [rows, cols]: absmax per column, then round(x / s)·s.
void per_channel_cols(float* x, int64_t rows, int64_t cols, int64_t c0, int64_t c1, int bits) {
  std::vector<float> s(size_t(c1 - c0), 0.0f);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = c0; c < c1; ++c) s[size_t(c - c0)] = std::max(s[size_t(c - c0)], std::fabs(x[r * cols + c]));
  for (float& v : s) v = absmax_scale(v, bits);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = c0; c < c1; ++c) x[r * cols + c] = s[size_t(c - c0)] * std::nearbyint(x[r * cols + c] / s[size_t(c - c0)]);
}
}  // namespace

void fake_quant_per_channel_ref(float* x, int64_t rows, int64_t cols, int bits) {
  check_bits(bits, "activation quantizer");
  per_channel_cols(x, rows, cols, 0, cols, bits);
}

void fake_quant_per_channel(float* x, int64_t rows, int64_t cols, int bits) {
  check_bits(bits, "activation quantizer");
  constexpr int64_t kBlock = 64;  // column blocks: each thread reads whole rows of its block
  const int64_t blocks = (cols + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
  for (int64_t b = 0; b < blocks; ++b) per_channel_cols(x, rows, cols, b * kBlock, std::min(cols, (b + 1) * kBlock), bits);
}

void fake_quant_per_tensor_static(float* x, int64_t n, float scale, int bits) {
  check_bits(bits, "activation quantizer");
  if (!(scale > 0.0f) || !std::isfinite(scale)) throw ArgError("static activation scale must be positive and finite");
  const float lo = -float(1 << (bits - 1)), hi = float((1 << (bits - 1)) - 1);
  require_finite(x, 1, n, "activation quantizer: the input");
  for (int64_t i = 0; i < n; ++i) x[i] = scale * std::clamp(std::nearbyint(x[i] / scale), lo, hi);
}

}  // namespace calq
