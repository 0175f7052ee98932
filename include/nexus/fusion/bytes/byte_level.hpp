// A tokenised teacher seen one byte at a time: the probability of the next byte (or of the end of
// the text) given the bytes so far, marginalised over the tokenizations of those bytes — the
// Byte-Token Representation of Phan et al. (ICLR 2025) computed over a covering tree of valid
// tokenizations as in ByteSampler (Hayase et al. 2025). Written from the papers; docs/fusion.md,
// "Byte-level distributions", has the definition in full. In short:
//
// * The token stream of a text x spells π·x, where π is what the tokenizer puts before any text
//   (a `▁` for Llama-style vocabularies, nothing for GPT-2 and Gemma ones). A token's bytes are its
//   spelling through the decoders (tokenizer::token_bytes): byte-level characters mapped back,
//   `▁` as a space, `<0xNN>` as its byte. Special tokens spell nothing: the root context (bos) comes
//   before everything, eos is the end-of-text outcome, any other special token is excluded.
// * A base is a token sequence (after the root) whose bytes are a prefix of π·x. Every prefix of a
//   base must be valid when the text decides it: a prefix ending at text offset e is decided once
//   the character containing byte e is complete (at f), and is valid if it is the tokenizer's own
//   encoding of x[0, e), or a prefix of the encoding of x[0, f) (pre-tokenizers look one character
//   ahead: "a\n\nb" reads "\n" "\n" where "a\n\n" reads "\n\n"). The canonical tokenization of a
//   text is valid under this rule wherever BPE is stable under removing its last token and the
//   pre-tokenizer looks at most one character ahead; both hold for every tokenizer kind supported.
// * A cover of a byte prefix y is a base b ending before the end of y and one ordinary token v
//   whose bytes continue b to at least the end of y. P(y) = Σ over covers of P(b) P(v | b), and
//   P(c | y) = P(y·c) / Z with Z = Σ_c P(y·c) + P(end): normalised over the 256 bytes and the end of
//   text exactly. P(end | y) comes from the one base equal to encode(y): P(encode(y)) P(eos | ...).
// * Since a cover of y·c is a cover of y or extends one ending exactly at |y|, Z ≤ P(y), and the
//   byte-level log-likelihood of a text is at least log P(y_n) ≥ the canonical tokenization's (one
//   of the covers), with or without the end of text.
//
// Cost: each byte narrows, for every live base, the range of tokens that start with the bytes read
// since the base (tokens are sorted by bytes once: the tokens with a given prefix are one range), so
// a step costs O(Σ over live bases of their range) and one token's forward per new base. Live bases
// are the prefix cover: at most the valid tokenizations of the last L bytes (L = the longest token)
// that a token can still continue — in practice a handful — never the vocabulary. A new base also
// costs O(V) once (its log-normaliser and first-byte masses) and 2 encodes of the prefix.
// How the forwards run: the bases born at one byte share the keys and values of their common
// prefixes in one KV cache (a token tree: each base's last token attends to its own ancestors'
// slots, forward_options::tree) and run in one forward; slots no base needs are dropped when the
// cache fills. Which bases a text creates depends on the text alone, not on the model, so when the
// next bytes are known (score_bytes; look_ahead) the bases of many bytes run together in one large
// tree, at prefill speed (GEMMs, with its rounding); a small tree runs each token exactly as alone.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nexus/core/error.hpp"
#include "nexus/model/model.hpp"
#include "nexus/tokenizer/tokenizer.hpp"

