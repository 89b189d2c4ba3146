#include "calib/builders.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>

#include "calib/rng.h"
#include "calib/sources.h"
#include "util/error.h"

namespace calq {

const std::string& ascii_punctuation() {
  static const std::string p = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
  return p;
}

namespace {

constexpr size_t kChunkChars = 2000;  // packed modes encode text in chunks of about this size

struct Builder {
  const CalibSpec& spec;
  const Tokenizer* tok;
  CalibRng rng;
  std::vector<int32_t> ids;    // n * T, filled row by row
  std::vector<uint8_t> mask;   // n * T when padded
  bool padded = false;
  Json man = Json::object();

  Builder(const CalibSpec& s, const Tokenizer* t) : spec(s), tok(t), rng(s.seed) {}

  const Tokenizer& need_tok() const {
    if (!tok) throw ArgError("calib " + spec.builder + ": needs a tokenizer");
    return *tok;
  }
  int64_t n() const { return spec.nsamples; }
  int64_t T() const { return spec.seqlen; }
  bool bos() const { return spec.add_special_tokens && tok && tok->bos_id() >= 0; }
  std::vector<int32_t> encode(const std::string& text, bool specials) const {
    EncodeOptions o;
    o.add_special_tokens = specials;
    return need_tok().encode(text, o);
  }
  std::vector<size_t> shuffled(size_t count) {  // Fisher-Yates with the portable RNG
    std::vector<size_t> p(count);
    std::iota(p.begin(), p.end(), 0);
    for (size_t i = count; i > 1; --i) std::swap(p[i - 1], p[size_t(rng.below(i))]);
    return p;
  }

  CalibSet finish() {
    CalibSet s;
    s.ids = Tensor::empty(DType::I32, {n(), T()});
    std::memcpy(s.ids.raw_mut(), ids.data(), ids.size() * 4);
    if (padded) {
      s.mask = Tensor::empty(DType::U8, {n(), T()});
      std::memcpy(s.mask.raw_mut(), mask.data(), mask.size());
    }
    man["builder"] = spec.builder;
    man["settings"] = calib_spec_json(spec);
    man["seed"] = spec.seed;
    man["nsamples"] = n();
    man["seqlen"] = T();
    if (tok) man["tokenizer_sha256"] = tok->sha256();
    s.manifest = man;
    s.manifest["tokens"] = s.token_count();
    s.manifest["token_sha256"] = token_sha256(s.ids);
    return s;
  }

  void source_info(const TextSource& src) {
    man["source"] = {{"path", src.path}, {"sha256", src.sha256}, {"documents", src.docs.size()},
                     {"split", src.description}};
  }

  // --- text, mode gptq ---------------------------------------------------------------------------
  void gptq(const TextSource& src) {
    std::map<size_t, std::vector<int32_t>> cache;  // long documents' ids; short ones: empty
    std::vector<int64_t> len(src.docs.size(), -1);
    size_t checked = 0;
    int64_t longest = 0;
    Json picks = Json::array();
    for (int64_t s = 0; s < n(); ++s) {
      size_t d;
      for (;;) {
        d = size_t(rng.below(src.docs.size()));
        if (len[d] < 0) {
          auto v = encode(src.docs[d], spec.add_special_tokens);
          len[d] = int64_t(v.size());
          longest = std::max(longest, len[d]);
          ++checked;
          if (len[d] > T()) cache[d] = std::move(v);
        }
        if (len[d] > T()) break;
        if (checked == src.docs.size() && cache.empty())
          throw ArgError(src.path + ": no document is longer than seqlen " + std::to_string(T()) + " tokens (" +
                         std::to_string(src.docs.size()) + " documents, longest " + std::to_string(longest) +
                         " tokens); use --mode concat, another --split, or a smaller --seqlen");
      }
      const auto& v = cache[d];
      const int64_t off = int64_t(rng.below(uint64_t(len[d] - T())));
      ids.insert(ids.end(), v.begin() + off, v.begin() + off + T());
      picks.push_back({d, off});
    }
    man["picks"] = picks;  // [document index, token offset] per sample
    man["documents_tokenized"] = checked;
  }

