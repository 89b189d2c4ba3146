#include "quant/pipeline.h"

#include <chrono>
#include <cstring>
#include <sstream>

#include "io/mapped_file.h"
#include "kernels/threads.h"
#include "quant/layer_state.h"
#include "quant/metrics.h"
#include "util/error.h"
#include "util/sha256.h"

namespace calq {

// ---- options -----------------------------------------------------------------------------

MethodConfig parse_method(const std::string& s) {
  if (s == "rtn") return RtnConfig{};
  if (s == "gptq") return GptqConfig{};
  if (s == "awq") return AwqConfig{};
  if (s == "smoothquant" || s == "sq") return SmoothQuantConfig{};
  if (s == "naive-w8a8" || s == "w8a8") {
    SmoothQuantConfig c;
    c.smooth = false;
    return c;
  }
  throw ArgError("unknown method '" + s + "' (expected rtn, gptq, awq, smoothquant or naive-w8a8)");
}

std::string method_name(const MethodConfig& m) {
  if (std::holds_alternative<RtnConfig>(m)) return "rtn";
  if (std::holds_alternative<GptqConfig>(m)) return "gptq";
  if (std::holds_alternative<AwqConfig>(m)) return "awq";
  return std::get<SmoothQuantConfig>(m).smooth ? "smoothquant" : "naive-w8a8";
}

void QuantizeOptions::validate() const {
  std::visit([](const auto& c) { c.validate(); }, method);
  if (batch < 1) throw ArgError("batch must be >= 1 sequence");
}

Json QuantizeOptions::settings() const {
  return std::visit([](const auto& c) { return c.to_json(); }, method);
}

Json QuantizeOptions::activation() const {
  const auto* sq = std::get_if<SmoothQuantConfig>(&method);
  return sq ? sq->activation_json() : Json();
}

// ---- identity ----------------------------------------------------------------------------

std::string source_fingerprint(const Decoder& model) {
  const Checkpoint* ck = model.checkpoint();
  if (!ck) return "synthetic:" + std::to_string(model.parameter_count());
  Sha256 h;
  h.update(read_file(path_join(ck->dir(), "config.json")));
  for (const auto& p : ck->shard_paths()) {
    auto f = MappedFile::open(p);
    uint64_t n = 0;
    if (f->size() >= 8)
      for (int k = 0; k < 8; ++k) n |= uint64_t(f->data()[k]) << (8 * k);
    const size_t hdr = size_t(std::min<uint64_t>(f->size(), 8 + n));
    h.update(f->data(), hdr);
    h.update(std::to_string(f->size()));
  }
  return h.hex();
}

// ---- driver ------------------------------------------------------------------------------

namespace {

LayerResult rtn_layer(Decoder& m, int i, const QuantScheme& s) {
  LayerResult r;
  r.layer = i;
  Json rep = Json::object();
  for (Linear* l : m.layer(i).linears()) {
    const Tensor w = l->weight_f32();
    QuantizedWeight qw = with_context(l->name, [&] { return quantize_rtn(w.f32(), l->out, l->in, s); });
    rep[l->name] = {{"rel_weight_error", relative_weight_error(w, qw.dequantize())}};
    r.weights[l->name] = std::move(qw);
  }
  r.report = {{"linears", rep}};
  return r;
}

std::string summary_line(const LayerResult& r) {
  std::ostringstream os;
  const Json& lin = r.report.contains("linears") ? r.report["linears"] : Json::object();
  bool first = true;
  for (auto it = lin.begin(); it != lin.end(); ++it) {
    if (!it.value().is_object()) continue;
    double v = -1;
    for (const char* k : {"rel_error", "rel_output_error", "rel_weight_error"})
      if (it.value().contains(k)) {
        v = it.value()[k].get<double>();
        break;
      }
    if (v < 0) continue;
    const std::string n = it.key().substr(it.key().rfind('.') + 1);
    os << (first ? "" : " ") << n << "=" << std::scientific;
    os.precision(2);
    os << v;
    first = false;
  }
  return os.str();
}

void check_existing(const QuantState& qs, const Json& want, const std::string& dir) {
  const Json& have = qs.info();
  for (const char* k : {"method", "settings", "source_sha256", "num_layers"})
    if (have.value(k, Json()) != want.value(k, Json()))
      throw ConfigError(dir + ": holds a quantization state with a different '" + std::string(k) + "' (" +
                        have.value(k, Json()).dump() + " vs " + want.value(k, Json()).dump() +
                        "); delete it or choose another output folder");
  // "calib" is null for rtn (no calibration): compare the token hashes where there are some.
  const auto calib_sha = [](const Json& info) {
    const Json c = info.value("calib", Json());
    return c.is_object() ? c.value("sha256", Json()) : Json();
  };
  if (calib_sha(have) != calib_sha(want))
    throw ConfigError(dir + ": holds a quantization state made with other calibration tokens; delete it or choose "
                      "another output folder");
}

}  // namespace

QuantizeSummary quantize_model(Decoder& model, const CalibSet* calib, const QuantizeOptions& o,
                               const std::string& state_dir) {
  const auto t_start = std::chrono::steady_clock::now();
  const ThreadScope threads(o.threads);
  o.validate();
  const std::string method = method_name(o.method);
  const int L = model.num_layers();
  const ModelConfig& cfg = model.config();
  // Everything that can fail on the request is checked before a file is written.
  if (std::holds_alternative<AwqConfig>(o.method))
    for (int i = 0; i < L; ++i) awq_scale_groups(model, i);
  if (const auto* sq = std::get_if<SmoothQuantConfig>(&o.method); sq && sq->smooth)
    for (int i = 0; i < L; ++i) smoothquant_groups(model, i);
  if (o.needs_calibration()) {
    if (!calib || calib->nsamples() <= 0 || calib->seqlen() <= 0)
      throw ArgError(method + " needs calibration tokens (--calib)");
    validate_calib_set(*calib, calib->path);
    const int32_t* ids = calib->ids.data<int32_t>();
    for (int64_t k = 0; k < calib->ids.numel(); ++k)
      if (ids[k] < 0 || ids[k] >= cfg.vocab_size)
        throw ArgError(calib->name() + ": token id " + std::to_string(ids[k]) + " out of range for vocab_size " +
                       std::to_string(cfg.vocab_size) + " (built with another tokenizer?)");
    if (cfg.max_position > 0 && calib->seqlen() > cfg.max_position)
      throw ArgError(calib->name() + ": windows of " + std::to_string(calib->seqlen()) +
                     " tokens exceed the model's context (" + std::to_string(cfg.max_position) + ")");
    // As `calq stats` does: ids of another tokenizer that happen to be in range are still wrong.
    if (o.check_tokenizer && model.checkpoint())
      check_calib_tokenizer(*calib, path_join(model.checkpoint()->dir(), "tokenizer.json"));
  }

  Json info = {{"source_model", model.checkpoint() ? model.checkpoint()->dir() : std::string("<synthetic>")},
               {"source_sha256", source_fingerprint(model)},
               {"method", method},
               {"settings", o.settings()},
               {"num_layers", L},
               {"model_type", cfg.model_type}};
  if (calib && o.needs_calibration())
    info["calib"] = {{"sha256", token_sha256(calib->ids)}, {"n", calib->nsamples()}, {"seq", calib->seqlen()},
                     {"padded", calib->padded()}, {"manifest", calib->manifest}};
  else
    info["calib"] = nullptr;

  QuantState qs = [&] {
    if (QuantState::exists(state_dir)) {
      QuantState s = QuantState::open(state_dir);
      check_existing(s, info, state_dir);
      if (!o.resume)
        throw ConfigError(state_dir + ": a quantization state already exists (resume it, or delete it to start over)");
      return s;
    }
    QuantState s = QuantState::create(state_dir, info);
    if (!o.activation().is_null()) {
      Json act = o.activation();
      act["modules"] = Json::array();
      for (Linear* l : model.all_linears(false)) act["modules"].push_back(l->name);
      s.set_field("activation", act);
    }
    return s;
  }();

  QuantizeSummary sum;
  sum.layers_total = L;
  std::vector<int> todo;
  for (int i = 0; i < L; ++i)
    if (!qs.layer_done(i)) todo.push_back(i);
  sum.layers_resumed = L - int(todo.size());
  if (todo.empty()) return sum;
  if (o.log && sum.layers_resumed > 0)
    o.log("resuming " + state_dir + ": layers done " + std::to_string(sum.layers_resumed) + "/" + std::to_string(L));

  const int64_t n_todo = int64_t(todo.size());
  auto finish_layer = [&](const LayerResult& r, double secs) {
    qs.write_layer(r);
    ++sum.layers_quantized;
    report_progress(o.progress, sum.layers_quantized, n_todo, "layer", "layer " + std::to_string(r.layer));
    if (o.log) {
      char b[64];
      std::snprintf(b, sizeof b, " (%.1f s)", secs);
      o.log("layer " + std::to_string(r.layer + 1) + "/" + std::to_string(L) + b + ": " + summary_line(r));
    }
  };

  if (const auto* rtn = std::get_if<RtnConfig>(&o.method)) {
    for (int i : todo) {
      const auto t0 = std::chrono::steady_clock::now();
      LayerResult r = with_context(method, [&] { return rtn_layer(model, i, rtn->scheme); });
      finish_layer(r, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  } else {
    LayerInputs in;
    in.n_seq = calib->nsamples();
    in.seq = calib->seqlen();
    in.batch = o.batch;
    if (calib->padded())
      in.valid = std::make_shared<const std::vector<uint8_t>>(calib->mask.data<uint8_t>(),
                                                              calib->mask.data<uint8_t>() + calib->mask.numel());
    const Json act = qs.info().value("activation", Json());
    const int last_todo = todo.back();
    in.x = model.embed(calib->ids.data<int32_t>(), in.n_seq, in.seq);
    for (int i = 0; i <= last_todo; ++i) {
      Tensor next;
      const auto t0 = std::chrono::steady_clock::now();
      if (qs.layer_done(i)) {
        // Replay a finished layer: its stored results for sequential methods, the float layer otherwise.
        LayerSnapshot snap(model, i);
        if (o.sequential()) install_layer(model, qs.layer(i), act);
        next = run_layer_chunked(model, i, in);
        snap.restore();
      } else {
        const auto quantize_layer = [&](const auto& c) -> LayerResult {
          using C = std::decay_t<decltype(c)>;
          if constexpr (std::is_same_v<C, GptqConfig>) return gptq_quantize_layer(model, i, in, c, &next);
          if constexpr (std::is_same_v<C, AwqConfig>) return awq_quantize_layer(model, i, in, c, &next);
          if constexpr (std::is_same_v<C, SmoothQuantConfig>) return smoothquant_quantize_layer(model, i, in, c, &next);
          throw Error("quantize: rtn needs no calibration pass");  // handled above
        };
        const LayerResult r = with_context(method, [&] { return std::visit(quantize_layer, o.method); });
        finish_layer(r, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      for (Linear* l : model.layer(i).linears()) l->release_packed();
      in.x = next;
    }
  }
  report_progress(o.progress, sum.layers_quantized, n_todo, "layer", "", true);
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  return sum;
}

CalibSet to_calib_set(const CalibTokens& c) {
  if (c.n <= 0 || c.seq <= 0 || int64_t(c.ids.size()) != c.n * c.seq)
    throw ArgError("calibration tokens: ids do not match [n, seq]");
  CalibSet s;
  s.ids = Tensor::empty(DType::I32, {c.n, c.seq});
  std::memcpy(s.ids.raw_mut(), c.ids.data(), c.ids.size() * 4);
  s.manifest = c.manifest;
  return s;
}

QuantizeSummary quantize_model(Decoder& model, const CalibTokens* calib, const QuantizeOptions& o,
                               const std::string& state_dir) {
  if (!calib) return quantize_model(model, static_cast<const CalibSet*>(nullptr), o, state_dir);
  const CalibSet s = to_calib_set(*calib);
  return quantize_model(model, &s, o, state_dir);
}

}  // namespace calq
