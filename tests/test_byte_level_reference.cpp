// The byte-level teacher (nexus/fusion/bytes/byte_level.hpp) against a brute force that shares none of the
// library's helpers: the vocabulary's bytes, π, the root context, where a character ends and which token
// sequences are admitted are all re-derived here from the tokenizer (token_bytes, encode) and the rule as
// docs/fusion.md states it. test_byte_level.cpp's brute force calls byte_vocabulary, decision_offset and
// valid_base_prefix, so it cannot see a change to them; this one can.
//
// The rule: a base is a token sequence (after the root) whose bytes are a prefix of π·y. Each of its prefixes,
// ending at text offset e (0 inside π), is decided once the character holding byte e is complete in y (at f);
// it is then admitted if it is a prefix of encode(y[0, f)), or if e is a character boundary inside the text
// (0 < e) and it equals encode(y[0, e)). Undecided prefixes are admitted for now.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <functional>
#include <iomanip>
#include <map>
#include <random>

#include "nexus/backend/cpu/model.hpp"
#include "nexus/fusion/bytes/score.hpp"
#include "nexus/io/model_cache.hpp"
#include "nexus/registry/open.hpp"
#include "reference.hpp"
#include "widened_llama.hpp"

using namespace nexus;

namespace {

/// Length of the UTF-8 sequence a lead byte starts (1 for anything else).
std::size_t sequence_length(unsigned char lead) {
  if (lead >= 0xf0) return 4;
  if (lead >= 0xe0) return 3;
  if (lead >= 0xc0) return 2;
  return 1;
}

struct brute {
  const model& m;
  const tokenizer& tok;
  std::map<std::int32_t, std::string> bytes;  // ordinary tokens: not special, not unk, spelling some bytes
  std::string pi;
  std::vector<std::int32_t> root;

  brute(const model& mm, const tokenizer& t) : m(mm), tok(t) {
    const auto n = std::min<std::int64_t>(std::int64_t(tok.vocab_size()), m.arch().dims.vocab_size);
    for (std::int32_t id = 0; id < n; ++id) {
      if (tok.is_special(id) || tok.unk() == id) continue;
      if (auto b = tok.token_bytes(id); b && !b->empty()) bytes[id] = *b;
    }
    for (const auto id : tok.encode("a")) pi += *tok.token_bytes(id);
    REQUIRE(!pi.empty());
    REQUIRE(pi.back() == 'a');
    pi.pop_back();
    root = tok.prefix_ids();
    if (root.empty() && tok.bos()) root = {*tok.bos()};
    if (root.empty() && tok.eos()) root = {*tok.eos()};
  }

  /// Whether `toks`, whose bytes end at offset `end` of π·y, is admitted by what y decides.
  bool admitted(const std::vector<std::int32_t>& toks, std::size_t end, const std::string& y) const {
    const std::size_t e = end < pi.size() ? 0 : end - pi.size();
    if (e >= y.size()) return true;  // the character holding byte e is not read yet
    std::size_t s = e;
    while (s > 0 && (static_cast<unsigned char>(y[s]) & 0xc0) == 0x80) --s;
    const std::size_t f = s + sequence_length(static_cast<unsigned char>(y[s]));
    if (f > y.size()) return true;  // that character is not complete yet
    const auto ahead = tok.encode(y.substr(0, f));
    if (ahead.size() >= toks.size() && std::equal(toks.begin(), toks.end(), ahead.begin())) return true;
    const bool boundary = end >= pi.size() && e > 0 && (static_cast<unsigned char>(y[e]) & 0xc0) != 0x80;
    return boundary && tok.encode(y.substr(0, e)) == toks;
  }

  /// log P(ids | root), one token at a time on a fresh cache, and the log-softmax after the last.
  std::pair<double, std::vector<double>> run(const std::vector<std::int32_t>& ids) const {
    std::vector<std::int32_t> all = root;
    all.insert(all.end(), ids.begin(), ids.end());
    auto cache = m.new_cache(std::int64_t(all.size()) + 1);
    double logp = 0;
    std::vector<double> lp;
    for (std::size_t p = 0; p < all.size(); ++p) {
      if (p >= root.size()) logp += lp.at(std::size_t(all[p]));
      const auto out = m.forward(std::span(&all[p], 1), cache, {.all_logits = false, .chunk_rows = 1});
      const auto& row = out.logits.data;
      double top = -INFINITY;
      for (const float x : row) top = std::max(top, double(x));
      double sum = 0;
      for (const float x : row) sum += std::exp(double(x) - top);
      lp.resize(row.size());
      for (std::size_t i = 0; i < row.size(); ++i) lp[i] = double(row[i]) - top - std::log(sum);
    }
    return {logp, lp};
  }

