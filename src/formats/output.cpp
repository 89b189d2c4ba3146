#include "formats/output.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "io/mapped_file.h"
#include "util/error.h"

namespace calq {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> r;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) r.push_back(e.path().filename().string());
  std::sort(r.begin(), r.end());
  return r;
}

bool holds_kept_entry(const std::string& out, const std::vector<std::string>& keep) {
  for (const auto& k : keep)
    if (file_exists(path_join(out, k))) return true;
  return false;
}

// Weight files of an earlier output in the run's own folder: replaced, or removed when the new
// output has fewer shards.
bool is_weight_file(const std::string& name) {
  return name == "model.safetensors.index.json" || (name.starts_with("model") && name.ends_with(".safetensors"));
}

}  // namespace

void check_output_dir(const std::string& out, const std::vector<std::string>& keep) {
  check_output_target(out);  // a device, FIFO or socket: named as such
  std::error_code ec;
  if (fs::exists(out, ec) && !(fs::is_directory(out, ec) && (fs::is_empty(out, ec) || holds_kept_entry(out, keep))))
    throw ArgError(out + ": already exists (calq never overwrites an output it did not write; remove it or pick "
                         "another name)");
}

OutputDir::OutputDir(std::string out, std::vector<std::string> keep)
    : out_(std::move(out)), tmp_(out_ + ".calq-tmp"), keep_(std::move(keep)) {
  check_output_dir(out_, keep_);
  std::error_code ec;
  fs::remove_all(tmp_, ec);
  if (!fs::create_directories(tmp_, ec) || ec) throw IoError(tmp_ + ": cannot create directory: " + ec.message());
}

OutputDir::~OutputDir() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(tmp_, ec);
}

std::string OutputDir::path(const std::string& name) const { return path_join(tmp_, name); }

void OutputDir::commit() {
  std::error_code ec;
  check_output_target(out_);  // never rename over a device that appeared meanwhile
  if (!fs::is_directory(out_, ec) || fs::is_empty(out_, ec)) {
    fs::remove(out_, ec);  // the empty folder the rule accepted
    fs::rename(tmp_, out_, ec);
    if (ec) throw IoError(out_ + ": cannot rename from " + tmp_ + ": " + ec.message());
    committed_ = true;
    return;
  }
  // The run's own folder: drop the weight files of its previous output that the new one does not
  // replace, move the new files in, config.json last, so that a folder with a config.json is never
  // half written. Nothing else in the folder is touched.
  const std::vector<std::string> fresh = entries(tmp_);
  const std::set<std::string> kept(keep_.begin(), keep_.end()), incoming(fresh.begin(), fresh.end());
  for (const auto& e : entries(out_))
    if (!kept.count(e) && !incoming.count(e) && is_weight_file(e)) fs::remove(path_join(out_, e), ec);
  std::vector<std::string> order = fresh;
  std::stable_partition(order.begin(), order.end(), [](const std::string& n) { return n != "config.json"; });
  for (const auto& e : order) {
    if (kept.count(e)) throw IoError(out_ + ": the output would replace the run's own '" + e + "'");
    fs::rename(path_join(tmp_, e), path_join(out_, e), ec);
    if (ec) throw IoError(path_join(out_, e) + ": cannot rename from " + tmp_ + ": " + ec.message());
  }
  committed_ = true;
  fs::remove_all(tmp_, ec);
}

void check_new_output_file(const std::string& path) {
  check_output_target(path);
  if (file_exists(path))
    throw ArgError(path + ": already exists (calq never overwrites an output it did not write; remove it or pick "
                          "another name)");
}

const char* const kSideFiles[8] = {"tokenizer.json",    "tokenizer.model", "tokenizer_config.json",
                                   "special_tokens_map.json", "added_tokens.json", "vocab.json",
                                   "merges.txt",        "generation_config.json"};

void copy_side_files(const std::string& from_dir, const std::string& to_dir) {
  for (const char* f : kSideFiles) {
    const std::string src = path_join(from_dir, f);
    if (file_exists(src)) write_file_atomic(path_join(to_dir, f), read_file(src));
  }
}

std::vector<std::string> run_warnings(const QuantState& q, const std::string& format) {
  std::vector<std::string> w;
  const Json& info = q.info();
  if (info.is_object() && info.contains("activation") && !info["activation"].is_null())
    w.push_back(q.dir() + ": the run quantizes activations (" + info["activation"].dump() + "); " + format +
                " stores weights only, so the exported model runs with float activations");
  return w;
}

}  // namespace calq
