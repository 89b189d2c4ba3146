#include "eval/session.h"

#include <future>

#include "eval/identity.h"
#include "io/checkpoint.h"
#include "kernels/gemm.h"
#include "io/mapped_file.h"
#include "formats/gguf_tokenizer.h"
#include "formats/loader.h"
#include "io/gguf.h"
#include "util/error.h"

namespace calq::eval {

namespace {

// The tokenizer and its identity: an explicit path, the model folder's tokenizer.json, or the
// tokenizer a GGUF file carries. Read before the model, which takes far longer.
void open_tokenizer(EvalSession& s, const std::string& model_path, const std::string& tokenizer_path,
                    bool need_tokenizer) {
  const bool folder_has_tokenizer = file_exists(path_join(model_path, "tokenizer.json"));
  if (!tokenizer_path.empty() || folder_has_tokenizer) {
    s.tokenizer = Tokenizer::from_path(tokenizer_path.empty() ? model_path : tokenizer_path);
    s.info.tokenizer_sha256 = s.tokenizer->sha256();
  } else if (s.info.format == "gguf") {
    // The tokenizer the file carries. A file calq wrote names its source tokenizer.json, whose
    // sha256 stays the identity (references made on the float model match).
    const auto f = gguf::File::open(model_path);
    s.tokenizer = load_gguf_tokenizer(*f);
    if (s.tokenizer) {
      const std::string src = gguf_tokenizer_source_sha256(*f);
      s.info.tokenizer_sha256 = src.empty() ? s.tokenizer->sha256() : src;
    }
  }
  if (!s.tokenizer && need_tokenizer)
    throw ArgError(model_path + (s.info.format == "gguf" ? ": the GGUF file carries no tokenizer" : ": no tokenizer.json beside the model") +
                   "; pass --tokenizer PATH (a model folder or tokenizer.json)");
}

}  // namespace

EvalSession open_session(const std::string& model_path, const std::string& tokenizer_path, bool need_tokenizer,
                         ComputeType compute, QActs acts, const std::function<void(const Tokenizer&)>& alongside) {
  EvalSession s;
  s.info.path = model_path;
  s.info.format = detect_model_format(model_path);
  open_tokenizer(s, model_path, tokenizer_path, need_tokenizer);
  // The caller's tokenizer work runs on a thread of its own while the model loads: loading is
  // mostly packing on every OpenMP thread, but it has single-threaded steps (the non-finite scan,
  // oneDNN's primitive setup per weight) that leave a core idle.
  std::future<void> side;
  if (alongside && s.tokenizer) side = std::async(std::launch::async, [&] { alongside(*s.tokenizer); });
  // Every linear packed now and the mapped pages it came from released (LoadOptions::pack): a
  // bf16 checkpoint at bf16 compute holds one copy of its weights, not the file's pages as well.
  LoadOptions lo;
  lo.compute = compute;
  lo.pack = true;
  lo.acts = acts;
  s.model = load_model(model_path, lo);
  s.info.arch = arch_signature(s.model->config());
  s.info.hash = model_hash(model_path);
  if (side.valid()) side.get();  // rethrows what the side work threw
  if (s.tokenizer && s.tokenizer->vocab_size() > s.model->config().vocab_size)
    throw ArgError("tokenizer has " + std::to_string(s.tokenizer->vocab_size()) + " ids but the model's vocabulary is " +
                   std::to_string(s.model->config().vocab_size) + ": they do not belong together");
  return s;
}

std::string compute_type_note(const EvalSession& s, ComputeType compute) {
  const Checkpoint* c = s.model->checkpoint();
  if (compute != ComputeType::F32 || !c) return "";
  const Json& cfg = c->config();
  const auto it = cfg.find("torch_dtype");
  if (it == cfg.end() || !it->is_string() || it->get<std::string>() != "bfloat16") return "";
  if (!gemm_bf16_native())  // emulated bf16 (no AVX-512): --bf16 would only round, not speed up
    return "compute: f32 (the checkpoint stores bf16 weights; bf16 compute, --bf16, differs slightly and is no "
           "faster on this CPU, which has no AVX-512 bf16 matmuls)";
  return "compute: f32 (the checkpoint stores bf16 weights; bf16 compute, --bf16, is about twice as fast and "
         "differs slightly)";
}

}  // namespace calq::eval