  /// P(next byte or end | y): every admitted base, each cover's mass, normalised.
  fusion::byte_distribution distribution(const std::string& y) const {
    const std::string S = pi + y;
    std::vector<std::pair<std::vector<std::int32_t>, std::size_t>> bases;
    std::function<void(std::vector<std::int32_t>&, std::size_t)> grow = [&](std::vector<std::int32_t>& t,
                                                                            std::size_t at) {
      bases.emplace_back(t, at);
      for (const auto& [id, b] : bytes) {
        if (S.compare(at, b.size(), b) != 0 || at + b.size() > S.size()) continue;
        t.push_back(id);
        if (admitted(t, at + b.size(), y)) grow(t, at + b.size());
        t.pop_back();
      }
    };
    std::vector<std::int32_t> start;
    grow(start, 0);
    const bool complete = utf8::valid(y);  // the end of the text can follow complete characters only
    const auto canonical = complete ? tok.encode(y) : std::vector<std::int32_t>{};
    std::vector<double> logw;
    std::vector<std::array<double, 257>> parts;
    for (const auto& [t, at] : bases) {
      const auto [logp, last] = run(t);
      std::array<double, 257> part{};
      const auto depth = S.size() - at;
      for (const auto& [id, b] : bytes)
        if (b.size() > depth && S.compare(at, depth, b, 0, depth) == 0)
          part[static_cast<unsigned char>(b[depth])] += std::exp(last[std::size_t(id)]);
      if (depth == 0 && complete && tok.eos() && t == canonical)
        part[fusion::end_of_text] += std::exp(last[std::size_t(*tok.eos())]);
      logw.push_back(logp);
      parts.push_back(part);
    }
    const double ref = *std::max_element(logw.begin(), logw.end());
    fusion::byte_distribution d{};
    for (std::size_t i = 0; i < parts.size(); ++i)
      for (std::size_t c = 0; c < 257; ++c) d[c] += std::exp(logw[i] - ref) * parts[i][c];
    double z = 0;
    for (const auto x : d) z += x;
    for (auto& x : d) x /= z;
    return d;
  }
};

}  // namespace

TEST_CASE("byte-level distributions equal an independent brute force over every admitted tokenization",
          "[fusion-ref][byte-ref]") {
  const auto d = test::data_dir();
  struct teacher {
    std::string name;
    std::unique_ptr<model> m;
    tokenizer tok;
  };
  std::vector<teacher> teachers;
  for (const auto* kind : {"gemma", "llama3"}) {  // byte fallback with ▁-words; byte-level BPE
    auto tok = tokenizer::load(d / "tokenizers" / kind);
    auto m = test::widened_llama(std::int64_t(tok.vocab_size()), 5);
    teachers.push_back({kind, std::move(m), std::move(tok)});
  }
  teachers.push_back({"models/llama", load_cpu_model(d / "models" / "llama", {.threads = 1}),
                      tokenizer::load(d / "models" / "llama")});
  // Short texts with multi-byte characters (bases may end inside one), a doubled newline (the
  // pre-tokenizer's look-ahead) and spaces (π and ▁).
  const std::vector<std::string> texts = {"h\xC3\xA9!", "\xC3\xA9\xE2\x82\xAC", "ab\n\nc", " x1"};
  std::size_t compared = 0;
  for (auto& t : teachers) {
    const brute ref(*t.m, t.tok);
    for (const auto& text : texts) {
      INFO(t.name << ": " << text);
      std::string spelled;
      for (const auto id : t.tok.encode(text)) {
        const auto b = t.tok.token_bytes(id);
        spelled += b ? *b : std::string("\x01");
      }
      if (spelled != ref.pi + text) continue;  // a fixture vocabulary that cannot spell this text
      fusion::byte_level_teacher b(*t.m, t.tok);
      for (std::size_t i = 0; i <= text.size(); ++i) {
        const auto y = text.substr(0, i);
        INFO("after " << i << " bytes");
        const auto want = ref.distribution(y);
        const auto& got = b.distribution();
        for (std::size_t c = 0; c < 257; ++c) {
          INFO("outcome " << c << ": " << got[c] << " vs " << want[c]);
          REQUIRE(std::abs(got[c] - want[c]) <= 1e-9 * std::max(want[c], 1e-300));
        }
        ++compared;
        if (i < text.size()) b.push(static_cast<unsigned char>(text[i]));
      }
    }
  }
  CHECK(compared >= 12);
}

// The values `nexus score` must print for tests/data/fusion/score.txt under models/llama (tests/CMakeLists.txt's
// cli_score_bytes_values pins them): here they come from the brute force above, one prefix at a time, and from
// one forward over the canonical tokens; the library's score_bytes must agree.
TEST_CASE("byte-level and canonical bits per byte of the CLI's score fixture, by brute force",
          "[fusion-ref][byte-ref]") {
  const auto d = test::data_dir();
  const auto m = load_cpu_model(d / "models" / "llama", {.threads = 1});
  const auto tok = tokenizer::load(d / "models" / "llama");
  std::ifstream in(d / "fusion" / "score.txt", std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(text == "Hi there, 42 cats.\n");
  const brute ref(*m, tok);
  double ll = 0;
  for (std::size_t i = 0; i < text.size(); ++i)
    ll += std::log(ref.distribution(text.substr(0, i))[std::uint8_t(text[i])]);
  const double ll_text = ll;  // without the end of text (what a bundle's score reports)
  ll += std::log(ref.distribution(text)[fusion::end_of_text]);
  auto ids = tok.encode(text);
  ids.push_back(*tok.eos());
  const double canonical = ref.run(ids).first;
  const double n = double(text.size()), ln2 = std::log(2.0);
  const double bpb = -ll / (n * ln2), canonical_bpb = -canonical / (n * ln2);
  INFO(std::setprecision(12) << "byte-level " << bpb << " canonical " << canonical_bpb);
  // (score_bytes runs many bases in one large forward: GEMM rounding, hence 1e-6.)
  CHECK(fusion::score_bytes(*m, tok, text, true).log_likelihood == Approx(ll).epsilon(1e-6));
  // Pinned in tests/CMakeLists.txt (cli_score_bytes_values) to 5 decimals.
  CHECK(bpb == Approx(6.105981).margin(5e-6));
  CHECK(canonical_bpb == Approx(7.278293).margin(5e-6));
  // cli_score_bundle_values: a bundle of this teacher alone, 4 decimals (the text report), without the end.
  CHECK(-ll_text / (n * ln2) == Approx(5.6408).margin(5e-5));
}