namespace nexus::fusion {

/// The outcomes of a next-byte distribution: bytes 0..255, then the end of the text.
inline constexpr std::size_t end_of_text = 256;
using byte_distribution = std::array<double, 257>;

/// The tokens every text starts from: the tokenizer's own prefix, else bos, else eos (GPT-2's
/// convention: <|endoftext|> starts a document).
inline std::vector<std::int32_t> root_context(const tokenizer& tok, std::int64_t model_vocab) {
  auto root = tok.prefix_ids();
  if (root.empty() && tok.bos()) root = {*tok.bos()};
  if (root.empty() && tok.eos()) root = {*tok.eos()};
  if (root.empty()) throw unsupported_error("byte_level", "the tokenizer has no bos or eos to start a text with");
  for (const auto id : root)
    if (id < 0 || id >= model_vocab)
      throw usage_error("byte_level", "root token " + std::to_string(id) + " outside the model");
  return root;
}

/// The ordinary tokens of a tokenizer (those a model of `model_vocab` ids can emit) by their bytes,
/// sorted, plus what a byte-level view needs around them: π, the root context, the end token.
class byte_vocabulary {
 public:
  byte_vocabulary(const tokenizer& tok, std::int64_t model_vocab, std::optional<std::int32_t> end_token = {}) {
    const auto n = std::min<std::int64_t>(std::int64_t(tok.vocab_size()), model_vocab);
    bytes_.resize(std::size_t(n));
    for (std::int32_t id = 0; id < std::int32_t(n); ++id) {
      if (tok.is_special(id) || (tok.unk() && *tok.unk() == id)) continue;
      auto b = tok.token_bytes(id);
      if (!b || b->empty()) continue;
      bytes_[std::size_t(id)] = std::move(*b);
      sorted_.push_back(id);
      max_bytes_ = std::max(max_bytes_, bytes_[std::size_t(id)].size());
    }
    std::stable_sort(sorted_.begin(), sorted_.end(), [&](auto a, auto b) { return bytes_[a] < bytes_[b]; });
    for (std::size_t c = 0, k = 0; c <= 256; ++c) {
      while (k < sorted_.size() && static_cast<unsigned char>(bytes_[std::size_t(sorted_[k])][0]) < c) ++k;
      first_start_[c] = c == 256 ? sorted_.size() : k;
    }
    if (sorted_.empty()) throw usage_error("byte_level", "the tokenizer has no ordinary token with bytes");
    // π: what the token stream spells before the text ("a" is encoded as π·"a").
    std::string a;
    for (const auto id : tok.encode("a")) a += token_bytes_or_throw(tok, id, "a");
    if (a.empty() || a.back() != 'a')
      throw unsupported_error("byte_level", "the tokenizer does not spell \"a\" as its own byte");
    prefix_ = a.substr(0, a.size() - 1);
    root_ = root_context(tok, model_vocab);
    end_ = end_token ? end_token : tok.eos();
    if (end_ && (*end_ < 0 || *end_ >= model_vocab))
      throw usage_error("byte_level", "end token " + std::to_string(*end_) + " outside the model");
  }

  /// Bytes of an ordinary token (empty for others).
  const std::string& bytes(std::int32_t id) const { return bytes_[std::size_t(id)]; }
  /// Ordinary token ids sorted by their bytes.
  const std::vector<std::int32_t>& sorted() const noexcept { return sorted_; }
  std::size_t max_bytes() const noexcept { return max_bytes_; }
  /// Where the tokens starting with byte c begin in sorted() (c = 256: its end).
  std::size_t first_byte_start(std::size_t c) const { return first_start_.at(c); }
  const std::string& prefix() const noexcept { return prefix_; }
  const std::vector<std::int32_t>& root() const noexcept { return root_; }
  std::optional<std::int32_t> end_token() const noexcept { return end_; }

  /// The sub-range of sorted()[lo, hi) — tokens sharing their first `depth` bytes — whose byte at
  /// `depth` is `c`.
  std::pair<std::size_t, std::size_t> narrow(std::size_t lo, std::size_t hi, std::size_t depth, unsigned char c) const {
    auto key = [&](std::size_t k) -> int {
      const auto& b = bytes_[std::size_t(sorted_[k])];
      return b.size() > depth ? int(static_cast<unsigned char>(b[depth])) : -1;
    };
    std::size_t a = lo, z = hi;
    while (a < z) {  // first with key >= c
      const auto m = (a + z) / 2;
      if (key(m) < int(c)) a = m + 1;
      else z = m;
    }
    std::size_t b = a;
    z = hi;
    while (b < z) {  // first with key > c
      const auto m = (b + z) / 2;
      if (key(m) <= int(c)) b = m + 1;
      else z = m;
    }
    return {a, b};
  }

  /// The bytes the token stream of `ids` spells; throws if one of them is not an ordinary token.
  std::string spell(std::span<const std::int32_t> ids, std::string_view text) const {
    std::string s;
    for (const auto id : ids) {
      if (id < 0 || std::size_t(id) >= bytes_.size() || bytes_[std::size_t(id)].empty())
        throw usage_error("byte_level", "the text's tokenization contains token " + std::to_string(id) +
                                            ", which spells no bytes (a special or unknown token) — text: " +
                                            std::string(text.substr(0, 40)));
      s += bytes_[std::size_t(id)];
    }
    return s;
  }

