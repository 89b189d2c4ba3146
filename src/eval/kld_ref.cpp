#include "eval/kld_ref.h"

#include <cmath>
#include <cstring>
#include <map>
#include <type_traits>

#include "io/safetensors.h"
#include "util/error.h"
#include "util/sha256.h"

namespace calq::eval {

namespace {

const char* kFormat = "calq-kld-ref";
const char* kVersion = "1";

Tensor i32_tensor(const std::vector<int32_t>& v, Shape s) {
  Tensor t = Tensor::empty(DType::I32, std::move(s));
  if (!v.empty()) std::memcpy(t.data_mut<int32_t>(), v.data(), v.size() * 4);
  return t;
}

// The metadata as safetensors string pairs, and back.
std::map<std::string, std::string> meta_to_map(const KldRefMeta& m) {
  return {{"format", kFormat},
          {"format_version", kVersion},
          {"model", m.model},
          {"model_hash", m.model_hash},
          {"model_arch", m.model_arch},
          {"tokenizer_sha256", m.tokenizer_sha256},
          {"data", m.data},
          {"data_sha256", m.data_sha256},
          {"text_mode", m.text_mode},
          {"protocol", m.protocol},
          {"ctx", std::to_string(m.ctx)},
          {"first_scored", std::to_string(m.first_scored)},
          {"k", std::to_string(m.k)},
          {"vocab_size", std::to_string(m.vocab_size)},
          {"calq_version", m.calq_version}};
}

std::string need(const std::map<std::string, std::string>& md, const std::string& key, const std::string& path) {
  auto it = md.find(key);
  if (it == md.end()) throw FormatError(path + ": KLD reference metadata lacks '" + key + "'");
  return it->second;
}

int64_t need_int(const std::map<std::string, std::string>& md, const std::string& key, const std::string& path) {
  const std::string s = need(md, key, path);
  try {
    size_t used = 0;
    const long long v = std::stoll(s, &used);
    if (used != s.size() || v < 0) throw std::invalid_argument(s);
    return v;
  } catch (const std::exception&) {
    throw FormatError(path + ": KLD reference metadata '" + key + "' is not a non-negative integer ('" + s + "')");
  }
}

// Copies a tensor of the expected shape out of the file (any float dtype for floats).
template <class T>
std::vector<T> take(const SafetensorsFile& f, const std::string& name, const Shape& shape) {
  const TensorInfo* ti = f.find(name);
  if (!ti) throw FormatError(f.path() + ": KLD reference lacks tensor '" + name + "'");
  if (ti->shape != shape)
    throw FormatError(f.path() + ": tensor '" + name + "' has shape " + shape_str(ti->shape) + ", expected " +
                      shape_str(shape));
  const Tensor t = f.get(name);
  std::vector<T> out(size_t(t.numel()));
  if constexpr (std::is_same_v<T, int32_t>) {
    if (t.dtype() != DType::I32) throw FormatError(f.path() + ": tensor '" + name + "' must be I32");
    if (!out.empty()) std::memcpy(out.data(), t.raw(), out.size() * 4);
  } else {
    if (!is_float_dtype(t.dtype())) throw FormatError(f.path() + ": tensor '" + name + "' must be a float tensor");
    convert_to_f32(t.raw(), t.dtype(), out.data(), out.size());
  }
  return out;
}

}  // namespace

std::vector<Window> KldReference::to_windows() const {
  std::vector<Window> w(static_cast<size_t>(windows));
  for (int64_t i = 0; i < windows; ++i) {
    w[size_t(i)].start = i * meta.ctx;
    w[size_t(i)].ids.assign(tokens.begin() + i * meta.ctx, tokens.begin() + (i + 1) * meta.ctx);
    w[size_t(i)].first_scored = meta.first_scored;
  }
  return w;
}

void write_kld_reference(const KldReference& r, const std::string& path, DType logprob_dtype) {
  if (logprob_dtype != DType::F32 && logprob_dtype != DType::F16)
    throw ArgError("KLD reference log-probabilities must be F32 or F16");
  const int64_t N = r.predictions(), k = r.meta.k;
  SafetensorsWriter w;
  w.add("tokens", i32_tensor(r.tokens, {r.windows, r.meta.ctx}));
  w.add("topk_ids", i32_tensor(r.topk_ids, {N, k}));
  w.add("topk_logprobs", Tensor::from_f32(r.topk_logprobs, {N, k}).to(logprob_dtype));
  w.add("tail_mass", Tensor::from_f32(r.tail_mass, {N}));
  w.add("target_logprob", Tensor::from_f32(r.target_logprob, {N}));
  for (const auto& [key, v] : meta_to_map(r.meta)) w.set_metadata(key, v);
  w.write(path);
}

KldReference read_kld_reference(const std::string& path) {
  const auto f = SafetensorsFile::open(path);
  const auto& md = f->metadata();
  if (md.count("format") == 0 || md.at("format") != kFormat)
    throw FormatError(path + ": not a calq KLD reference (metadata 'format' is not '" + std::string(kFormat) + "')");
  if (need(md, "format_version", path) != kVersion)
    throw FormatError(path + ": unsupported KLD reference format_version '" + md.at("format_version") + "'");
  KldReference r;
  KldRefMeta& m = r.meta;
  m.model = need(md, "model", path);
  m.model_hash = need(md, "model_hash", path);
  m.model_arch = need(md, "model_arch", path);
  m.tokenizer_sha256 = need(md, "tokenizer_sha256", path);
  m.data = need(md, "data", path);
  m.data_sha256 = need(md, "data_sha256", path);
  m.text_mode = need(md, "text_mode", path);
  m.protocol = need(md, "protocol", path);
  m.calq_version = need(md, "calq_version", path);
  m.ctx = need_int(md, "ctx", path);
  m.first_scored = need_int(md, "first_scored", path);
  m.k = need_int(md, "k", path);
  m.vocab_size = need_int(md, "vocab_size", path);
  if (m.ctx < 2 || m.first_scored > m.ctx - 2 || m.k < 1 || m.k > m.vocab_size)
    throw FormatError(path + ": inconsistent KLD reference settings (ctx, first_scored, k, vocab_size)");
  const TensorInfo* ti = f->find("tokens");
  if (!ti || ti->shape.size() != 2 || ti->shape[1] != m.ctx)
    throw FormatError(path + ": tensor 'tokens' must be [windows, " + std::to_string(m.ctx) + "]");
  r.windows = ti->shape[0];
  const int64_t N = r.windows * r.per_window();
  r.tokens = take<int32_t>(*f, "tokens", {r.windows, m.ctx});
  r.topk_ids = take<int32_t>(*f, "topk_ids", {N, m.k});
  r.topk_logprobs = take<float>(*f, "topk_logprobs", {N, m.k});
  r.tail_mass = take<float>(*f, "tail_mass", {N});
  r.target_logprob = take<float>(*f, "target_logprob", {N});
  for (int32_t id : r.tokens)
    if (id < 0 || id >= m.vocab_size) throw FormatError(path + ": token id out of the vocabulary in 'tokens'");
  for (int32_t id : r.topk_ids)
    if (id < 0 || id >= m.vocab_size) throw FormatError(path + ": id out of the vocabulary in 'topk_ids'");
  for (float lp : r.topk_logprobs)
    if (!(lp <= 1e-3f)) throw FormatError(path + ": 'topk_logprobs' holds a value that is not a log-probability");
  for (float lp : r.target_logprob)
    if (!(lp <= 1e-3f)) throw FormatError(path + ": 'target_logprob' holds a value that is not a log-probability");
  for (float t : r.tail_mass)
    if (!(t >= 0.0f && t <= 1.0f + 1e-4f)) throw FormatError(path + ": 'tail_mass' holds a value outside [0, 1]");
  return r;
}

void check_reference_matches(const KldReference& ref, const std::string& ref_path, const std::string& model_arch,
                             const std::string& tokenizer_sha256, const std::string& data_path) {
  const KldRefMeta& m = ref.meta;
  if (m.model_arch != model_arch)
    throw ArgError(ref_path + ": reference was made with a model of architecture '" + m.model_arch +
                   "', the model being scored is '" + model_arch + "': not a version of the same model");
  if (!tokenizer_sha256.empty() && tokenizer_sha256 != m.tokenizer_sha256)
    throw ArgError(ref_path + ": reference was made with tokenizer sha256 " + m.tokenizer_sha256 +
                   ", the model being scored has tokenizer sha256 " + tokenizer_sha256);
  if (!data_path.empty()) {
    const std::string sha = sha256_file(data_path);
    if (sha != m.data_sha256)
      throw ArgError(data_path + ": sha256 " + sha + " differs from the data the reference " + ref_path +
                     " was made from (" + m.data + ", " + m.data_sha256 + ")");
  }
}

uint64_t kld_reference_bytes(int64_t windows, int64_t ctx, int64_t predictions, int64_t k, DType logprob_dtype) {
  const uint64_t per_token = uint64_t(k) * (4 + dtype_size(logprob_dtype)) + 4 + 4;
  return 4 * uint64_t(windows) * uint64_t(ctx) + per_token * uint64_t(predictions);
}

uint64_t llamacpp_kld_base_bytes(int64_t windows, int64_t ctx, int64_t predictions, int64_t vocab) {
  const uint64_t nv = 2 * uint64_t((vocab + 1) / 2) + 4;
  return 20 + 4 * uint64_t(windows) * uint64_t(ctx) + 2 * nv * uint64_t(predictions);
}

}  // namespace calq::eval
