// A tokenised teacher seen one byte at a time: the probability of the next byte (or of the end of
// the text) given the bytes so far, marginalised over the tokenizations of those bytes — the
// Byte-Token Representation of Phan et al. (ICLR 2025) computed over a covering tree of valid
// tokenizations as in ByteSampler (Hayase et al. 2025). The definitions (bases, validity, covers)
// are at the top of vocabulary.hpp; docs/fusion.md, "Byte-level distributions", has them in full.
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
#include "nexus/fusion/bytes/vocabulary.hpp"
#include "nexus/model/model.hpp"

namespace nexus::fusion {

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
                        "byte " + std::to_string(text_.size()) + " (" + hex_byte(c) + ") makes the text invalid UTF-8");
    }
    if (!(mass_[c] > 0)) {
      text_.pop_back();
      throw usage_error("byte_level", "byte " + std::to_string(text_.size()) + " (" + hex_byte(c) +
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
    std::vector<base> sim = sketch_live();
    const auto size = text_.size();
    std::string stream = stream_;
    std::vector<base> rows;   // every base born, in order: parents before children
    std::vector<char> alive;  // rows that survive the checks of the byte they are born at (push runs only those)
    const auto L = live_.size();
    try {
      for (const char c : upcoming) {
        text_ += c;
        if (!utf8_valid_prefix(text_)) break;
        sketch_byte(sim, stream, static_cast<unsigned char>(c), rows);
        alive.resize(rows.size(), 0);
        for (const auto& b : sim)
          if (b.origin >= L) alive[b.origin - L] = 1;
        if (sim.empty()) break;
        ahead_text_ += c;
        if (rows.size() * std::size_t(model_.arch().dims.vocab_size) * sizeof(float) >= opt_.lookahead_logits) break;
      }
    } catch (const usage_error&) {  // a text the tokenizer cannot spell: push() will say so
    }
    text_.resize(size);
    encodings_.erase(encodings_.upper_bound(size), encodings_.end());
    alive.resize(rows.size(), 0);
    const auto count = std::size_t(std::count(alive.begin(), alive.end(), 1));
    if (count == 0) return;
    make_room(std::int64_t(count));
    std::vector<std::int32_t> ids;
    for (std::size_t j = 0; j < rows.size(); ++j) {  // the slots: the parent's (alive too), then its own
      if (!alive[j]) continue;
      auto& b = rows[j];
      b.slots = b.parent < L ? live_[b.parent].slots : rows[b.parent - L].slots;
      b.slots.push_back(cache_.size() + std::int64_t(ids.size()));
      ids.push_back(b.tokens.back());
    }
    std::vector<std::span<const std::int64_t>> tree;
    for (std::size_t j = 0; j < rows.size(); ++j)
      if (alive[j]) tree.emplace_back(rows[j].slots.data(), rows[j].slots.size() - 1);
    auto r = model_.forward(ids, cache_, {.all_logits = true, .tree = tree});
    const auto logits = std::make_shared<const std::vector<float>>(std::move(r.logits.data));
    for (std::size_t j = 0, row = 0; j < rows.size(); ++j)
      if (alive[j]) ahead_[rows[j].tokens] = {std::move(rows[j].slots), logits, row++};
    stats_.forward_tokens += count;
    ++stats_.forwards;
  }

  /// Appends `bytes` without the distributions between them: only the bases the distribution after
  /// the last byte needs — those live then, and their ancestors (mostly the canonical tokens of the
  /// bytes) — are run, as token trees of up to `chunk` rows a forward. A cascade's later teachers
  /// catch up this way over the bytes the earlier ones decided alone. The result equals pushing the
  /// bytes one by one (up to GEMM rounding); a byte this teacher cannot follow is an error, as there.
  void skip(std::string_view bytes, std::size_t chunk = 64) {
    if (bytes.empty()) return;
    ahead_.clear();
    ahead_text_.clear();
    std::vector<base> sim = sketch_live();
    std::vector<base> rows;  // every base born, in order (parents first); origin: live_.size() + index
    const auto text_size = text_.size(), stream_size = stream_.size();
    try {
      for (const char c : bytes) {
        text_ += c;
        if (!utf8_valid_prefix(text_))
          throw usage_error("byte_level", "byte " + std::to_string(text_.size()) + " (" +
                                              hex_byte(static_cast<unsigned char>(c)) +
                                              ") makes the text invalid UTF-8");
        sketch_byte(sim, stream_, static_cast<unsigned char>(c), rows);
        if (sim.empty())
          throw usage_error("byte_level",
                            "no valid tokenization covers the text up to byte " + std::to_string(text_.size()));
      }
    } catch (...) {  // nothing ran yet: the teacher stays where it was
      text_.resize(text_size);
      stream_.resize(stream_size);
      encodings_.erase(encodings_.upper_bound(text_size), encodings_.end());
      throw;
    }
    // The rows needed: the survivors and their ancestors.
    const auto L = live_.size();
    std::vector<char> needed(rows.size(), 0);
    for (const auto& b : sim)
      for (auto o = b.origin; o >= L && !needed[o - L]; o = rows[o - L].parent) needed[o - L] = 1;
    std::vector<base> run;                                        // the needed rows, in order
    std::vector<std::size_t> slot(rows.size(), std::size_t(-1));  // row -> its index in run
    for (std::size_t j = 0; j < rows.size(); ++j)
      if (needed[j]) {
        slot[j] = run.size();
        run.push_back(std::move(rows[j]));
        run.back().slots.clear();  // given when it runs, after its parent's
      }
    std::vector<char> keep(run.size(), 0);  // survivors keep their logits; ancestors drop them once used
    for (const auto& b : sim)
      if (b.origin >= L) keep[slot[b.origin - L]] = 1;
    std::vector<std::vector<std::size_t>> children(run.size());
    for (std::size_t k = 0; k < run.size(); ++k) {
      if (run[k].parent < L) set_logp(run[k], live_[run[k].parent]);
      else children[slot[run[k].parent - L]].push_back(k);
    }
    const auto parent_slots = [&](const base& b) -> const std::vector<std::int64_t>& {
      return b.parent < L ? live_[b.parent].slots : run[slot[b.parent - L]].slots;
    };
    std::vector<std::int32_t> ids;
    std::vector<std::span<const std::int64_t>> tree;
    for (std::size_t at = 0; at < run.size(); at += chunk) {
      const auto count = std::min(chunk, run.size() - at);
      make_room(std::int64_t(count), run);
      ids.clear();
      tree.clear();
      const std::int64_t first = cache_.size();
      for (std::size_t j = at; j < at + count; ++j) {
        run[j].slots = parent_slots(run[j]);
        run[j].slots.push_back(first + std::int64_t(j - at));
        ids.push_back(run[j].tokens.back());
      }
      for (std::size_t j = at; j < at + count; ++j) tree.emplace_back(run[j].slots.data(), run[j].slots.size() - 1);
      const auto r = model_.forward(ids, cache_, {.all_logits = true, .tree = tree});
      const auto V = std::size_t(r.logits.shape.at(1));
      for (std::size_t j = at; j < at + count; ++j) {
        finish(run[j], r.logits.data.data() + (j - at) * V);
        for (const auto k : children[j]) set_logp(run[k], run[j]);
        if (!keep[j]) std::vector<float>().swap(run[j].logits);
      }
      stats_.forward_tokens += count;
      stats_.bases_created += count;
      ++stats_.forwards;
    }
    std::vector<base> next;  // the survivors, with what the sketch decided (ranges, pending checks)
    for (auto& b : sim) {
      base& full = b.origin < L ? live_[b.origin] : run[slot[b.origin - L]];
      full.end = b.end;
      full.lo = b.lo;
      full.hi = b.hi;
      full.pending = std::move(b.pending);
      next.push_back(std::move(full));
    }
    live_ = std::move(next);
    compute();
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

  /// The live bases without their logits (origin: their index in live_), for simulating what
  /// bytes to come would do from the text alone.
  std::vector<base> sketch_live() const {
    std::vector<base> sim;
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
    return sim;
  }

  /// One byte of a sketch, from the text alone (nothing runs): the bases of `sim` extended by `c`
  /// (text_ already ends with it; `stream`, π·x before it, gets it), the bases it creates appended to
  /// `rows` and to `sim` (origin: live_.size() + their index in rows), then the checks the text now
  /// decides applied to `sim`.
  void sketch_byte(std::vector<base>& sim, std::string& stream, unsigned char c, std::vector<base>& rows) {
    std::vector<base> born;
    extend(sim, stream, c, born, false);
    stream += char(c);
    for (auto& b : born) {
      b.origin = live_.size() + rows.size();
      rows.push_back(b);
      sim.push_back(std::move(b));
    }
    decide(sim);
  }

  /// log P(child's tokens | root) from its parent's: the parent's probability of the last token.
  static void set_logp(base& child, const base& parent) {
    child.logp = parent.logp + double(parent.logits[std::size_t(child.tokens.back())]) - parent.log_z;
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
    decide(born);  // valid covers only: what the text decides now removes a new base before it runs
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
        if (logits) set_logp(child, b);
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

}  // namespace nexus::fusion