 private:
  static std::string token_bytes_or_throw(const tokenizer& tok, std::int32_t id, const char* what) {
    auto b = tok.token_bytes(id);
    if (!b) throw unsupported_error("byte_level", std::string("no bytes for the token of \"") + what + "\"");
    return *b;
  }

  std::vector<std::string> bytes_;
  std::vector<std::int32_t> sorted_;
  std::array<std::size_t, 257> first_start_{};
  std::size_t max_bytes_ = 0;
  std::string prefix_;
  std::vector<std::int32_t> root_;
  std::optional<std::int32_t> end_;
};

/// Whether `s` is the start of some valid UTF-8 text (complete characters, then at most one
/// incomplete one that can still be completed).
inline bool utf8_valid_prefix(std::string_view s) {
  const auto tail = utf8::incomplete_tail(s);
  if (!tail) return utf8::valid(s);
  const auto lead = static_cast<unsigned char>(s[s.size() - tail]);
  const auto need = utf8::sequence_length(lead);
  for (const unsigned char pad : {0x80, 0x90, 0xa0}) {  // the second-byte ranges of Unicode Table 3-7
    std::string t(s.substr(s.size() - tail));
    t.append(need - tail, char(pad));
    if (utf8::valid(t)) return utf8::valid(s.substr(0, s.size() - tail));
  }
  return false;
}

/// The validity rule of a base prefix (the comment at the top): `toks` (after the root) ends at
/// offset `e` of `text` (inside π when `in_prefix`), decided with text[0, f). `encode(k)` gives the
/// tokenizer's ids of text[0, k).
template <class Encode>
bool valid_base_prefix(std::span<const std::int32_t> toks, std::string_view text, std::size_t e, bool in_prefix,
                       std::size_t f, Encode&& encode) {
  const std::vector<std::int32_t>& ahead = encode(f);
  if (ahead.size() >= toks.size() && std::equal(toks.begin(), toks.end(), ahead.begin())) return true;
  const bool boundary = !in_prefix && e > 0 && e <= text.size() &&
                        (e == text.size() || (static_cast<unsigned char>(text[e]) & 0xc0) != 0x80);
  if (!boundary) return false;
  const std::vector<std::int32_t>& here = encode(e);
  return here.size() == toks.size() && std::equal(toks.begin(), toks.end(), here.begin());
}

/// The offset at which the validity of a base ending at text offset `e` is decided: the end of the
/// character that contains byte `e`; nullopt while that is not known from `text`.
inline std::optional<std::size_t> decision_offset(std::string_view text, std::size_t e) {
  if (e >= text.size()) return std::nullopt;
  std::size_t s = e;
  while (s > 0 && (static_cast<unsigned char>(text[s]) & 0xc0) == 0x80) --s;
  const auto f = s + utf8::sequence_length(static_cast<unsigned char>(text[s]));
  if (f > text.size()) return std::nullopt;
  return f;
}

struct byte_level_options {
  std::int64_t chunk_rows = 0;                 // new bases per forward (0: all those of a byte at once; 1: one by one)
  std::int64_t capacity = 4096;                // initial KV cache slots (grows when needed)
  std::size_t lookahead = 32;                  // score_bytes: bytes whose new bases run ahead in one forward
  std::size_t lookahead_logits = 256u << 20;   // look_ahead stops at a byte once its logits take this many bytes
  std::optional<std::int32_t> end_token = {};  // the token of the end-of-text outcome (default: eos)
};

/// Counters of a byte-level run (what the cost depends on).
struct byte_level_stats {
  std::size_t bytes = 0;           // text bytes pushed
  std::size_t bases_created = 0;   // bases evaluated (one forward of their last token each)
  std::size_t forward_tokens = 0;  // tokens run through the model (the root's, then one per base)
  std::size_t forwards = 0;        // forward passes (the bases born at one byte run as one token tree)
  std::size_t max_live = 0;        // the largest prefix cover (live bases) seen
  std::size_t live_sum = 0;        // Σ live bases over the positions (mean = live_sum / (bytes + 1))
  std::size_t range_sum = 0;       // Σ over positions of the token ranges scanned
};

/// The byte-level view of one teacher: push bytes, read the distribution of the next one.
class byte_level_teacher {
 public:
  byte_level_teacher(const model& m, const tokenizer& tok, byte_level_options opt = {})
      : model_(m),
        tok_(tok),
        opt_(opt),
        vocab_(tok, m.arch().dims.vocab_size, opt.end_token),
        cache_(m.new_cache(std::max<std::int64_t>(opt.capacity, 8))) {
    reset();
  }

