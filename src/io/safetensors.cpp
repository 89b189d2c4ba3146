#include "io/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "util/error.h"
#include "util/json.h"

namespace calq {

namespace {

constexpr uint64_t kMaxHeader = 100ull << 20;  // the reference implementation's limit
constexpr uint64_t kMaxElements = uint64_t(1) << 62;

uint64_t read_u64le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

TensorInfo parse_entry(const std::string& name, const Json& e, const std::string& what) {
  const std::string at = what + ": tensor '" + name + "'";
  if (!e.is_object()) throw FormatError(at + ": header entry is not an object");
  TensorInfo ti;
  ti.name = name;
  auto dt = e.find("dtype");
  if (dt == e.end() || !dt->is_string()) throw FormatError(at + ": missing dtype");
  if (!dtype_from_name(dt->get<std::string>(), &ti.dtype))
    throw FormatError(at + ": unknown dtype '" + dt->get<std::string>() + "'");
  auto sh = e.find("shape");
  if (sh == e.end() || !sh->is_array()) throw FormatError(at + ": missing shape");
  // Each dimension and the byte count stay below 2^62: an int64 shape, and numel * dtype size cannot
  // wrap (F64 [2^61] with data_offsets [0, 0] would otherwise pass as an empty tensor).
  uint64_t numel = 1;
  for (size_t k = 0; k < sh->size(); ++k) {
    if (const std::string p = json_uint_problem((*sh)[k], kMaxElements); !p.empty())
      throw FormatError(at + ": shape entries must be non-negative integers: field 'shape[" + std::to_string(k) + "]' " + p);
    const uint64_t v = (*sh)[k].get<uint64_t>();
    if (v != 0 && numel > kMaxElements / v) throw FormatError(at + ": shape overflows (more than 2^62 elements)");
    numel *= v;
    ti.shape.push_back(int64_t(v));
  }
  if (numel > kMaxElements / dtype_size(ti.dtype)) throw FormatError(at + ": shape overflows (more than 2^62 bytes)");
  auto off = e.find("data_offsets");
  if (off == e.end() || !off->is_array() || off->size() != 2) throw FormatError(at + ": data_offsets must be [begin, end]");
  for (int k = 0; k < 2; ++k)
    if (const std::string p = json_uint_problem((*off)[k], UINT64_MAX); !p.empty())
      throw FormatError(at + ": data_offsets must be [begin, end]: field 'data_offsets[" + std::to_string(k) + "]' " + p);
  ti.begin = (*off)[0].get<uint64_t>();
  ti.end = (*off)[1].get<uint64_t>();
  if (ti.end < ti.begin) throw FormatError(at + ": data_offsets end < begin");
  if (ti.end - ti.begin != numel * dtype_size(ti.dtype))
    throw FormatError(at + ": " + std::to_string(ti.end - ti.begin) + " bytes do not match dtype " +
                      dtype_name(ti.dtype) + " and shape " + shape_str(ti.shape));
  return ti;
}

}  // namespace

SafetensorsHeader parse_safetensors_header(const uint8_t* data, size_t size, const std::string& what) {
  if (size < 8) throw FormatError(what + ": truncated safetensors file (" + std::to_string(size) + " bytes)");
  const uint64_t hlen = read_u64le(data);
  if (hlen > kMaxHeader) throw FormatError(what + ": header length " + std::to_string(hlen) + " is too large");
  if (hlen > size - 8) throw FormatError(what + ": truncated: header says " + std::to_string(hlen) +
                                         " bytes, file has " + std::to_string(size - 8));
  const Json j = parse_json(std::string(reinterpret_cast<const char*>(data + 8), size_t(hlen)), what + " header");
  if (!j.is_object()) throw FormatError(what + ": header is not a JSON object");
  SafetensorsHeader h;
  h.data_start = 8 + hlen;
  const uint64_t data_size = size - h.data_start;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) throw FormatError(what + ": __metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) throw FormatError(what + ": __metadata__ value '" + m.key() + "' is not a string");
        h.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    TensorInfo ti = parse_entry(it.key(), *it, what);
    if (ti.end > data_size)
      throw FormatError(what + ": tensor '" + ti.name + "' ends at byte " + std::to_string(ti.end) +
                        " beyond the data section (" + std::to_string(data_size) + " bytes; file truncated?)");
    h.tensors.push_back(std::move(ti));
  }
  std::sort(h.tensors.begin(), h.tensors.end(),
            [](const TensorInfo& a, const TensorInfo& b) { return a.begin < b.begin || (a.begin == b.begin && a.end < b.end); });
  for (size_t i = 1; i < h.tensors.size(); ++i)
    if (h.tensors[i].begin < h.tensors[i - 1].end)
      throw FormatError(what + ": tensors '" + h.tensors[i - 1].name + "' and '" + h.tensors[i].name +
                        "' overlap in the data section");
  return h;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  auto f = std::shared_ptr<SafetensorsFile>(new SafetensorsFile());
  f->file_ = MappedFile::open(path);
  f->header_ = parse_safetensors_header(f->file_->data(), f->file_->size(), path);
  for (size_t i = 0; i < f->header_.tensors.size(); ++i) f->index_[f->header_.tensors[i].name] = i;
  return f;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

Tensor SafetensorsFile::get(const std::string& name) const {
  const TensorInfo* ti = find(name);
  if (!ti) throw FormatError(path() + ": no tensor named '" + name + "'");
  const uint8_t* p = file_->data() + header_.data_start + ti->begin;
  Tensor view = Tensor::view_of(p, ti->dtype, ti->shape, file_, /*readonly=*/true);
  if (reinterpret_cast<uintptr_t>(p) % dtype_size(ti->dtype) != 0) return view.clone();
  return view;
}

void SafetensorsFile::release(const std::string& name) const {
  if (const TensorInfo* ti = find(name)) file_->release(file_->data() + header_.data_start + ti->begin, size_t(ti->end - ti->begin));
}

void SafetensorsWriter::add(const std::string& name, const Tensor& t) {
  add_lazy(name, t.dtype(), t.shape(), nullptr);
  entries_.back().tensor = t;
}

void SafetensorsWriter::add_lazy(const std::string& name, DType dtype, Shape shape, Producer make) {
  if (name == "__metadata__" || name.empty()) throw ArgError("invalid safetensors tensor name '" + name + "'");
  for (const auto& e : entries_)
    if (e.name == name) throw ArgError("safetensors writer: duplicate tensor name '" + name + "'");
  entries_.push_back({name, dtype, std::move(shape), Tensor(), std::move(make)});
}

std::string SafetensorsWriter::header_json() const {
  Json h = Json::object();
  if (!metadata_.empty()) h["__metadata__"] = metadata_;
  uint64_t off = 0;
  for (const auto& e : entries_) {
    h[e.name] = {{"dtype", dtype_name(e.dtype)}, {"shape", e.shape}, {"data_offsets", {off, off + e.bytes()}}};
    off += e.bytes();
  }
  std::string s = h.dump();
  s.append((8 - s.size() % 8) % 8, ' ');  // keep the data section 8-byte aligned
  return s;
}

void SafetensorsWriter::emit(const std::function<void(const void*, size_t)>& sink,
                             const ProgressFn& progress) const {
  const std::string hdr = header_json();
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t((uint64_t(hdr.size()) >> (8 * i)) & 0xff);
  sink(len, 8);
  sink(hdr.data(), hdr.size());
  uint64_t total = 0, done = 0;
  for (const auto& e : entries_) total += e.bytes();
  for (const auto& e : entries_) {
    const Tensor t = e.make ? e.make() : e.tensor;
    if (t.dtype() != e.dtype || t.shape() != e.shape)
      throw ArgError("safetensors writer: tensor '" + e.name + "' was declared " + dtype_name(e.dtype) + " " +
                     shape_str(e.shape) + " but produced " + dtype_name(t.dtype()) + " " + shape_str(t.shape()));
    sink(t.raw(), t.nbytes());
    done += t.nbytes();
    report_progress(progress, int64_t(done >> 20), int64_t(total >> 20), "MiB");
  }
  report_progress(progress, int64_t(done >> 20), int64_t(total >> 20), "MiB", "", true);
}

std::string SafetensorsWriter::to_bytes() const {
  std::string out;
  emit([&](const void* p, size_t n) { out.append(static_cast<const char*>(p), n); }, {});
  return out;
}

void SafetensorsWriter::write(const std::string& path, const ProgressFn& progress) const {
  AtomicFile f(path);
  emit([&](const void* p, size_t n) { f.write(p, n); }, progress);
  f.commit();
}

}  // namespace calq
