// A known text scored by one teacher: its canonical tokenization's log-likelihood, the byte-level
// log-likelihood (byte_level.hpp), and the byte-level distribution at every position. The text is
// known ahead, so the bases of the next bytes run together (byte_level_teacher::look_ahead).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nexus/core/error.hpp"
#include "nexus/fusion/bytes/byte_level.hpp"

namespace nexus::fusion {

/// Log-likelihood of `text` under the teacher's canonical tokenization: Σ log P(token) over
/// encode(text) after the root context (and the end token with `with_end`).
inline double canonical_log_likelihood(const model& m, const tokenizer& tok, std::string_view text, bool with_end,
                                       std::size_t* tokens = nullptr, std::int64_t chunk_rows = 0) {
  const byte_vocabulary v(tok, m.arch().dims.vocab_size);
  std::vector<std::int32_t> ids = v.root();
  const auto enc = tok.encode(text);
  ids.insert(ids.end(), enc.begin(), enc.end());
  if (with_end) {
    if (!v.end_token()) throw usage_error("score", "the tokenizer has no end token");
    ids.push_back(*v.end_token());
  }
  if (tokens) *tokens = ids.size() - v.root().size();
  auto cache = m.new_cache(std::int64_t(ids.size()));
  double ll = 0;
  constexpr std::size_t step = 64;  // positions per forward: [step, vocab] logits at a time
  for (std::size_t at = 0; at + 1 < ids.size(); at += step) {
    const auto n = std::min(step, ids.size() - 1 - at);
    const auto r = m.forward(std::span(ids.data() + at, n), cache, {.chunk_rows = chunk_rows});
    const auto V = r.logits.shape.at(1);
    for (std::size_t p = at; p < at + n; ++p) {
      if (p + 1 < v.root().size()) continue;  // inside the root context
      const float* row = r.logits.data.data() + std::int64_t(p - at) * V;
      const float top = *std::max_element(row, row + V);
      double sum = 0;
      for (std::int64_t i = 0; i < V; ++i) sum += std::exp(double(row[i]) - double(top));
      ll += double(row[ids[p + 1]]) - (double(top) + std::log(sum));
    }
  }
  return ll;
}

/// Row i: P(next outcome | text[0, i)), for i = 0 .. text.size() (the last row follows the whole text);
/// `stats`, when given, receives the byte-level view's counts.
inline std::vector<byte_distribution> byte_distributions(const model& m, const tokenizer& tok, std::string_view text,
                                                         byte_level_stats* stats = nullptr) {
  if (!utf8::valid(text)) throw usage_error("score", "text is not valid UTF-8");
  byte_level_options opt;
  opt.capacity = std::max<std::int64_t>(opt.capacity, std::int64_t(text.size()) + 16);
  byte_level_teacher t(m, tok, opt);
  std::vector<byte_distribution> rows;
  rows.reserve(text.size() + 1);
  rows.push_back(t.distribution());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (opt.lookahead > 0 && t.looked_ahead().empty()) t.look_ahead(text.substr(i, opt.lookahead));
    t.push(static_cast<unsigned char>(text[i]));
    rows.push_back(t.distribution());
  }
  if (stats) *stats = t.stats();
  return rows;
}

struct byte_score {
  double log_likelihood = 0;  // Σ log P(byte | bytes before) (+ log P(end) with the end)
  std::size_t bytes = 0;
  double seconds = 0;
  byte_level_stats stats;
};

/// Byte-level log-likelihood of `text` (valid UTF-8, not empty), optionally with the end of text.
inline byte_score score_bytes(const model& m, const tokenizer& tok, std::string_view text, bool with_end,
                              byte_level_options opt = {}) {
  if (text.empty()) throw usage_error("score", "empty text");
  if (!utf8::valid(text)) throw usage_error("score", "text is not valid UTF-8");
  if (with_end && !byte_vocabulary(tok, m.arch().dims.vocab_size, opt.end_token).end_token())
    throw usage_error("score", "the tokenizer has no end token for the end of text");
  const auto t0 = std::chrono::steady_clock::now();
  opt.capacity = std::max<std::int64_t>(opt.capacity, std::int64_t(text.size()) + 16);
  byte_level_teacher t(m, tok, opt);
  {  // the whole text must be spelt byte for byte by its own tokenization
    const auto& v = t.vocabulary();
    if (v.spell(tok.encode(text), text) != v.prefix() + std::string(text))
      throw usage_error("score",
                        "the tokenizer does not spell the text byte for byte (a normalizer or an unknown character)");
  }
  byte_score s;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (opt.lookahead > 0 && t.looked_ahead().empty()) t.look_ahead(text.substr(i, opt.lookahead));
    const auto c = static_cast<unsigned char>(text[i]);
    s.log_likelihood += t.log_prob(c);
    t.push(c);
  }
  if (with_end) s.log_likelihood += t.log_prob(end_of_text);
  s.bytes = text.size();
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  s.stats = t.stats();
  return s;
}

}  // namespace nexus::fusion