  const byte_vocabulary& vocabulary() const noexcept { return vocab_; }
  const byte_level_stats& stats() const noexcept { return stats_; }
  std::string_view text() const noexcept { return text_; }

  /// Back to the empty text (the KV cache keeps the root, reused).
  void reset() {
    text_.clear();
    stream_.clear();
    encodings_.clear();
    live_.clear();
    ahead_.clear();
    ahead_text_.clear();
    stats_ = {};
    if (!root_) {  // the root context runs once, as one sequence at slots 0..
      base root;
      root.tokens = vocab_.root();
      cache_.clear();
      auto r = model_.forward(root.tokens, cache_, {.all_logits = false});
      root.slots.resize(root.tokens.size());
      std::iota(root.slots.begin(), root.slots.end(), 0);
      finish(root, r.logits.data.data());
      root_ = std::move(root);
    }
    std::vector<std::int64_t> keep(root_->slots);
    cache_.keep_slots(keep);
    stats_.forward_tokens = root_->tokens.size();
    stats_.forwards = 1;
    live_.push_back(*root_);
    for (const char c : vocab_.prefix()) advance(static_cast<unsigned char>(c));
    compute();
  }

  /// P(next byte | text so far): entries 0..255 and end_of_text, summing to 1.
  const byte_distribution& distribution() const noexcept { return dist_; }

  /// Appends byte `c` to the text. The text must stay the start of valid UTF-8 and `c` must have a
  /// non-zero probability.
  void push(unsigned char c) {
    text_ += char(c);
    if (!utf8_valid_prefix(text_)) {
      text_.pop_back();
      throw usage_error("byte_level",
                        "byte " + std::to_string(text_.size()) + " (0x" + hex(c) + ") makes the text invalid UTF-8");
    }
    if (!(mass_[c] > 0)) {
      text_.pop_back();
      throw usage_error("byte_level", "byte " + std::to_string(text_.size()) + " (0x" + hex(c) +
                                          ") has probability zero under this teacher");
    }
    if (!ahead_text_.empty() && static_cast<unsigned char>(ahead_text_[0]) == c) {
      ahead_text_.erase(0, 1);
    } else {  // not the byte looked ahead at: what ran for that guess is dropped
      ahead_.clear();
      ahead_text_.clear();
    }
    advance(c);
    decide(live_);
    if (live_.empty())
      throw usage_error("byte_level",
                        "no valid tokenization covers the text up to byte " + std::to_string(text_.size()));
    compute();
  }

  /// log P(c | text so far) for the outcomes of distribution().
  double log_prob(std::size_t outcome) const { return std::log(dist_.at(outcome)); }

  /// The bytes look_ahead ran the bases of that are not pushed yet.
  std::string_view looked_ahead() const noexcept { return ahead_text_; }