  // --- packed: items in seeded order, concatenated, cut into blocks --------------------------------
  void pack(const TextSource& src, const std::string& sep) {
    const std::vector<size_t> order = shuffled(src.docs.size());
    const int64_t body = T() - (bos() ? 1 : 0);
    if (body <= 0) throw ArgError("calib: seqlen " + std::to_string(T()) + " leaves no room after BOS");
    const int64_t need = n() * body;
    std::vector<int32_t> stream;
    size_t used = 0, chunks = 0;
    std::string chunk;
    auto flush = [&] {
      if (chunk.empty()) return;
      const auto v = encode(chunk, false);
      stream.insert(stream.end(), v.begin(), v.end());
      chunk.clear();
      ++chunks;
    };
    for (size_t k = 0; k < order.size() && int64_t(stream.size()) < need; ++k) {
      chunk += (chunk.empty() ? "" : sep) + src.docs[order[k]];
      ++used;
      if (chunk.size() >= kChunkChars) flush();
    }
    flush();
    if (int64_t(stream.size()) < need)
      throw ArgError(src.path + ": source too small: all " + std::to_string(src.docs.size()) + " " +
                     src.description + " give " + std::to_string(stream.size()) + " tokens, but " +
                     std::to_string(n()) + " samples x " + std::to_string(body) + " tokens need " +
                     std::to_string(need) + "; lower --nsamples or --seqlen");
    for (int64_t s = 0; s < n(); ++s) {
      if (bos()) ids.push_back(tok->bos_id());
      ids.insert(ids.end(), stream.begin() + s * body, stream.begin() + (s + 1) * body);
    }
    man["documents_used"] = used;
    man["order"] = std::vector<size_t>(order.begin(), order.begin() + long(used));  // item indices, in order
    man["stream_tokens"] = stream.size();
  }

  // --- one document per sample, truncated / right-padded ------------------------------------------
  void document(const TextSource& src) {
    const std::vector<size_t> order = shuffled(src.docs.size());
    const int32_t pad = tok && tok->eos_id() >= 0 ? tok->eos_id() : 0;
    Json chosen = Json::array();
    size_t k = 0;
    int64_t truncated = 0;
    mask.reserve(size_t(n() * T()));
    for (int64_t s = 0; s < n(); ++s) {
      std::vector<int32_t> v;
      while (v.empty() && k < order.size()) v = encode(src.docs[order[k++]], spec.add_special_tokens);
      if (v.empty())
        throw ArgError(src.path + ": source too small: " + std::to_string(src.docs.size()) + " " + src.description +
                       " for " + std::to_string(n()) + " samples (one document each); lower --nsamples");
      chosen.push_back(order[k - 1]);
      truncated += int64_t(v.size()) > T();
      v.resize(size_t(std::min<int64_t>(int64_t(v.size()), T())));
      for (int64_t t = 0; t < T(); ++t) {
        const bool real = t < int64_t(v.size());
        ids.push_back(real ? v[size_t(t)] : pad);
        mask.push_back(real ? 1 : 0);
        padded |= !real;
      }
    }
    if (!padded) mask.clear();
    man["documents"] = chosen;
    man["truncated"] = truncated;
    man["pad_id"] = pad;
  }

  // --- punctuation strings ------------------------------------------------------------------------
  void punct() {
    const std::string& cs = spec.charset.empty() ? ascii_punctuation() : spec.charset;
    const int64_t body = T() - (bos() ? 1 : 0);
    Json chars = Json::array();
    for (int64_t s = 0; s < n(); ++s) {
      std::string text;
      std::vector<int32_t> v;
      size_t grow = size_t(std::max<int64_t>(16, 2 * body));
      while (int64_t(v.size()) < body) {  // extend the same random string until it has enough tokens
        if (text.size() > size_t(64 * body) + 4096)
          throw ArgError("calib punct: the tokenizer turns " + std::to_string(text.size()) + " characters into only " +
                         std::to_string(v.size()) + " tokens");
        for (size_t i = 0; i < grow; ++i) text += cs[size_t(rng.below(cs.size()))];
        v = encode(text, false);
        grow = text.size();
      }
      if (bos()) ids.push_back(tok->bos_id());
      ids.insert(ids.end(), v.begin(), v.begin() + body);
      chars.push_back(text.size());
    }
    man["charset"] = cs;
    man["chars_per_sample"] = chars;
  }

