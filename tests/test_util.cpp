#include "test_util.h"

#include <cstdio>
#include <sys/wait.h>

#include "io/safetensors.h"
#include "util/json.h"

namespace calq::test {

std::vector<int32_t> read_id_batch(const std::string& path, int64_t* batch, int64_t* seq) {
  const Json j = load_json_file(path);
  std::vector<int32_t> ids;
  const auto& rows = j.at("input_ids");
  *batch = int64_t(rows.size());
  *seq = rows.empty() ? 0 : int64_t(rows[0].size());
  for (const auto& r : rows)
    for (const auto& v : r) ids.push_back(v.get<int32_t>());
  return ids;
}

int run_command(const std::string& cmd, std::string* out) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  out->clear();
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  const int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace calq::test

namespace calq::test {

void write_model_copy(const std::string& src, const std::string& dst, DType dtype,
                      const std::function<void(const std::string&, Tensor&)>& edit) {
  std::filesystem::create_directories(dst);
  for (const char* f : {"config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json",
                        "special_tokens_map.json"})
    if (std::filesystem::exists(path_join(src, f)))
      std::filesystem::copy_file(path_join(src, f), path_join(dst, f),
                                 std::filesystem::copy_options::overwrite_existing);
  const Checkpoint ck = Checkpoint::open(src);
  SafetensorsWriter w;
  for (const auto& name : ck.names()) {
    const Tensor t = ck.get(name);
    Tensor c = is_float_dtype(t.dtype()) ? t.to(DType::F32).clone().to(dtype).clone() : t.clone();
    if (edit) edit(name, c);
    w.add(name, c);
  }
  w.write(path_join(dst, "model.safetensors"));
}

}  // namespace calq::test