  /// Bytes that will (probably) be pushed next: the bases they create are found from the text alone
  /// and run now, all in one forward, so that the pushes find them ready. A wrong guess costs time,
  /// never a result. Replaces the previous guess.
  void look_ahead(std::string_view upcoming) {
    ahead_.clear();
    ahead_text_.clear();
    std::vector<base> sim;  // the live bases without their logits; origin: their index
    for (std::size_t i = 0; i < live_.size(); ++i) {
      base b;
      b.tokens = live_[i].tokens;
      b.slots = live_[i].slots;
      b.end = live_[i].end;
      b.lo = live_[i].lo;
      b.hi = live_[i].hi;
      b.pending = live_[i].pending;
      b.origin = i;
      sim.push_back(std::move(b));
    }
    const auto size = text_.size();
    std::string stream = stream_;
    std::vector<base> rows;  // every base born, in order: parents before children
    try {
      for (const char c : upcoming) {
        text_ += c;
        if (!utf8_valid_prefix(text_)) break;
        std::vector<base> born;
        extend(sim, stream, static_cast<unsigned char>(c), born, false);
        stream += c;
        for (auto& b : born) {
          b.origin = live_.size() + rows.size();
          rows.push_back(b);
          sim.push_back(std::move(b));
        }
        decide(sim);
        if (sim.empty()) break;
        ahead_text_ += c;
        if (rows.size() * std::size_t(model_.arch().dims.vocab_size) * sizeof(float) >= opt_.lookahead_logits) break;
      }
    } catch (const usage_error&) {  // a text the tokenizer cannot spell: push() will say so
    }
    text_.resize(size);
    encodings_.erase(encodings_.upper_bound(size), encodings_.end());
    if (rows.empty()) return;
    make_room(std::int64_t(rows.size()));
    std::vector<std::int32_t> ids;
    for (auto& b : rows) {  // the slots: the parent's, then its own
      b.slots = b.parent < live_.size() ? live_[b.parent].slots : rows[b.parent - live_.size()].slots;
      b.slots.push_back(cache_.size() + std::int64_t(ids.size()));
      ids.push_back(b.tokens.back());
    }
    std::vector<std::span<const std::int64_t>> tree;
    for (const auto& b : rows) tree.emplace_back(b.slots.data(), b.slots.size() - 1);
    auto r = model_.forward(ids, cache_, {.all_logits = true, .tree = tree});
    const auto logits = std::make_shared<const std::vector<float>>(std::move(r.logits.data));
    for (std::size_t j = 0; j < rows.size(); ++j) ahead_[rows[j].tokens] = {std::move(rows[j].slots), logits, j};
    stats_.forward_tokens += rows.size();
    ++stats_.forwards;
  }

 private:
  struct check {              // a prefix of the base (its first `tokens` tokens after the root) still to be decided
    std::size_t tokens, end;  // end: offset in the token stream π·x
  };
  struct base {
    std::vector<std::int32_t> tokens;  // root included
    std::vector<std::int64_t> slots;   // the cache slot of each token's keys and values
    double logp = 0;                   // log P(tokens after the root | root)
    std::size_t end = 0;               // where its bytes end in π·x
    std::size_t lo = 0, hi = 0;        // sorted tokens continuing the bytes read since `end`
    std::vector<float> logits;
    double log_z = 0;
    std::vector<check> pending;
    std::array<double, 256> first{};     // mass of the tokens starting with each byte (at depth 0)
    std::size_t origin = 0, parent = 0;  // look_ahead's bookkeeping: its index and its parent's
  };
  struct ready {  // a base run by look_ahead before its byte arrived
    std::vector<std::int64_t> slots;
    std::shared_ptr<const std::vector<float>> logits;  // of the whole look-ahead, [rows, vocab]
    std::size_t row = 0;
  };

  static std::string hex(unsigned char c) {
    const char* d = "0123456789ABCDEF";
    return {d[c >> 4], d[c & 15]};
  }

  /// The base's log-normaliser and first-byte masses from the logits after its last token.
  void finish(base& b, const float* logits) {
    const auto V = std::size_t(model_.arch().dims.vocab_size);
    b.logits.assign(logits, logits + V);
    const float top = *std::max_element(b.logits.begin(), b.logits.end());
    thread_local std::vector<double> e;  // exp(logit - top), each computed once
    e.resize(V);
    double sum = 0;
    for (std::size_t i = 0; i < V; ++i) sum += e[i] = std::exp(double(logits[i]) - double(top));
    b.log_z = double(top) + std::log(sum);
    b.lo = 0;
    b.hi = vocab_.sorted().size();
    const auto& sorted = vocab_.sorted();
    for (std::size_t c = 0; c < 256; ++c) {  // the tokens starting with byte c are one range of sorted()
      double m = 0;
      for (auto k = vocab_.first_byte_start(c); k < vocab_.first_byte_start(c + 1); ++k) m += e[std::size_t(sorted[k])];
      b.first[c] = m / sum;
    }
  }