  // --- uniformly random token ids -----------------------------------------------------------------
  void random_tokens() {
    const int64_t V = spec.vocab > 0 ? spec.vocab : need_tok().vocab_size();
    std::vector<int32_t> allowed;
    for (int32_t id = 0; id < V; ++id)
      if (!tok || !tok->is_special(id)) allowed.push_back(id);
    if (allowed.empty()) throw ArgError("calib random-tokens: no non-special token id below " + std::to_string(V));
    for (int64_t s = 0; s < n(); ++s) {
      int64_t t = 0;
      if (bos()) ids.push_back(tok->bos_id()), ++t;
      for (; t < T(); ++t) ids.push_back(allowed[size_t(rng.below(allowed.size()))]);
    }
    man["vocab"] = V;
    man["excluded_special"] = V - int64_t(allowed.size());
  }
};

CalibSet build_mix(const CalibSpec& spec, const Tokenizer* tok) {
  if (spec.parts.empty()) throw ArgError("calib mix: no parts given");
  double wsum = 0;
  for (const auto& [w, p] : spec.parts) {
    if (!(w > 0)) throw ArgError("calib mix: weights must be positive");
    if (p.builder == "mix") throw ArgError("calib mix: parts cannot be mixes");
    wsum += w;
  }
  // Largest-remainder allocation of nsamples to the parts.
  const size_t k = spec.parts.size();
  std::vector<int64_t> cnt(k);
  std::vector<std::pair<double, size_t>> rem;
  int64_t given = 0;
  for (size_t i = 0; i < k; ++i) {
    const double q = spec.parts[i].weight / wsum * double(spec.nsamples);
    cnt[i] = int64_t(std::floor(q));
    given += cnt[i];
    rem.push_back({q - std::floor(q), i});
  }
  std::stable_sort(rem.begin(), rem.end(), [](auto& a, auto& b) { return a.first > b.first; });
  for (size_t j = 0; given < spec.nsamples; ++j, ++given) ++cnt[rem[j % k].second];

  const int64_t T = spec.seqlen;
  std::vector<int32_t> ids;
  std::vector<uint8_t> mask;
  bool padded = false;
  Json parts = Json::array();
  for (size_t i = 0; i < k; ++i) {
    CalibSpec p = spec.parts[i].spec;
    p.nsamples = cnt[i];
    p.seqlen = T;
    p.seed = spec.seed + i;
    p.add_special_tokens = spec.add_special_tokens;
    p.data_root = spec.data_root;
    Json pj = {{"weight", spec.parts[i].weight}, {"nsamples", cnt[i]}};
    if (cnt[i] > 0) {
      const CalibSet s = build_calib_set(p, tok);
      const uint8_t* m = s.padded() ? s.mask.data<uint8_t>() : nullptr;
      ids.insert(ids.end(), s.ids.data<int32_t>(), s.ids.data<int32_t>() + s.ids.numel());
      for (int64_t j = 0; j < s.ids.numel(); ++j) mask.push_back(m ? m[j] : 1);
      padded |= s.padded();
      pj["manifest"] = s.manifest;
    }
    parts.push_back(pj);
  }
  // Shuffle the samples so the parts interleave.
  Builder b(spec, tok);
  const std::vector<size_t> perm = b.shuffled(size_t(spec.nsamples));
  for (size_t s = 0; s < perm.size(); ++s) {
    b.ids.insert(b.ids.end(), ids.begin() + long(perm[s] * T), ids.begin() + long((perm[s] + 1) * T));
    b.mask.insert(b.mask.end(), mask.begin() + long(perm[s] * T), mask.begin() + long((perm[s] + 1) * T));
  }
  b.padded = padded;
  if (!padded) b.mask.clear();
  b.man["parts"] = parts;
  b.man["order"] = perm;  // sample s of the mix is sample order[s] of the parts' concatenation
  return b.finish();
}

std::string default_mode(const std::string& builder) { return builder == "text" ? "gptq" : "concat"; }

}  // namespace

Json calib_spec_json(const CalibSpec& s) {
  Json j = {{"builder", s.builder}, {"nsamples", s.nsamples}, {"seqlen", s.seqlen}, {"seed", s.seed},
            {"add_special_tokens", s.add_special_tokens}};
  const std::string mode = s.mode.empty() ? default_mode(s.builder) : s.mode;
  if (s.builder == "text") j.update({{"mode", mode}, {"source", s.source}, {"field", s.field}, {"split", s.split}});
  if (s.builder == "task") j.update({{"mode", mode}, {"task", s.task}});
  if (s.builder == "lang") j.update({{"mode", mode}, {"lang", s.lang}});
  if (s.builder == "punct") j["charset"] = s.charset.empty() ? ascii_punctuation() : s.charset;
  if (s.builder == "random-tokens" && s.vocab > 0) j["vocab"] = s.vocab;
  return j;
}

CalibSet build_calib_set(const CalibSpec& spec, const Tokenizer* tok) {
  if (spec.nsamples <= 0) throw ArgError("calib: nsamples must be positive (got " + std::to_string(spec.nsamples) + ")");
  if (spec.seqlen <= 0) throw ArgError("calib: seqlen must be positive (got " + std::to_string(spec.seqlen) + ")");
  if (spec.builder == "mix") return build_mix(spec, tok);
  Builder b(spec, tok);
  const std::string mode = spec.mode.empty() ? default_mode(spec.builder) : spec.mode;
  auto run_text = [&](const TextSource& src, const std::string& sep) {
    b.source_info(src);
    if (mode == "gptq") b.gptq(src);
    else if (mode == "concat") b.pack(src, sep);
    else if (mode == "document") b.document(src);
    else throw ArgError("calib " + spec.builder + ": unknown mode '" + mode + "' (gptq, concat, document)");
  };
  if (spec.builder == "text") {
    if (spec.source.empty()) throw ArgError("calib text: no --source corpus given");
    b.need_tok();
    run_text(read_text_source(spec.source, spec.field, spec.split), "\n\n");
  } else if (spec.builder == "task") {
    b.need_tok();
    run_text(read_task_source(spec.task, spec.data_root), "\n\n");
  } else if (spec.builder == "lang") {
    b.need_tok();
    run_text(read_flores_source(spec.lang, spec.data_root), " ");
    b.man["lang"] = spec.lang;
  } else if (spec.builder == "punct") {
    b.need_tok();
    b.punct();
  } else if (spec.builder == "random-tokens") {
    if (!tok && spec.vocab <= 0) throw ArgError("calib random-tokens: needs a tokenizer or --vocab");
    b.random_tokens();
  } else {
    throw ArgError("calib: unknown builder '" + spec.builder + "' (text, punct, random-tokens, task, lang, mix)");
  }
  return b.finish();
}

CalibMixPart parse_mix_part(const std::string& text, const CalibSpec& defaults) {
  const auto bad = [&](const std::string& why) {
    return ArgError("mix part '" + text + "': " + why + " (expected WEIGHT:BUILDER[:key=value,...])");
  };
  const size_t c1 = text.find(':');
  if (c1 == std::string::npos) throw bad("missing ':'");
  double w = 0;
  try {
    size_t used = 0;
    w = std::stod(text.substr(0, c1), &used);
    if (used != c1) throw bad("bad weight");
  } catch (const std::logic_error&) {
    throw bad("bad weight");
  }
  const size_t c2 = text.find(':', c1 + 1);
  CalibSpec p = defaults;
  p.parts.clear();
  p.mode.clear();
  p.builder = text.substr(c1 + 1, c2 == std::string::npos ? std::string::npos : c2 - c1 - 1);
  if (c2 != std::string::npos) {
    std::string rest = text.substr(c2 + 1);
    size_t i = 0;
    while (i <= rest.size()) {
      size_t j = rest.find(',', i);
      if (j == std::string::npos) j = rest.size();
      const std::string kv = rest.substr(i, j - i);
      const size_t eq = kv.find('=');
      if (eq == std::string::npos) throw bad("'" + kv + "' is not key=value");
      const std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
      if (k == "source") p.source = v;
      else if (k == "mode") p.mode = v;
      else if (k == "field") p.field = v;
      else if (k == "split") p.split = v;
      else if (k == "task") p.task = v;
      else if (k == "lang") p.lang = v;
      else if (k == "charset") p.charset = v;
      else if (k == "vocab") p.vocab = std::atoll(v.c_str());
      else throw bad("unknown key '" + k + "'");
      i = j + 1;
    }
  }
  return {w, p};
}

int64_t calib_seqlen(int64_t requested, int64_t max_position, const std::string& model) {
  if (requested < 0) throw ArgError("--seqlen must be positive, got " + std::to_string(requested));
  if (requested == 0) return max_position > 0 ? std::min<int64_t>(2048, max_position) : 2048;
  if (max_position > 0 && requested > max_position)
    throw ArgError("--seqlen " + std::to_string(requested) + " is longer than " + model + " takes (" +
                   std::to_string(max_position) + " positions, max_position_embeddings): use -T " +
                   std::to_string(max_position) + " or less (or pass its tokenizer.json to build for another model)");
  return requested;
}

}  // namespace calq
