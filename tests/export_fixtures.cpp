#include "export_fixtures.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>

#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "quant/qstate.h"
#include "tensor/dtype.h"

namespace calq::test {

namespace {
float fp16_round(float x) { return f16_to_f32(f32_to_f16(x)); }
}  // namespace

QuantizedWeight rtn_quantize(const Tensor& wt, const RtnSpec& s, uint32_t seed) {
  const Tensor w = wt.to(DType::F32);
  QuantizedWeight q;
  q.bits = s.bits;
  q.group_size = s.group_size;
  q.sym = s.sym;
  q.rows = w.dim(0);
  q.cols = w.dim(1);
  const int64_t ng = q.n_groups();
  std::vector<int32_t> perm(static_cast<size_t>(q.cols));
  for (int64_t c = 0; c < q.cols; ++c) perm[size_t(c)] = int32_t(c);
  if (s.act_order) std::shuffle(perm.begin(), perm.end(), std::mt19937(seed + 11));
  q.g_idx.assign(size_t(q.cols), 0);
  for (int64_t k = 0; k < q.cols; ++k) q.g_idx[size_t(perm[size_t(k)])] = s.group_size > 0 ? int32_t(k / s.group_size) : 0;
  const float maxq = float((1 << s.bits) - 1);
  q.q.resize(size_t(q.rows * q.cols));
  q.scale.resize(size_t(q.rows * ng));
  q.zero.resize(size_t(q.rows * ng));
  for (int64_t r = 0; r < q.rows; ++r) {
    const float* x = w.f32() + r * q.cols;
    std::vector<float> lo(size_t(ng), 0.f), hi(size_t(ng), 0.f);  // min(x, 0), max(x, 0)
    for (int64_t c = 0; c < q.cols; ++c) {
      const size_t g = size_t(q.g_idx[size_t(c)]);
      lo[g] = std::min(lo[g], x[c]);
      hi[g] = std::max(hi[g], x[c]);
    }
    for (int64_t g = 0; g < ng; ++g) {
      float a = lo[size_t(g)], b = hi[size_t(g)];
      if (s.sym) {
        b = std::max(-a, b);
        a = -b;
      }
      float scale = (b - a) / maxq;
      if (scale == 0) scale = 1;
      scale = fp16_round(scale);  // the export contract: codes are computed with the stored scale
      const float zero = s.sym ? float(1 << (s.bits - 1)) : std::clamp(std::nearbyint(-a / scale), 0.f, maxq);
      q.scale[size_t(r * ng + g)] = scale;
      q.zero[size_t(r * ng + g)] = zero;
    }
    for (int64_t c = 0; c < q.cols; ++c) {
      const size_t k = size_t(r * ng + q.g_idx[size_t(c)]);
      q.q[size_t(r * q.cols + c)] = uint8_t(std::clamp(std::nearbyint(x[c] / q.scale[k]) + q.zero[k], 0.f, maxq));
    }
  }
  return q;
}

namespace {
template <class Map>
std::vector<std::string> keys(const Map& m) {
  std::vector<std::string> r;
  for (const auto& kv : m) r.push_back(kv.first);
  return r;
}
}  // namespace

std::vector<std::string> MemoryRun::quantized_modules() const { return keys(weights); }
std::vector<std::string> MemoryRun::replaced_tensors() const { return keys(tensors); }

MemoryRun rtn_quantize_model(const std::string& model_dir, const RtnSpec& s) {
  auto model = Decoder::load(model_dir);
  MemoryRun q;
  q.model = model_dir;
  q.run_info = {{"method", "rtn"},
                {"settings", {{"bits", s.bits}, {"group_size", s.group_size}, {"sym", s.sym}, {"desc_act", s.act_order}}}};
  uint32_t seed = 0;
  for (Linear* l : model->all_linears(s.include_lm_head)) q.weights[l->name] = rtn_quantize(l->weight(), s, seed++);
  return q;
}

std::unique_ptr<Decoder> fake_quant_decoder(const MemoryRun& q) {
  auto ck = std::make_shared<const Checkpoint>(Checkpoint::open(q.model));
  auto src = std::make_shared<MapSource>();
  for (const auto& n : ck->names()) src->tensors[n] = ck->get(n);
  for (const auto& [m, w] : q.weights) src->tensors[m + ".weight"] = w.dequantize();
  for (const auto& [t, v] : q.tensors) src->tensors[t] = v;
  const ModelConfig cfg = ModelConfig::from_json(ck->config(), q.model);
  return Decoder::from_source(cfg, src);
}

QuantState write_quant_state(const MemoryRun& q, const std::string& dir, int num_layers) {
  if (num_layers < 0) {
    const std::string cfg = path_join(q.model, "config.json");
    num_layers = ModelConfig::from_json(load_json_file(cfg), cfg).num_layers;
  }
  Json info = q.run_info;
  info["source_model"] = q.model;
  info["num_layers"] = num_layers;
  QuantState st = QuantState::create(dir, info);
  std::vector<LayerResult> layers(static_cast<size_t>(num_layers));
  for (int i = 0; i < num_layers; ++i) layers[size_t(i)].layer = i;
  LayerResult extra;  // outside the decoder layers (lm_head): extra.safetensors
  extra.layer = -1;
  for (const auto& [m, w] : q.weights) {
    if (layer_of_name(m) < 0) {
      extra.weights[m] = w;
    } else {
      layers.at(size_t(layer_of_name(m))).weights[m] = w;
    }
  }
  for (const auto& [n, t] : q.tensors) layers.at(size_t(layer_of_name(n))).replaced[n] = t.to(DType::F32);
  if (!extra.weights.empty()) st.write_layer(extra);
  for (const auto& r : layers) st.write_layer(r);
  return QuantState::open(dir);
}

QuantState ScratchDir::state(const MemoryRun& q) {
  return write_quant_state(q, *this / ("qstate" + std::to_string(states_++)));
}

ScratchDir::ScratchDir(const std::string& name) {
  path_ = test::temp_path("export_test", name);
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}
ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Tensor fixture_logits(const Decoder& d, const std::string& model_dir) {
  const Json j = load_json_file(path_join(model_dir, "golden/input_ids.json"));
  std::vector<float> all;
  for (const auto& row : j.at("input_ids")) {
    const std::vector<int32_t> ids = row.get<std::vector<int32_t>>();
    const Tensor l = d.forward(ids.data(), 1, int64_t(ids.size())).logits;
    all.insert(all.end(), l.f32(), l.f32() + l.numel());
  }
  return Tensor::from_f32(all, {int64_t(all.size())});
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return -1;
  const Tensor fa = a.to(DType::F32), fb = b.to(DType::F32);
  double m = 0;
  for (int64_t i = 0; i < fa.numel(); ++i) m = std::max(m, double(std::fabs(fa.f32()[i] - fb.f32()[i])));
  return m;
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  return std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

std::unique_ptr<Decoder> load_dequantized(const std::string& path) {
  LoadOptions o;
  o.compute = ComputeType::F32;
  o.float_weights = true;
  return load_model(path, o);
}

}  // namespace calq::test
