#include "formats/imatrix.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "formats/gguf_names.h"
#include "util/error.h"

namespace calq {

namespace {

std::string f32_bytes(const std::vector<double>& v) {
  std::string b(v.size() * 4, '\0');
  for (size_t i = 0; i < v.size(); ++i) {
    const float f = float(v[i]);
    std::memcpy(&b[i * 4], &f, 4);
  }
  return b;
}

// GGUF weight name -> the statistics of its input (sorted by name, as llama.cpp writes them).
std::map<std::string, const TensorStats*> imatrix_entries(const ActStats& s) {
  std::map<std::string, const TensorStats*> entries;
  std::vector<std::string> unmapped;
  for (const auto& t : s.tensors) {
    if (t.kind == "residual") continue;
    for (const auto& m : t.modules) {
      const auto g = hf_to_gguf_name(m + ".weight");
      if (g) entries[*g] = &t;
      else unmapped.push_back(m);
    }
  }
  if (entries.empty())
    throw ArgError("imatrix: no observed linear layer has a llama.cpp GGUF name (model type '" +
                   s.meta.value("model", Json::object()).value("model_type", std::string("?")) +
                   "'; only the Llama family is mapped" + (unmapped.empty() ? "" : ", e.g. " + unmapped[0]) + ")");
  for (const auto& [name, t] : entries)
    if (t->count <= 0) throw ArgError("imatrix: no tokens accumulated for " + t->name);
  return entries;
}

void put_i32(std::string& b, int32_t v) { b.append(reinterpret_cast<const char*>(&v), 4); }

}  // namespace

gguf::Writer imatrix_writer(const ActStats& s, const ImatrixOptions& opt) {
  const auto entries = imatrix_entries(s);
  gguf::Writer w;
  w.set("general.type", gguf::Value::str("imatrix"));
  std::vector<std::string> datasets = opt.datasets;
  int64_t chunk_size = opt.chunk_size;
  for (const auto& src : s.meta.value("sources", Json::array())) {
    const Json calib = src.value("calib", Json::object());
    if (opt.datasets.empty())
      datasets.push_back("calq:" + calib.value("builder", std::string("set")) + ":" +
                         calib.value("token_sha256", std::string("")).substr(0, 16));
    if (chunk_size <= 0) chunk_size = calib.value("seqlen", int64_t(0));
  }
  w.set("imatrix.datasets", gguf::Value::str_array(datasets));
  const int64_t chunks = s.meta.value("samples", int64_t(0));
  if (chunks > int64_t(UINT32_MAX) || chunk_size > int64_t(UINT32_MAX))
    throw ArgError("imatrix: " + std::to_string(chunks) + " chunks of " + std::to_string(chunk_size) +
                   " tokens do not fit the u32 fields of the imatrix GGUF");
  w.set("imatrix.chunk_count", gguf::Value::u32(uint32_t(std::max<int64_t>(chunks, 0))));
  w.set("imatrix.chunk_size", gguf::Value::u32(uint32_t(std::max<int64_t>(chunk_size, 0))));
  for (const auto& [name, t] : entries) {
    w.add_raw(name + ".counts", ggml::Type::F32, {1}, f32_bytes({t->count}));
    w.add_raw(name + ".in_sum", ggml::Type::F32, {t->cols}, f32_bytes(t->sum));
    w.add_raw(name + ".in_sum2", ggml::Type::F32, {t->cols}, f32_bytes(t->sum2));
  }
  return w;
}

void write_imatrix(const ActStats& s, const std::string& path, const ImatrixOptions& opt) {
  imatrix_writer(s, opt).write(path);
}

std::string imatrix_dat_bytes(const ActStats& s, const ImatrixOptions& opt) {
  const auto entries = imatrix_entries(s);
  // ncall: the chunks (calibration samples) the matrix was computed over; the reader divides by it.
  const int32_t ncall = int32_t(std::max<int64_t>(s.meta.value("samples", int64_t(0)), 1));
  std::string b;
  put_i32(b, int32_t(entries.size()));
  for (const auto& [name, t] : entries) {
    put_i32(b, int32_t(name.size()));
    b += name;
    put_i32(b, ncall);
    put_i32(b, int32_t(t->cols));
    std::vector<double> v(size_t(t->cols));
    for (size_t i = 0; i < v.size(); ++i) v[i] = t->sum2[i] / t->count * double(ncall);
    b += f32_bytes(v);
  }
  put_i32(b, ncall);  // m_last_call
  std::string dataset;
  for (const auto& d : opt.datasets) dataset += (dataset.empty() ? "" : ",") + d;
  if (dataset.empty()) dataset = "calq";
  put_i32(b, int32_t(dataset.size()));
  b += dataset;
  return b;
}

}  // namespace calq
