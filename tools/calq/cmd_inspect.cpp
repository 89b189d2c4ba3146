// calq inspect MODEL [--tensors]: architecture, parameter count, dtypes, tensors, tokenizer.
#include <cstdio>
#include <map>
#include <memory>

#include "command.h"
#include "io/checkpoint.h"
#include "formats/gguf_tokenizer.h"
#include "formats/loader.h"
#include "io/gguf.h"
#include "tokenizer/tokenizer.h"

namespace calq::cli {
namespace {

struct Opts {
  std::string model;
  bool tensors = false;
};

std::string human(double n) {
  char b[32];
  if (n >= 1e9) std::snprintf(b, sizeof b, "%.2fB", n / 1e9);
  else if (n >= 1e6) std::snprintf(b, sizeof b, "%.2fM", n / 1e6);
  else if (n >= 1e3) std::snprintf(b, sizeof b, "%.1fK", n / 1e3);
  else std::snprintf(b, sizeof b, "%.0f", n);
  return b;
}

void print_config(const ModelConfig& c) {
  std::printf("architecture   %s (model_type %s, family %s)\n", c.architecture.c_str(), c.model_type.c_str(),
              family_name(c.family));
  std::printf("layers         %d, hidden %d, intermediate %d, vocab %d, context %d\n", c.num_layers, c.hidden_size,
              c.intermediate_size, c.vocab_size, c.max_position);
  std::printf("attention      %d heads, %d kv heads, head_dim %d", c.num_heads, c.num_kv_heads, c.head_dim);
  if (!c.sliding_window.empty() && c.sliding_window[0] > 0) std::printf(", sliding window %d", c.sliding_window[0]);
  std::printf("\n");
  std::printf("norm           %s eps %g%s%s\n", c.norm == NormKind::RMSNorm ? "RMSNorm" : "LayerNorm", c.norm_eps,
              c.norm_bias ? " (with bias)" : "", c.pre_norm ? "" : ", post-LN");
  if (c.pos == PosKind::Rope)
    std::printf("positions      RoPE %s theta %g, scaling %s\n",
                c.rope_style == RopeStyle::RotateHalf ? "rotate_half" : "interleaved", c.rope_theta,
                c.rope_scaling.type.c_str());
  else
    std::printf("positions      learned (offset %d)\n", c.position_offset);
  std::printf("block          %s, %s MLP, biases qkv=%d o=%d mlp=%d, tied embeddings %s%s\n",
              c.parallel_block ? "parallel attn+MLP" : "sequential", c.gated_mlp ? "gated" : "plain", c.qkv_bias,
              c.o_bias, c.mlp_bias, c.tie_embeddings ? "yes" : "no",
              c.logit_scale != 1.0 ? (", logit_scale " + std::to_string(c.logit_scale)).c_str() : "");
}

int run(const Opts& o) {
  const std::string fmt = detect_model_format(o.model);
  auto model = load_model(o.model);
  std::printf("model          %s (format %s)\n", o.model.c_str(), fmt.c_str());
  print_config(model->config());
  std::printf("parameters     %s (%lld)\n", human(double(model->parameter_count())).c_str(),
              (long long)model->parameter_count());
  if (fmt == "fake-quant") {
    const Json q = load_json_file(path_join(o.model, "config.json")).at("calq_quant");
    std::printf("quantization   calq fake-quant checkpoint: %s, weights stored dequantized (float)%s\n",
                q.value("method", std::string("?")).c_str(),
                (file_exists(path_join(o.model, "qstate/state.json"))
                    ? "; codes in qstate/ (calq export " + o.model + " --format gptq|awq|gguf)"
                    : "; no qstate/ beside it (GPTQ/AWQ export needs the run's qstate)").c_str());
    if (q.contains("settings")) std::printf("settings       %s\n", q["settings"].dump().c_str());
  }
  if (fmt == "hf-float" || fmt == "fake-quant" || fmt == "gptq" || fmt == "awq") {
    const Checkpoint ck = Checkpoint::open(o.model);
    std::map<std::string, std::pair<int, int64_t>> by_dtype;
    for (const auto& n : ck.names()) {
      const TensorInfo& ti = ck.info(n);
      auto& e = by_dtype[dtype_name(ti.dtype)];
      e.first++;
      e.second += int64_t(ti.end - ti.begin);
    }
    std::printf("dtypes        ");
    for (const auto& [d, e] : by_dtype) std::printf(" %s: %d tensors, %s bytes;", d.c_str(), e.first, human(double(e.second)).c_str());
    std::printf("\nshards         %zu\n", ck.shard_paths().size());
    if (o.tensors)
      for (const auto& n : ck.names()) {
        const TensorInfo& ti = ck.info(n);
        std::printf("  %-60s %-5s %s\n", n.c_str(), dtype_name(ti.dtype), shape_str(ti.shape).c_str());
      }
  }
  if (fmt == "gguf") {
    const auto f = gguf::File::open(o.model);
    if (auto tok = load_gguf_tokenizer(*f)) {
      std::printf("tokenizer      from the GGUF metadata (tokenizer.ggml.model %s, pre %s)\n%s\n",
                  f->get_string("tokenizer.ggml.model").c_str(),
                  f->find("tokenizer.ggml.pre") ? f->get_string("tokenizer.ggml.pre").c_str() : "-", tok->summary().c_str());
    } else {
      std::printf("tokenizer      none in the file (no tokenizer.ggml.model); evaluations need --tokenizer\n");
    }
  } else if (file_exists(path_join(o.model, "tokenizer.json"))) {
    auto tok = Tokenizer::from_path(o.model);
    std::printf("tokenizer      %s\n", tok->summary().c_str());
  } else {
    std::printf("tokenizer      none found (no tokenizer.json in the folder)\n");
  }
  return 0;
}

CALQ_REGISTER_COMMAND({{"inspect"}, "Show a model's architecture, parameters, dtypes, tensors and tokenizer",
                       [](CLI::App& app) -> Runner {
                         auto o = std::make_shared<Opts>();
                         app.add_option("model", o->model, "model folder (HF float, GPTQ, AWQ) or .gguf file")
                             ->required();
                         app.add_flag("--tensors", o->tensors, "list every tensor with dtype and shape");
                         return [o] { return run(*o); };
                       }});

}  // namespace
}  // namespace calq::cli
