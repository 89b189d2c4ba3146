// calq logits MODEL --ids IDS.json --out OUT.safetensors [--hidden-states]
// Runs the float forward pass on {"input_ids": [[...], ...]} and writes fp32 tensors named as in
// the fixtures' goldens (logits, hidden_states.0..L, last_hidden_state).
#include <memory>

#include "command.h"
#include "io/safetensors.h"
#include "formats/loader.h"
#include "util/error.h"
#include "util/json.h"

namespace calq::cli {
namespace {

struct Opts {
  std::string model, ids, out;
  bool hidden = false, bf16 = false;
};

std::vector<int32_t> read_ids(const std::string& path, int64_t* batch, int64_t* seq) {
  const Json j = load_json_file(path);
  auto it = j.find("input_ids");
  if (!j.is_object() || it == j.end() || !it->is_array() || it->empty())
    throw FormatError(path + ": expected {\"input_ids\": [[...], ...]}");
  std::vector<int32_t> ids;
  *batch = int64_t(it->size());
  *seq = -1;
  for (const auto& row : *it) {
    if (!row.is_array() || row.empty()) throw FormatError(path + ": every input_ids row must be a non-empty list");
    if (*seq >= 0 && int64_t(row.size()) != *seq)
      throw FormatError(path + ": input_ids rows must have equal lengths (no padding support)");
    *seq = int64_t(row.size());
    for (const auto& v : row) {
      if (const std::string p = json_int_problem(v, 0, INT32_MAX); !p.empty())
        throw FormatError(path + ": input_ids entries must be integers: field 'input_ids' " + p);
      ids.push_back(v.get<int32_t>());
    }
  }
  return ids;
}

int run(const Opts& o) {
  check_output_target(o.out);  // before the run, not after it
  auto model = load_model(o.model, o.bf16 ? ComputeType::BF16 : ComputeType::F32);
  int64_t B, T;
  const auto ids = read_ids(o.ids, &B, &T);
  ForwardOptions fo;
  fo.hidden_states = o.hidden;
  fo.threads = threads();
  const ForwardOutput out = model->forward(ids.data(), B, T, fo);
  SafetensorsWriter w;
  w.add("logits", out.logits);
  if (o.hidden) {
    for (size_t i = 0; i < out.hidden_states.size(); ++i)
      w.add("hidden_states." + std::to_string(i), out.hidden_states[i]);
    w.add("last_hidden_state", out.last_hidden_state);
  }
  w.set_metadata("model", o.model);
  w.set_metadata("compute", compute_type_name(model->compute()));
  w.write(o.out);
  info("wrote " + o.out + ": logits [" + std::to_string(B) + ", " + std::to_string(T) + ", " +
       std::to_string(model->config().vocab_size) + "]" + (o.hidden ? " + hidden states" : ""));
  return 0;
}

CALQ_REGISTER_COMMAND({{"logits"}, "Run the float forward pass on token ids and write logits (safetensors)",
                       [](CLI::App& app) -> Runner {
                         auto o = std::make_shared<Opts>();
                         app.add_option("model", o->model, "model folder (float, fake-quant, GPTQ, AWQ) or .gguf file")->required();
                         app.add_option("--ids", o->ids, "JSON {\"input_ids\": [[...], ...]} (equal lengths)")
                             ->required();
                         app.add_option("-o,--out", o->out, "output .safetensors")->required();
                         app.add_flag("--hidden-states", o->hidden, "also write hidden_states.0..L and last_hidden_state");
                         app.add_flag("--bf16", o->bf16, "bf16 weights/activations (f32 accumulation)");
                         return [o] { return run(*o); };
                       }});

}  // namespace
}  // namespace calq::cli
