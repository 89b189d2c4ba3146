#include "calib/calib_set.h"

#include <cstring>

#include "io/safetensors.h"
#include "util/error.h"
#include "util/sha256.h"

namespace calq {

namespace {
constexpr const char* kFormat = "calq-calib-v1";

[[noreturn]] void bad(const std::string& what, const std::string& msg) {
  if (what.empty()) throw ArgError("calibration set: " + msg);
  throw FormatError(what + ": " + msg);
}

// The manifest's counts (copied into statistics files and read back from there) must be JSON
// integers that describe the tensors next to them; the seed an unsigned 64-bit integer.
void check_manifest_counts(const CalibSet& s, const std::string& what) {
  const std::pair<const char*, int64_t> counts[] = {
      {"nsamples", s.nsamples()}, {"seqlen", s.seqlen()}, {"tokens", s.token_count()}};
  for (const auto& [key, actual] : counts) {
    if (!s.manifest.contains(key)) continue;
    const int64_t v = json_int<FormatError>(s.manifest[key], key, what, 0, INT64_MAX);
    if (v != actual)
      throw FormatError(what + ": field '" + key + "' = " + std::to_string(v) + " does not match the tensors (" +
                        std::to_string(actual) + ")");
  }
  if (s.manifest.contains("seed")) json_uint<FormatError>(s.manifest["seed"], "seed", what, UINT64_MAX);
}
}  // namespace

int64_t CalibSet::valid_length(int64_t i) const {
  if (!mask.defined()) return seqlen();
  const uint8_t* m = mask.data<uint8_t>() + i * seqlen();
  int64_t n = 0;
  while (n < seqlen() && m[n]) ++n;
  return n;
}

int64_t CalibSet::token_count() const {
  int64_t n = 0;
  for (int64_t i = 0; i < nsamples(); ++i) n += valid_length(i);
  return n;
}

std::string token_sha256(const Tensor& ids) {
  // Hash the little-endian bytes explicitly, so the hash is the same on any host.
  Sha256 h;
  const int32_t* p = ids.data<int32_t>();
  for (int64_t i = 0; i < ids.numel(); ++i) {
    const uint32_t v = uint32_t(p[i]);
    const uint8_t b[4] = {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)};
    h.update(b, 4);
  }
  return h.hex();
}

void validate_calib_set(const CalibSet& s, const std::string& what) {
  if (!s.ids.defined()) bad(what, "missing input_ids");
  if (s.ids.dtype() != DType::I32 || s.ids.ndim() != 2)
    bad(what, "input_ids must be I32 [nsamples, seqlen], got " + std::string(dtype_name(s.ids.dtype())) + " " +
                  shape_str(s.ids.shape()));
  if (s.nsamples() <= 0 || s.seqlen() <= 0) bad(what, "empty calibration set " + shape_str(s.ids.shape()));
  const int32_t* ids = s.ids.data<int32_t>();
  for (int64_t i = 0; i < s.ids.numel(); ++i)
    if (ids[i] < 0) bad(what, "negative token id " + std::to_string(ids[i]) + " at flat index " + std::to_string(i));
  if (s.mask.defined()) {
    if (s.mask.dtype() != DType::U8 || s.mask.shape() != s.ids.shape())
      bad(what, "attention_mask must be U8 " + shape_str(s.ids.shape()) + ", got " +
                    dtype_name(s.mask.dtype()) + " " + shape_str(s.mask.shape()));
    for (int64_t i = 0; i < s.nsamples(); ++i) {
      const uint8_t* m = s.mask.data<uint8_t>() + i * s.seqlen();
      const int64_t n = s.valid_length(i);
      if (n == 0) bad(what, "sample " + std::to_string(i) + " has no real token");
      for (int64_t t = n; t < s.seqlen(); ++t)
        if (m[t] != 0) bad(what, "attention_mask row " + std::to_string(i) + " is not right-padded (1..1 0..0)");
    }
  }
  if (!s.manifest.is_object()) bad(what, "manifest is not a JSON object");
}

void save_calib_set(const CalibSet& s0, const std::string& path) {
  validate_calib_set(s0, "");
  CalibSet s = s0;
  s.manifest["token_sha256"] = token_sha256(s.ids);
  s.manifest["nsamples"] = s.nsamples();
  s.manifest["seqlen"] = s.seqlen();
  s.manifest["tokens"] = s.token_count();
  SafetensorsWriter w;
  w.add("input_ids", s.ids);
  if (s.mask.defined()) w.add("attention_mask", s.mask);
  w.set_metadata("format", kFormat);
  w.set_metadata("manifest", s.manifest.dump());
  w.write(path);
}

CalibSet load_calib_set(const std::string& path) {
  auto f = SafetensorsFile::open(path);
  auto fmt = f->metadata().find("format");
  if (fmt == f->metadata().end() || fmt->second != kFormat)
    throw FormatError(path + ": not a calq calibration set (metadata format != " + kFormat + ")");
  CalibSet s;
  if (!f->find("input_ids")) throw FormatError(path + ": missing tensor 'input_ids'");
  s.ids = f->get("input_ids");
  if (f->find("attention_mask")) s.mask = f->get("attention_mask");
  auto man = f->metadata().find("manifest");
  if (man == f->metadata().end()) throw FormatError(path + ": missing manifest metadata");
  s.manifest = parse_json(man->second, path + " (manifest)");
  s.path = path;
  validate_calib_set(s, path);
  check_manifest_counts(s, path + " (manifest)");
  const std::string want = json_get_or<std::string>(s.manifest, "token_sha256", "", path + " (manifest)");
  if (!want.empty() && want != token_sha256(s.ids))
    throw FormatError(path + ": input_ids do not match the manifest's token_sha256 (file modified?)");
  return s;
}

CalibSet slice_calib_set(const CalibSet& s, int64_t begin, int64_t end) {
  if (begin < 0 || end > s.nsamples() || begin >= end)
    throw ArgError("calibration set: sample range [" + std::to_string(begin) + ", " + std::to_string(end) +
                   ") is empty or outside [0, " + std::to_string(s.nsamples()) + ")");
  CalibSet r;
  r.ids = s.ids.slice_rows(begin, end);
  if (s.mask.defined()) r.mask = s.mask.slice_rows(begin, end);
  r.manifest = s.manifest;
  r.manifest["range"] = {begin, end};
  r.path = s.path;
  return r;
}

void check_calib_tokenizer(const CalibSet& s, const std::string& tokenizer_json) {
  const std::string want = s.manifest.value("tokenizer_sha256", "");
  if (want.empty() || !file_exists(tokenizer_json)) return;
  const std::string have = sha256_file(tokenizer_json);
  if (have != want)
    throw ArgError(s.name() + ": the calibration set was tokenized with tokenizer sha256 " + want.substr(0, 12) +
                   "…, but " + tokenizer_json + " has sha256 " + have.substr(0, 12) +
                   "… (rebuild the set with this model's tokenizer: calq calib build --tokenizer)");
}

}  // namespace calq
