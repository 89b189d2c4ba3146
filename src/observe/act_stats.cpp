#include "observe/act_stats.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>

#include "io/content_hash.h"
#include "util/error.h"

namespace calq {

namespace {
constexpr const char* kFormat = "calq-stats-v1";
constexpr int kTopFields = 5;
}  // namespace

double hist_bin_lower(int i) { return i <= 0 ? 0.0 : std::ldexp(1.0, kHistMinExp + i - 1); }

void TensorStats::init(int64_t c) {
  cols = c;
  count = 0;
  for (auto* v : {&sum, &sum2, &sum3, &sum4, &ge[0], &ge[1]}) v->assign(size_t(c), 0.0);
  min.assign(size_t(c), std::numeric_limits<float>::infinity());
  max.assign(size_t(c), -std::numeric_limits<float>::infinity());
  hist.fill(0.0);
  top.clear();
}

float TensorStats::absmax(int64_t c) const {
  if (count == 0) return 0.0f;
  return std::max(std::fabs(min[size_t(c)]), std::fabs(max[size_t(c)]));
}

std::vector<float> TensorStats::absmax_vec() const {
  std::vector<float> r(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c) r[size_t(c)] = absmax(c);
  return r;
}

std::vector<double> TensorStats::rms_vec() const {
  std::vector<double> r(size_t(cols), 0.0);
  if (count > 0)
    for (int64_t c = 0; c < cols; ++c) r[size_t(c)] = std::sqrt(sum2[size_t(c)] / count);
  return r;
}

double TensorStats::mean() const {
  if (values() == 0) return 0.0;
  double s = 0;
  for (double v : sum) s += v;
  return s / values();
}

double TensorStats::kurtosis() const {
  const double n = values();
  if (n == 0) return 0.0;
  double s1 = 0, s2 = 0, s3 = 0, s4 = 0;
  for (int64_t c = 0; c < cols; ++c) {
    s1 += sum[size_t(c)];
    s2 += sum2[size_t(c)];
    s3 += sum3[size_t(c)];
    s4 += sum4[size_t(c)];
  }
  const double m = s1 / n, e2 = s2 / n, e3 = s3 / n, e4 = s4 / n;
  // Central moments from raw moments (accumulated in double).
  const double var = e2 - m * m;
  const double c4 = e4 - 4 * m * e3 + 6 * m * m * e2 - 3 * m * m * m * m;
  if (!(var > 0)) return 0.0;
  return c4 / (var * var);
}

double TensorStats::share_ge(int i) const {
  const double n = values();
  if (n == 0) return 0.0;
  double s = 0;
  for (double v : ge[i]) s += v;
  return s / n;
}

const TensorStats* ActStats::find(const std::string& module) const {
  for (const auto& t : tensors)
    for (const auto& m : t.modules)
      if (m == module) return &t;
  return nullptr;
}

double ActStats::thresholds(int i) const { return meta.at("thresholds").at(size_t(i)).get<double>(); }
int ActStats::topn() const { return meta.at("topn").get<int>(); }

void merge_top(std::vector<TopValue>& top, const std::vector<TopValue>& add, int n) {
  top.insert(top.end(), add.begin(), add.end());
  std::stable_sort(top.begin(), top.end(), [](const TopValue& a, const TopValue& b) {
    const float x = std::fabs(a.value), y = std::fabs(b.value);
    if (x != y) return x > y;
    return a.sample != b.sample ? a.sample < b.sample : a.position < b.position;
  });
  if (int64_t(top.size()) > n) top.resize(size_t(n));
}

namespace {

void add_into(std::vector<double>& a, const std::vector<double>& b) {
  for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
}

void merge_tensor(TensorStats& a, const TensorStats& b, int topn) {
  a.count += b.count;
  add_into(a.sum, b.sum);
  add_into(a.sum2, b.sum2);
  add_into(a.sum3, b.sum3);
  add_into(a.sum4, b.sum4);
  add_into(a.ge[0], b.ge[0]);
  add_into(a.ge[1], b.ge[1]);
  for (int64_t c = 0; c < a.cols; ++c) {
    a.min[size_t(c)] = std::min(a.min[size_t(c)], b.min[size_t(c)]);
    a.max[size_t(c)] = std::max(a.max[size_t(c)], b.max[size_t(c)]);
  }
  for (int i = 0; i < kHistBins; ++i) a.hist[size_t(i)] += b.hist[size_t(i)];
  merge_top(a.top, b.top, topn);
}

void check_compatible(const ActStats& a, const ActStats& b) {
  auto mdl = [](const ActStats& s) { return s.meta.value("model", Json::object()).value("config_sha256", ""); };
  if (mdl(a) != mdl(b))
    throw ArgError("stats merge: the files come from different models (config_sha256 " + mdl(a) + " vs " + mdl(b) + ")");
  if (a.meta.at("thresholds") != b.meta.at("thresholds"))
    throw ArgError("stats merge: different thresholds " + a.meta["thresholds"].dump() + " vs " + b.meta["thresholds"].dump());
  if (a.topn() != b.topn()) throw ArgError("stats merge: different top-N settings");
  if (a.tensors.size() != b.tensors.size())
    throw ArgError("stats merge: different observed tensors (" + std::to_string(a.tensors.size()) + " vs " +
                   std::to_string(b.tensors.size()) + ")");
  for (size_t i = 0; i < a.tensors.size(); ++i)
    if (a.tensors[i].name != b.tensors[i].name || a.tensors[i].cols != b.tensors[i].cols)
      throw ArgError("stats merge: tensor " + std::to_string(i) + " differs ('" + a.tensors[i].name + "' vs '" +
                     b.tensors[i].name + "')");
}

}  // namespace

void ActStats::merge(const ActStats& o) {
  if (tensors.empty()) {
    *this = o;
    return;
  }
  check_compatible(*this, o);
  const int64_t samples = meta.value("samples", int64_t(0));
  const double tokens = meta.value("tokens", 0.0);
  // Snapshots of `o` become prefixes of the concatenation: this run's totals plus o's snapshot.
  for (const auto& s : o.snapshots) {
    StatsSnapshot m;
    m.samples = samples + s.samples;
    m.tokens = tokens + s.tokens;
    m.sum2.resize(tensors.size());
    m.absmax.resize(tensors.size());
    for (size_t t = 0; t < tensors.size(); ++t) {
      m.sum2[t] = tensors[t].sum2;
      add_into(m.sum2[t], s.sum2[t]);
      m.absmax[t] = tensors[t].absmax_vec();
      for (size_t c = 0; c < m.absmax[t].size(); ++c) m.absmax[t][c] = std::max(m.absmax[t][c], s.absmax[t][c]);
    }
    snapshots.push_back(std::move(m));
  }
  for (size_t t = 0; t < tensors.size(); ++t) merge_tensor(tensors[t], o.tensors[t], topn());
  meta["samples"] = samples + o.meta.value("samples", int64_t(0));
  meta["tokens"] = tokens + o.meta.value("tokens", 0.0);
  for (const auto& src : o.meta.value("sources", Json::array())) meta["sources"].push_back(src);
}

// ---- file I/O ----------------------------------------------------------------------------------

namespace {

Tensor f64_tensor(const std::vector<double>& v, Shape shape) {
  Tensor t = Tensor::empty(DType::F64, std::move(shape));
  if (!v.empty()) std::memcpy(t.raw_mut(), v.data(), v.size() * 8);
  return t;
}
Tensor f32_tensor(const std::vector<float>& v) {
  Tensor t = Tensor::empty(DType::F32, {int64_t(v.size())});
  if (!v.empty()) std::memcpy(t.raw_mut(), v.data(), v.size() * 4);
  return t;
}

class Reader {
 public:
  explicit Reader(std::shared_ptr<SafetensorsFile> f) : f_(std::move(f)) {}
  const std::string& path() const { return f_->path(); }
  Tensor get(const std::string& name, DType dt, const Shape& shape) const {
    if (!f_->find(name)) throw FormatError(path() + ": missing tensor '" + name + "'");
    Tensor t = f_->get(name);
    if (t.dtype() != dt || t.shape() != shape)
      throw FormatError(path() + ": tensor '" + name + "' is " + dtype_name(t.dtype()) + " " + shape_str(t.shape()) +
                        ", expected " + dtype_name(dt) + " " + shape_str(shape));
    return t;
  }
  std::vector<double> f64(const std::string& name, int64_t n) const {
    Tensor t = get(name, DType::F64, {n});
    return std::vector<double>(t.data<double>(), t.data<double>() + n);
  }
  std::vector<float> f32(const std::string& name, int64_t n) const {
    Tensor t = get(name, DType::F32, {n});
    return std::vector<float>(t.f32(), t.f32() + n);
  }

