#include "formats/packing.h"

#include <cmath>
#include <cstring>

#include "tensor/dtype.h"
#include "util/error.h"

namespace calq {

namespace {

Tensor to_f16(const std::vector<float>& scale, int64_t rows, int64_t ng, PackStats* stats) {
  // QuantizedWeight keeps scale [out, G]; the checkpoints store [G, out].
  Tensor t = Tensor::empty(DType::F16, {ng, rows});
  uint16_t* d = t.data_mut<uint16_t>();
  for (int64_t o = 0; o < rows; ++o)
    for (int64_t g = 0; g < ng; ++g) {
      const float s = scale[size_t(o * ng + g)];
      const uint16_t h = f32_to_f16(s);
      if (stats && f16_to_f32(h) != s) ++stats->scales_rounded;
      d[g * rows + o] = h;
    }
  return t;
}

void count_zero_points(const QuantizedWeight& w, PackStats* stats) {
  if (!stats || w.sym) return;
  for (float z : w.zero)
    if (z == 0) ++stats->zero_is_zero;
}

std::vector<float> scales_from(const Tensor& scales, const std::string& what) {
  if (!is_float_dtype(scales.dtype())) throw FormatError(what + ": scales must be a float tensor");
  // The f16 scales are the only floats of a packed weight: a NaN/inf one would dequantize a whole
  // group to NaN, so it is named here (what = "<folder>: <module>.scales").
  if (const int64_t k = find_non_finite(scales); k >= 0)
    throw NonFiniteError(what + " holds a non-finite value (" + describe_non_finite(scales, k) + ")");
  std::vector<float> s(size_t(scales.numel()));
  convert_to_f32(scales.raw(), scales.dtype(), s.data(), s.size());
  return s;
}

void require(bool ok, const std::string& msg) {
  if (!ok) throw FormatError(msg);
}

}  // namespace

std::vector<uint32_t> pack_bits(const uint32_t* values, int64_t n, int bits) {
  std::vector<uint32_t> words(size_t((n * bits + 31) / 32), 0);
  for (int64_t k = 0; k < n; ++k) {
    const uint64_t bit = uint64_t(k) * uint64_t(bits);
    const uint64_t v = values[k] & ((1u << bits) - 1);
    words[bit / 32] |= uint32_t(v << (bit % 32));
    if (bit % 32 + uint64_t(bits) > 32) words[bit / 32 + 1] |= uint32_t(v >> (32 - bit % 32));
  }
  return words;
}

uint32_t awq_pack_word(const uint32_t v[8]) {
  uint32_t w = 0;
  for (int i = 0; i < 8; ++i) w |= (v[kAwqOrder[i]] & 0xFu) << (4 * i);
  return w;
}

void awq_unpack_word(uint32_t word, uint32_t v[8]) {
  for (int i = 0; i < 8; ++i) v[kAwqOrder[i]] = (word >> (4 * i)) & 0xFu;
}

// ---- GPTQ -------------------------------------------------------------------------------------

GptqTensors gptq_pack(const QuantizedWeight& w, GptqZeroFormat fmt, const std::string& what, PackStats* stats) {
  w.validate(what);
  const int bits = w.bits;
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    throw UnsupportedError(what + ": GPTQ checkpoints hold 2, 3, 4 or 8 bits, not " + std::to_string(bits));
  const int64_t in = w.cols, out = w.rows, ng = w.n_groups();
  if ((in * bits) % 32 != 0 || (out * bits) % 32 != 0)
    throw UnsupportedError(what + ": [" + std::to_string(out) + ", " + std::to_string(in) + "] at " + std::to_string(bits) +
                           " bits cannot be packed into int32 words (GPTQ needs in·bits and out·bits multiples of 32)");
  GptqTensors t;
  const int64_t qrows = in * bits / 32, zcols = out * bits / 32;
  t.qweight = Tensor::empty(DType::I32, {qrows, out});
  auto* qw = t.qweight.data_mut<int32_t>();
  std::vector<uint32_t> col(static_cast<size_t>(in));
  for (int64_t o = 0; o < out; ++o) {
    for (int64_t c = 0; c < in; ++c) col[size_t(c)] = w.q[size_t(o * in + c)];
    const std::vector<uint32_t> words = pack_bits(col.data(), in, bits);
    for (int64_t r = 0; r < qrows; ++r) qw[r * out + o] = int32_t(words[size_t(r)]);
  }
  t.qzeros = Tensor::empty(DType::I32, {ng, zcols});
  auto* qz = t.qzeros.data_mut<int32_t>();
  const uint32_t mask = (1u << bits) - 1;
  std::vector<uint32_t> zrow(static_cast<size_t>(out));
  for (int64_t g = 0; g < ng; ++g) {
    for (int64_t o = 0; o < out; ++o) {
      const uint32_t z = uint32_t(w.zero[size_t(o * ng + g)]);
      zrow[size_t(o)] = fmt == GptqZeroFormat::V1 ? (z - 1) & mask : z;
    }
    const std::vector<uint32_t> words = pack_bits(zrow.data(), out, bits);
    for (int64_t k = 0; k < zcols; ++k) qz[g * zcols + k] = int32_t(words[size_t(k)]);
  }
  t.scales = to_f16(w.scale, out, ng, stats);
  t.g_idx = Tensor::empty(DType::I32, {in});
  std::memcpy(t.g_idx.data_mut<int32_t>(), w.g_idx.data(), size_t(in) * 4);
  count_zero_points(w, stats);
  return t;
}

QuantizedWeight gptq_unpack(const Tensor& qweight, const Tensor& qzeros, const Tensor& scales, const Tensor& g_idx,
                            int bits, int group_size, bool sym, GptqZeroFormat fmt, const std::string& what) {
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    throw UnsupportedError(what + ": GPTQ bits " + std::to_string(bits) + " not supported (2, 3, 4, 8)");
  require(qweight.dtype() == DType::I32 && qweight.ndim() == 2, what + ".qweight: expected a 2-D int32 tensor");
  require(qzeros.dtype() == DType::I32 && qzeros.ndim() == 2, what + ".qzeros: expected a 2-D int32 tensor");
  require(scales.ndim() == 2, what + ".scales: expected a 2-D tensor");
  const int64_t qrows = qweight.dim(0), out = qweight.dim(1), in = qrows * 32 / bits, ng = scales.dim(0);
  require(qrows > 0 && (qrows * 32) % bits == 0, what + ".qweight: " + std::to_string(qrows) + " rows do not hold whole " +
                                                       std::to_string(bits) + "-bit columns");
  require(scales.dim(1) == out, what + ".scales: shape " + shape_str(scales.shape()) + " does not match qweight " +
                                    shape_str(qweight.shape()));
  require(qzeros.dim(0) == ng && qzeros.dim(1) * 32 == out * bits,
          what + ".qzeros: shape " + shape_str(qzeros.shape()) + " does not match scales " + shape_str(scales.shape()));
  require(ng >= 1, what + ".scales: no groups");
  QuantizedWeight w;
  w.bits = bits;
  w.group_size = group_size;
  w.sym = sym;
  w.rows = out;
  w.cols = in;
  w.g_idx.resize(size_t(in));
  require(ng == QuantizedWeight::groups_for(in, group_size),
          what + ": " + std::to_string(ng) + " groups do not match group_size " + std::to_string(group_size) + " over " +
              std::to_string(in) + " input columns");
  if (g_idx.defined()) {
    require((g_idx.dtype() == DType::I32 || g_idx.dtype() == DType::I64) && g_idx.numel() == in,
            what + ".g_idx: expected " + std::to_string(in) + " int32 entries, got " + shape_str(g_idx.shape()));
    for (int64_t c = 0; c < in; ++c) {
      const int64_t g = g_idx.dtype() == DType::I32 ? g_idx.data<int32_t>()[c] : g_idx.data<int64_t>()[c];
      require(g >= 0 && g < ng, what + ".g_idx: entry " + std::to_string(g) + " out of range [0, " + std::to_string(ng) + ")");
      w.g_idx[size_t(c)] = int32_t(g);
    }
  } else {
    for (int64_t c = 0; c < in; ++c) w.g_idx[size_t(c)] = group_size > 0 ? int32_t(c / group_size) : 0;
  }
  w.q.resize(size_t(out * in));
  const auto* qw = qweight.data<int32_t>();
  std::vector<uint32_t> col(static_cast<size_t>(qrows));
  for (int64_t o = 0; o < out; ++o) {
    for (int64_t r = 0; r < qrows; ++r) col[size_t(r)] = uint32_t(qw[r * out + o]);
    for (int64_t c = 0; c < in; ++c) w.q[size_t(o * in + c)] = uint8_t(unpack_bits_at(col.data(), c, bits));
  }
  const std::vector<float> s = scales_from(scales, what + ".scales");
  w.scale.resize(size_t(out * ng));
  w.zero.resize(size_t(out * ng));
  const auto* qz = qzeros.data<int32_t>();
  const int64_t zcols = qzeros.dim(1);
  const uint32_t mask = (1u << bits) - 1;
  for (int64_t g = 0; g < ng; ++g) {
    const uint32_t* row = reinterpret_cast<const uint32_t*>(qz + g * zcols);
    for (int64_t o = 0; o < out; ++o) {
      const uint32_t stored = unpack_bits_at(row, o, bits);
      w.zero[size_t(o * ng + g)] = float(fmt == GptqZeroFormat::V1 ? (stored + 1) & mask : stored);
      w.scale[size_t(o * ng + g)] = s[size_t(g * out + o)];
    }
  }
  return w;
}

// ---- AWQ --------------------------------------------------------------------------------------

AwqTensors awq_pack(const QuantizedWeight& w, const std::string& what, PackStats* stats) {
  w.validate(what);
  if (w.bits != 4) throw UnsupportedError(what + ": the AWQ GEMM layout is 4-bit only, not " + std::to_string(w.bits) + "-bit");
  const int64_t in = w.cols, out = w.rows, ng = w.n_groups();
  if (w.group_size <= 0 || in % w.group_size != 0)
    throw UnsupportedError(what + ": AWQ needs a group size dividing the " + std::to_string(in) + " input columns (got " +
                           std::to_string(w.group_size) + ")");
  if (out % 8 != 0) throw UnsupportedError(what + ": AWQ packs 8 output columns per int32; " + std::to_string(out) + " is not a multiple of 8");
  for (int64_t c = 0; c < in; ++c)
    if (w.g_idx[size_t(c)] != c / w.group_size)
      throw UnsupportedError(what + ": AWQ has no g_idx; act-order (permuted groups) cannot be exported to AWQ");
  AwqTensors t;
  const int64_t wcols = out / 8;
  t.qweight = Tensor::empty(DType::I32, {in, wcols});
  auto* qw = t.qweight.data_mut<int32_t>();
  uint32_t v[8];
  for (int64_t c = 0; c < in; ++c)
    for (int64_t k = 0; k < wcols; ++k) {
      for (int j = 0; j < 8; ++j) v[j] = w.q[size_t((8 * k + j) * in + c)];
      qw[c * wcols + k] = int32_t(awq_pack_word(v));
    }
  t.qzeros = Tensor::empty(DType::I32, {ng, wcols});
  auto* qz = t.qzeros.data_mut<int32_t>();
  for (int64_t g = 0; g < ng; ++g)
    for (int64_t k = 0; k < wcols; ++k) {
      for (int j = 0; j < 8; ++j) v[j] = uint32_t(w.zero[size_t((8 * k + j) * ng + g)]);
      qz[g * wcols + k] = int32_t(awq_pack_word(v));
    }
  t.scales = to_f16(w.scale, out, ng, stats);
  count_zero_points(w, stats);
  return t;
}

QuantizedWeight awq_unpack(const Tensor& qweight, const Tensor& qzeros, const Tensor& scales, int group_size,
                           const std::string& what) {
  require(qweight.dtype() == DType::I32 && qweight.ndim() == 2, what + ".qweight: expected a 2-D int32 tensor");
  require(qzeros.dtype() == DType::I32 && qzeros.ndim() == 2, what + ".qzeros: expected a 2-D int32 tensor");
  require(scales.ndim() == 2, what + ".scales: expected a 2-D tensor");
  require(group_size > 0, what + ": AWQ needs a positive group_size");
  const int64_t in = qweight.dim(0), wcols = qweight.dim(1), out = wcols * 8, ng = scales.dim(0);
  require(in > 0 && wcols > 0, what + ".qweight: empty");
  require(scales.dim(1) == out && ng * group_size == in,
          what + ".scales: shape " + shape_str(scales.shape()) + " does not match qweight " + shape_str(qweight.shape()) +
              " with group_size " + std::to_string(group_size));
  require(qzeros.dim(0) == ng && qzeros.dim(1) == wcols,
          what + ".qzeros: shape " + shape_str(qzeros.shape()) + " does not match scales " + shape_str(scales.shape()));
  QuantizedWeight w;
  w.bits = 4;
  w.group_size = group_size;
  w.rows = out;
  w.cols = in;
  w.q.resize(size_t(out * in));
  w.g_idx.resize(size_t(in));
  for (int64_t c = 0; c < in; ++c) w.g_idx[size_t(c)] = int32_t(c / group_size);
  const auto* qw = qweight.data<int32_t>();
  uint32_t v[8];
  for (int64_t c = 0; c < in; ++c)
    for (int64_t k = 0; k < wcols; ++k) {
      awq_unpack_word(uint32_t(qw[c * wcols + k]), v);
      for (int j = 0; j < 8; ++j) w.q[size_t((8 * k + j) * in + c)] = uint8_t(v[j]);
    }
  const std::vector<float> s = scales_from(scales, what + ".scales");
  w.scale.resize(size_t(out * ng));
  w.zero.resize(size_t(out * ng));
  const auto* qz = qzeros.data<int32_t>();
  for (int64_t g = 0; g < ng; ++g)
    for (int64_t k = 0; k < wcols; ++k) {
      awq_unpack_word(uint32_t(qz[g * wcols + k]), v);
      for (int j = 0; j < 8; ++j) {
        w.zero[size_t((8 * k + j) * ng + g)] = float(v[j]);
        w.scale[size_t((8 * k + j) * ng + g)] = s[size_t(g * out + 8 * k + j)];
      }
    }
  return w;
}

}  // namespace calq