  /// Runs the last token of each new base (its parent's tokens are cached, at the slots it lists) as
  /// one token tree: all of them in one forward, each attending to its own ancestors only. Those that
  /// look_ahead has run take its results.
  void evaluate(std::vector<base>& born) {
    std::vector<base*> todo;
    for (auto& b : born) {
      if (const auto it = ahead_.find(b.tokens); it != ahead_.end()) {
        b.slots = std::move(it->second.slots);
        finish(b, it->second.logits->data() + it->second.row * std::size_t(model_.arch().dims.vocab_size));
        ahead_.erase(it);
      } else {
        todo.push_back(&b);
      }
    }
    stats_.bases_created += born.size();
    const auto n = todo.size();
    if (n == 0) return;
    make_room(std::int64_t(n), born);
    const std::size_t step = opt_.chunk_rows > 0 ? std::size_t(opt_.chunk_rows) : n;
    std::vector<std::int32_t> ids;
    std::vector<std::span<const std::int64_t>> tree;
    for (std::size_t at = 0; at < n; at += step) {
      const auto count = std::min(step, n - at);
      ids.clear();
      tree.clear();
      for (std::size_t j = at; j < at + count; ++j) {
        ids.push_back(todo[j]->tokens.back());
        tree.emplace_back(todo[j]->slots);
      }
      const std::int64_t first = cache_.size();
      const auto r = model_.forward(ids, cache_, {.all_logits = true, .tree = tree});
      const auto V = std::size_t(r.logits.shape.at(1));
      for (std::size_t j = 0; j < count; ++j) {
        todo[at + j]->slots.push_back(first + std::int64_t(j));
        finish(*todo[at + j], r.logits.data.data() + j * V);
      }
      stats_.forward_tokens += count;
      ++stats_.forwards;
    }
  }

  /// Room in the cache for `rows` more slots: drops the slots no base attends to any more (moving the
  /// rest to the front, in order), and grows the cache if it would still be more than half full.
  template <class... Groups>
  void make_room(std::int64_t rows, Groups&... groups) {
    if (cache_.size() + rows <= cache_.capacity()) return;
    std::vector<std::int64_t> to(static_cast<std::size_t>(cache_.size()), -1);
    const auto each_slots = [&](auto&& f) {  // the live bases, those being born, those run ahead
      for (auto* group : {&live_, &groups...})
        for (auto& b : *group) f(b.slots);
      for (auto& [tokens, r] : ahead_) f(r.slots);
    };
    each_slots([&](const std::vector<std::int64_t>& slots) {
      for (const auto s : slots) to[std::size_t(s)] = 0;
    });
    std::vector<std::int64_t> keep;
    for (std::size_t s = 0; s < to.size(); ++s)
      if (to[s] == 0) {
        to[s] = std::int64_t(keep.size());
        keep.push_back(std::int64_t(s));
      }
    cache_.keep_slots(keep);
    each_slots([&](std::vector<std::int64_t>& slots) {
      for (auto& s : slots) s = to[std::size_t(s)];
    });
    if (2 * (cache_.size() + rows) > cache_.capacity()) cache_.grow(2 * (cache_.size() + rows));
  }

  /// Extends every live base by byte `c` of the token stream; tokens ending exactly here make new bases.
  void advance(unsigned char c) {
    std::vector<base> born;
    extend(live_, stream_, c, born, true);
    stream_ += char(c);
    evaluate(born);
    for (auto& b : born) live_.push_back(std::move(b));
  }

  /// Extends the bases of `live` by byte `c` of the token stream (`stream` before it): those a token
  /// can still continue stay, tokens ending exactly here make new bases (`born`, not yet run; with
  /// `logits`, their log-probabilities from their parents').
  void extend(std::vector<base>& live, const std::string& stream, unsigned char c, std::vector<base>& born,
              bool logits) {
    std::vector<base> next;
    for (auto& b : live) {
      const auto depth = stream.size() - b.end;
      const auto [lo, hi] = vocab_.narrow(b.lo, b.hi, depth, c);
      std::size_t k = lo;
      for (; k < hi && vocab_.bytes(vocab_.sorted()[k]).size() == depth + 1; ++k) {
        const auto id = vocab_.sorted()[k];
        base child;
        child.tokens = b.tokens;
        child.tokens.push_back(id);
        child.slots = b.slots;  // its own is added when it runs
        if (logits) child.logp = b.logp + double(b.logits[std::size_t(id)]) - b.log_z;
        child.end = stream.size() + 1;
        child.lo = 0;
        child.hi = vocab_.sorted().size();
        child.pending = b.pending;
        child.pending.push_back({child.tokens.size() - vocab_.root().size(), stream.size() + 1});
        child.parent = b.origin;
        born.push_back(std::move(child));
      }
      if (k < hi) {
        b.lo = k;
        b.hi = hi;
        next.push_back(std::move(b));
      }
    }
    std::sort(born.begin(), born.end(), [](const base& a, const base& b) { return a.tokens < b.tokens; });
    live = std::move(next);
  }

