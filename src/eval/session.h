// Opening what an evaluation needs: the model through load_model() (any kind calq can load), its
// tokenizer (the model folder's tokenizer.json, or an explicit path: GGUF files and folders
// without one), and the identity that goes into results files.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "eval/results.h"
#include "model/decoder.h"
#include "tokenizer/tokenizer.h"

namespace calq::eval {

struct EvalSession {
  std::unique_ptr<Decoder> model;
  std::unique_ptr<Tokenizer> tokenizer;  // null when not requested
  ModelInfo info;
};

// tokenizer_path "" = the model folder. need_tokenizer=false skips it unless a path is given
// (scoring a KLD reference needs no tokenizer, but checks its hash when one is available).
// acts: QActs::Int8 runs GGUF Q4_0/Q8_0 (and group-quantized codes) with int8 activations in
// blocks of 32, llama.cpp's arithmetic (formats/loader.h LoadOptions::acts).
// alongside (optional): work on the tokenizer (tokenizing the evaluation text) that runs on a thread
// of its own while the model loads and packs; its exception, if any, is rethrown. The tokenizer is
// read first, so a missing one is reported before the model loads.
EvalSession open_session(const std::string& model_path, const std::string& tokenizer_path, bool need_tokenizer,
                         ComputeType compute = ComputeType::F32, QActs acts = QActs::Float,
                         const std::function<void(const Tokenizer&)>& alongside = {});

// Which compute type runs when it is not the checkpoint's own: a bf16 checkpoint evaluated in f32
// (exact, but about half the speed of bf16 compute). "" when the two agree.
std::string compute_type_note(const EvalSession& s, ComputeType compute);

}  // namespace calq::eval
