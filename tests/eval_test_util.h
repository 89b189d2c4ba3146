// Hand-computable stand-ins for the evaluation tests: a bigram "model" whose logits at position t
// are log P(· | ids[t]) from a fixed table, and a byte-level tokenizer.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "eval/logit_source.h"
#include "tokenizer/tokenizer.h"

namespace calq::test {

class BigramModel final : public eval::LogitSource {
 public:
  // probs[c] = distribution of the token after c (V rows of V probabilities).
  explicit BigramModel(std::vector<std::vector<double>> probs, int64_t max_len = 0)
      : p_(std::move(probs)), max_len_(max_len) {}
  int64_t vocab_size() const override { return int64_t(p_.size()); }
  int64_t max_length() const override { return max_len_; }
  double prob(int32_t cur, int32_t next) const { return p_[size_t(cur)][size_t(next)]; }
  void logits(const int32_t* ids, int64_t batch, int64_t seq, const std::vector<int64_t>& rows,
              const eval::RowSink& sink) const override {
    const int64_t V = vocab_size();
    std::vector<float> out;
    for (int64_t r : rows)
      for (int64_t j = 0; j < V; ++j) out.push_back(float(std::log(p_[size_t(ids[r])][size_t(j)])) + 3.0f);
    ++calls;
    positions_fed += batch * seq;
    sink(out.data(), int64_t(rows.size()), rows.data());
  }
  mutable int calls = 0;
  mutable int64_t positions_fed = 0;  // batch * seq summed over calls

 private:
  std::vector<std::vector<double>> p_;
  int64_t max_len_;
};

// One id per byte (id = byte + 3); BOS 1, EOS 2; add_special_tokens prepends BOS.
class ByteTokenizer final : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& opt = {}) const override {
    std::vector<int32_t> ids;
    if (opt.add_special_tokens) ids.push_back(1);
    for (unsigned char c : text) ids.push_back(int32_t(c) + 3);
    return ids;
  }
  std::string decode(const std::vector<int32_t>& ids, bool) const override {
    std::string s;
    for (int32_t i : ids)
      if (i >= 3) s.push_back(char(i - 3));
    return s;
  }
  int32_t vocab_size() const override { return 259; }
  std::optional<int32_t> token_to_id(std::string_view) const override { return std::nullopt; }
  std::string id_to_token(int32_t) const override { return ""; }
  bool is_special(int32_t id) const override { return id < 3; }
  int32_t bos_id() const override { return 1; }
  int32_t eos_id() const override { return 2; }
  const std::string& sha256() const override { return sha_; }
  std::string summary() const override { return "byte tokenizer (test)"; }

 private:
  std::string sha_ = "byte-tokenizer";
};

}  // namespace calq::test