 private:
  std::shared_ptr<SafetensorsFile> f_;
};

constexpr int64_t kMaxCount = int64_t(1) << 40;  // samples, layers, sample ranges

// The integers of the header that later code reads (merge, resume, outliers, imatrix): JSON integers
// in range, or a FormatError naming the field. Everything else in it is informational.
void check_meta_integers(const Json& head, const std::string& what) {
  json_get_int<FormatError>(head, "topn", what, 0, 100000);
  json_get_int_or<FormatError>(head, "samples", 0, what, 0, kMaxCount);
  if (const auto m = head.find("model"); m != head.end() && m->is_object())
    for (const char* k : {"num_layers", "hidden_size", "vocab_size", "max_position"})
      if (m->contains(k)) json_int<FormatError>((*m)[k], std::string("model.") + k, what, 0, INT32_MAX);
  const auto srcs = head.find("sources");
  if (srcs == head.end()) return;
  if (!srcs->is_array()) throw FormatError(what + ": 'sources' must be an array");
  for (size_t i = 0; i < srcs->size(); ++i) {
    const Json& src = (*srcs)[i];
    const std::string at = "sources[" + std::to_string(i) + "]";
    if (!src.is_object()) throw FormatError(what + ": " + at + " must be an object");
    if (const auto r = src.find("range"); r != src.end()) {
      if (!r->is_array() || r->size() != 2) throw FormatError(what + ": " + at + ".range must be [begin, end]");
      const int64_t b = json_int<FormatError>((*r)[0], at + ".range[0]", what, 0, kMaxCount);
      json_int<FormatError>((*r)[1], at + ".range[1]", what, b, kMaxCount);
    }
    if (const auto c = src.find("calib"); c != src.end() && c->is_object())
      for (const char* k : {"nsamples", "seqlen"})
        if (c->contains(k)) json_int<FormatError>((*c)[k], at + ".calib." + k, what, 0, INT32_MAX);
  }
}

Json tensor_header(const TensorStats& t) {
  return {{"name", t.name}, {"modules", t.modules}, {"kind", t.kind}, {"layer", t.layer},
          {"cols", t.cols}, {"count", t.count}, {"top", t.top.size()}};
}

}  // namespace

void save_stats(const ActStats& s, const std::string& path) {
  std::map<std::string, Tensor> tensors;
  Json head = s.meta;
  head["tensors"] = Json::array();
  for (const auto& t : s.tensors) {
    head["tensors"].push_back(tensor_header(t));
    const std::string& n = t.name;
    tensors.emplace(n + ".sum", f64_tensor(t.sum, {t.cols}));
    tensors.emplace(n + ".sum2", f64_tensor(t.sum2, {t.cols}));
    tensors.emplace(n + ".sum3", f64_tensor(t.sum3, {t.cols}));
    tensors.emplace(n + ".sum4", f64_tensor(t.sum4, {t.cols}));
    tensors.emplace(n + ".min", f32_tensor(t.min));
    tensors.emplace(n + ".max", f32_tensor(t.max));
    tensors.emplace(n + ".absmax", f32_tensor(t.absmax_vec()));
    tensors.emplace(n + ".ge0", f64_tensor(t.ge[0], {t.cols}));
    tensors.emplace(n + ".ge1", f64_tensor(t.ge[1], {t.cols}));
    tensors.emplace(n + ".hist", f64_tensor(std::vector<double>(t.hist.begin(), t.hist.end()), {kHistBins}));
    if (!t.top.empty()) {
      std::vector<double> top;
      for (const auto& v : t.top)
        top.insert(top.end(), {double(v.value), double(v.sample), double(v.position), double(v.token), double(v.channel)});
      tensors.emplace(n + ".top", f64_tensor(top, {int64_t(t.top.size()), kTopFields}));
    }
  }
  head["snapshots"] = Json::array();
  for (size_t i = 0; i < s.snapshots.size(); ++i) {
    const auto& sn = s.snapshots[i];
    head["snapshots"].push_back({{"samples", sn.samples}, {"tokens", sn.tokens}});
    for (size_t t = 0; t < s.tensors.size(); ++t) {
      const std::string p = "snap." + std::to_string(i) + "." + s.tensors[t].name;
      tensors.emplace(p + ".sum2", f64_tensor(sn.sum2[t], {s.tensors[t].cols}));
      tensors.emplace(p + ".absmax", f32_tensor(sn.absmax[t]));
    }
  }
  SafetensorsWriter w;
  add_with_content_hash(w, tensors, {{"format", kFormat}, {"stats", head.dump()}});
  w.write(path);
}

ActStats load_stats(const std::string& path) {
  auto f = SafetensorsFile::open(path);
  auto fmt = f->metadata().find("format");
  if (fmt == f->metadata().end() || fmt->second != kFormat)
    throw FormatError(path + ": not a calq statistics file (metadata format != " + std::string(kFormat) + ")");
  verify_content_sha256(*f, "regenerate it with `calq stats` (calq is pre-1.0: statistics files without a hash are not read)");
  auto hs = f->metadata().find("stats");
  if (hs == f->metadata().end()) throw FormatError(path + ": missing 'stats' metadata");
  const std::string what = path + " (stats header)";
  Json head = parse_json(hs->second, what);
  if (!head.is_object()) throw FormatError(what + ": not a JSON object");
  Reader r(f);
  ActStats s;
  try {
    const Json tensors = json_get<Json>(head, "tensors", what);
    const Json snaps = json_get_or<Json>(head, "snapshots", Json::array(), what);
    if (!tensors.is_array() || !snaps.is_array()) throw FormatError(what + ": 'tensors'/'snapshots' must be arrays");
    json_get<Json>(head, "thresholds", what).at(1).get<double>();
    check_meta_integers(head, what);
    for (const auto& th : tensors) {
      TensorStats t;
      t.name = json_get<std::string>(th, "name", what);
      t.modules = json_get<std::vector<std::string>>(th, "modules", what);
      t.kind = json_get<std::string>(th, "kind", what);
      t.layer = int(json_get_int(th, "layer", what, -1, INT32_MAX));
      const int64_t cols = json_get_int(th, "cols", what, 1, int64_t(1) << 24);
      t.init(cols);
      t.count = json_get<double>(th, "count", what);
      const std::string& n = t.name;
      t.sum = r.f64(n + ".sum", cols);
      t.sum2 = r.f64(n + ".sum2", cols);
      t.sum3 = r.f64(n + ".sum3", cols);
      t.sum4 = r.f64(n + ".sum4", cols);
      t.min = r.f32(n + ".min", cols);
      t.max = r.f32(n + ".max", cols);
      t.ge[0] = r.f64(n + ".ge0", cols);
      t.ge[1] = r.f64(n + ".ge1", cols);
      const auto hist = r.f64(n + ".hist", kHistBins);
      std::copy(hist.begin(), hist.end(), t.hist.begin());
      const int64_t ntop = json_get_int(th, "top", what, 0, 1000000);
      if (ntop > 0) {
        Tensor top = r.get(n + ".top", DType::F64, {ntop, kTopFields});
        const double* p = top.data<double>();
        for (int64_t i = 0; i < ntop; ++i, p += kTopFields)
          t.top.push_back({float(p[0]), int64_t(p[1]), int64_t(p[2]), int32_t(p[3]), int32_t(p[4])});
      }
      s.tensors.push_back(std::move(t));
    }
    for (size_t i = 0; i < snaps.size(); ++i) {
      StatsSnapshot sn;
      sn.samples = json_get_int(snaps[i], "samples", what, 0, kMaxCount);
      sn.tokens = json_get<double>(snaps[i], "tokens", what);
      for (const auto& t : s.tensors) {
        const std::string p = "snap." + std::to_string(i) + "." + t.name;
        sn.sum2.push_back(r.f64(p + ".sum2", t.cols));
        sn.absmax.push_back(r.f32(p + ".absmax", t.cols));
      }
      s.snapshots.push_back(std::move(sn));
    }
  } catch (const ConfigError& e) {
    throw FormatError(e.what());
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(what + ": " + e.what());
  }
  head.erase("tensors");
  head.erase("snapshots");
  s.meta = std::move(head);
  return s;
}

}  // namespace calq