  /// The tokenizer's ids of text[0, k), cached by k (each prefix is encoded at most once).
  const std::vector<std::int32_t>& encoding(std::size_t k) {
    auto it = encodings_.find(k);
    if (it == encodings_.end()) {
      const std::string_view prefix = std::string_view(text_).substr(0, k);
      auto ids = tok_.encode(prefix);
      if (vocab_.spell(ids, prefix) != vocab_.prefix() + std::string(prefix) && k > 0)
        throw usage_error("byte_level", "the tokenizer does not spell the text byte for byte up to byte " +
                                            std::to_string(k) + " (a normalizer or an unknown character)");
      it = encodings_.emplace(k, std::move(ids)).first;
      while (encodings_.size() > 64) encodings_.erase(encodings_.begin());
    }
    return it->second;
  }

  /// Applies every validity check that the text now decides; drops the bases that fail one.
  void decide(std::vector<base>& live) {
    const auto pi = vocab_.prefix().size();
    const auto root = vocab_.root().size();
    std::vector<base> keep;
    for (auto& b : live) {
      bool ok = true;
      std::vector<check> still;
      for (const auto& ch : b.pending) {
        const bool in_prefix = ch.end < pi;
        const std::size_t e = in_prefix ? 0 : ch.end - pi;
        const auto f = decision_offset(text_, e);
        if (!f) {
          still.push_back(ch);
          continue;
        }
        const std::span<const std::int32_t> toks(b.tokens.data() + root, ch.tokens);
        if (!valid_base_prefix(
                toks, text_, e, in_prefix, *f, [&](std::size_t k) -> const auto& { return encoding(k); })) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      b.pending = std::move(still);
      keep.push_back(std::move(b));
    }
    live = std::move(keep);
  }

  /// The distribution of the next byte from the live bases.
  void compute() {
    double ref = -std::numeric_limits<double>::infinity();
    for (const auto& b : live_) ref = std::max(ref, b.logp);
    mass_.fill(0);
    const auto root = vocab_.root().size();
    const bool at_end_ok = stream_.size() >= vocab_.prefix().size() && utf8::valid(text_) && vocab_.end_token();
    for (const auto& b : live_) {
      const double w = std::exp(b.logp - ref);
      const auto depth = stream_.size() - b.end;
      if (depth == 0) {
        for (std::size_t c = 0; c < 256; ++c) mass_[c] += w * b.first[c];
        stats_.range_sum += 1;
        if (at_end_ok) {
          const auto& enc = encoding(text_.size());
          if (enc.size() + root == b.tokens.size() && std::equal(enc.begin(), enc.end(), b.tokens.begin() + long(root)))
            mass_[end_of_text] += w * std::exp(double(b.logits[std::size_t(*vocab_.end_token())]) - b.log_z);
        }
        continue;
      }
      stats_.range_sum += b.hi - b.lo;
      for (std::size_t k = b.lo; k < b.hi; ++k) {
        const auto id = vocab_.sorted()[k];
        mass_[static_cast<unsigned char>(vocab_.bytes(id)[depth])] +=
            w * std::exp(double(b.logits[std::size_t(id)]) - b.log_z);
      }
    }
    double z = 0;
    for (const auto m : mass_) z += m;
    if (!(z > 0))
      throw usage_error("byte_level",
                        "no outcome has a non-zero probability after byte " + std::to_string(text_.size()));
    for (std::size_t c = 0; c < dist_.size(); ++c) dist_[c] = mass_[c] / z;
    stats_.max_live = std::max(stats_.max_live, live_.size());
    stats_.live_sum += live_.size();
    stats_.bytes = text_.size();
  }

  const model& model_;
  const tokenizer& tok_;
  byte_level_options opt_;
  byte_vocabulary vocab_;
  kv_cache cache_;            // the keys and values of the live bases' tokens, shared prefixes once
  std::optional<base> root_;  // the evaluated root context (slots 0..), kept for reset()
  std::map<std::vector<std::int32_t>, ready> ahead_;  // bases look_ahead has run, by their tokens
  std::string ahead_text_;                            // the bytes they were run for, not yet pushed
  std::string text_, stream_;                         // x, and π·x
  std::map<std::size_t, std::vector<std::int32_t>> encodings_;
  std::vector<base> live_;
  byte_distribution mass_{}, dist_{};
  byte_level_stats stats_;
};

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
