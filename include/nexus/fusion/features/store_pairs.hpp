// Paired rows from a feature store: teacher a's hidden state at layer key i and teacher b's at key j,
// taken where both have read exactly the same bytes of a window (fusion::shared_boundaries; the row of
// a is the boundary's last_a, the row of b its last_b), in batches of bounded size, widened to float.
// With them, b's top-k next-token log-probabilities at the same rows when the store has them.
//
// The held-out split is by document, so that no text is both fitted and scored: a fixed, seeded
// permutation of the document indices puts the first ~20% in the held-out part. A store of a single
// document is split by window instead (its last ~20% of windows, contiguous text).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "nexus/fusion/bytes/token_alignment.hpp"
#include "nexus/fusion/features/feature_store.hpp"

namespace nexus::fusion {

/// One side of a pair: a teacher of the store and one of its hidden-state tensors ("layer6", "final").
struct store_layer {
  std::size_t teacher = 0;
  std::string key;
  bool operator==(const store_layer&) const = default;
};

namespace detail {
inline bool parse_integer(const std::string& v, std::int64_t& out) {
  std::size_t used = 0;
  try {
    out = std::stoll(v, &used);
  } catch (const std::exception&) {
    return false;
  }
  return used == v.size();
}
}  // namespace detail

/// A teacher of the store by its name in the manifest or its index; a usage_error listing the teachers
/// otherwise (`where`: what to name in the error).
inline std::size_t find_teacher(const feature_store& s, const std::string& who, const std::string& where) {
  for (std::size_t t = 0; t < s.teachers(); ++t)
    if (s.teacher_name(t) == who) return t;
  std::int64_t index = 0;
  if (detail::parse_integer(who, index) && index >= 0 && std::size_t(index) < s.teachers()) return std::size_t(index);
  std::string names;
  for (std::size_t t = 0; t < s.teachers(); ++t) names += (t ? ", " : "") + std::to_string(t) + " " + s.teacher_name(t);
  throw usage_error(where, "no teacher '" + who + "' in the store (it has " + names + ")");
}

/// "A:i" -> a store_layer. A is a teacher index or its name in the manifest; i is a layer index (negative:
/// from the end, -1 the last), "final", or a key as stored ("layer6"). Unknown ones are a usage_error
/// listing what the store has.
inline store_layer parse_store_layer(const feature_store& s, const std::string& spec) {
  const auto colon = spec.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == spec.size())
    throw usage_error(spec, "expected TEACHER:LAYER, e.g. 0:6, 1:-1 or NAME:final");
  const auto layer = spec.substr(colon + 1);
  store_layer r;
  r.teacher = find_teacher(s, spec.substr(0, colon), spec);
  std::int64_t index = 0;
  const auto& keys = s.layer_keys(r.teacher);
  const std::int64_t num_layers = s.manifest()["identity"]["teachers"][r.teacher].value("num_layers", std::int64_t(0));
  if (detail::parse_integer(layer, index)) {
    if (index < 0) index += num_layers;
    r.key = "layer" + std::to_string(index);
  } else {
    r.key = layer;
  }
  if (std::find(keys.begin(), keys.end(), r.key) == keys.end()) {
    std::string have;
    for (const auto& k : keys) have += (have.empty() ? "" : ", ") + k;
    throw usage_error(spec, "teacher " + s.teacher_name(r.teacher) + " has no hidden states '" + layer +
                                "' in the store (it has " + (have.empty() ? "none" : have) + ")");
  }
  return r;
}

/// Which rows of a store are held out: whole documents (about `fraction` of them, at least one), or,
/// in a store of a single document, its last windows. Deterministic: a function of the store's
/// document and window counts only.
class heldout_split {
 public:
  explicit heldout_split(const feature_store& s, double fraction = 0.2) {
    if (!(fraction > 0 && fraction < 1)) throw usage_error("heldout_split", "fraction must be in (0, 1)");
    std::int64_t documents = 0;
    for (std::int64_t w = 0; w < s.windows(); ++w) documents = std::max(documents, s.window(w).document() + 1);
    heldout_.assign(std::size_t(documents), false);
    if (documents >= 2) {
      // A seeded permutation (splitmix64 keys) so that held-out documents are spread over the corpus.
      std::vector<std::pair<std::uint64_t, std::int64_t>> keyed;
      for (std::int64_t d = 0; d < documents; ++d) keyed.emplace_back(mix(std::uint64_t(d)), d);
      std::sort(keyed.begin(), keyed.end());
      const auto n = std::max<std::int64_t>(1, std::int64_t(double(documents) * fraction + 0.5));
      for (std::int64_t k = 0; k < n; ++k) heldout_[std::size_t(keyed[std::size_t(k)].second)] = true;
    } else if (s.windows() >= 2) {
      first_heldout_window_ =
          s.windows() - std::max<std::int64_t>(1, std::int64_t(double(s.windows()) * fraction + 0.5));
    }
  }
  /// The held-out part of a row: its window's document (or, in a one-document store, the window).
  bool is_heldout(std::int64_t document, std::int64_t window) const {
    if (first_heldout_window_ >= 0) return window >= first_heldout_window_;
    return document >= 0 && std::size_t(document) < heldout_.size() && heldout_[std::size_t(document)];
  }
  /// False when the store has one document of one window: nothing can be held out.
  bool usable() const { return first_heldout_window_ >= 0 || std::count(heldout_.begin(), heldout_.end(), true) > 0; }
  bool by_document() const { return first_heldout_window_ < 0; }

 private:
  static std::uint64_t mix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  }
  std::vector<bool> heldout_;
  std::int64_t first_heldout_window_ = -1;
};

enum class split_part { all, train, heldout };

/// A batch of paired rows: x [rows, width_a] and y [rows, width_b], row-major floats; b's top-k
/// log-probabilities and ids [rows, top_k] when the store has them (top_k 0 otherwise); per row its
/// document and window.
struct pair_batch {
  std::int64_t rows = 0, width_a = 0, width_b = 0, top_k = 0;
  std::vector<float> x, y;
  std::vector<float> topk_logprobs;
  std::vector<std::int32_t> topk_ids;
  std::vector<std::int64_t> document, window;
  void clear() {
    rows = 0;
    x.clear(), y.clear(), topk_logprobs.clear(), topk_ids.clear(), document.clear(), window.clear();
  }
};

/// The shared boundaries of two token span lists of one window (store layout: begin, end per token),
/// leaving out the boundary at the window's start (only the special prefix tokens end there: nothing
/// of the text is read). Where the two do not end at the same offset (a window cut without a shared
/// boundary), only the common part counts.
inline std::vector<shared_boundary> window_boundaries(std::span<const std::int64_t> spans_a,
                                                      std::span<const std::int64_t> spans_b,
                                                      std::int64_t window_begin) {
  auto to_spans = [](std::span<const std::int64_t> s) {
    std::vector<byte_span> out(s.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = {std::size_t(s[2 * i]), std::size_t(s[2 * i + 1])};
    return out;
  };
  auto a = to_spans(spans_a), b = to_spans(spans_b);
  // Trim to the longest prefix of both that ends at the same offset.
  while (!a.empty() && !b.empty() && a.back().end != b.back().end) {
    const auto e = std::min(a.back().end, b.back().end);
    while (!a.empty() && a.back().end > e) a.pop_back();
    while (!b.empty() && b.back().end > e) b.pop_back();
  }
  if (a.empty() || b.empty()) return {};
  auto out = shared_boundaries(a, b);
  std::erase_if(out, [&](const shared_boundary& sb) { return std::int64_t(sb.offset) <= window_begin; });
  return out;
}

/// Batches of paired rows of one pair of store layers over a part of the split, window by window in
/// store order (so one shard's pages at a time). Memory: one batch.
class store_pairs {
 public:
  using batch_type = pair_batch;  // what next() fills (maps/: accumulate, evaluate)
  store_pairs(const feature_store& s, store_layer a, store_layer b, const heldout_split& split,
              split_part part = split_part::all, std::int64_t batch_rows = 4096)
      : s_(&s), a_(std::move(a)), b_(std::move(b)), split_(&split), part_(part), batch_rows_(batch_rows) {
    if (batch_rows_ < 1) throw usage_error("store_pairs", "batch_rows must be positive");
    if (a_.teacher >= s.teachers() || b_.teacher >= s.teachers())
      throw usage_error("store_pairs", "teacher index beyond the store's " + std::to_string(s.teachers()));
    auto check = [&](const store_layer& l) {
      const auto& k = s.layer_keys(l.teacher);
      if (std::find(k.begin(), k.end(), l.key) == k.end())
        throw usage_error("store_pairs", "teacher " + s.teacher_name(l.teacher) + " has no '" + l.key + "'");
    };
    check(a_), check(b_);
  }
  std::int64_t width_a() const { return s_->hidden_size(a_.teacher); }
  std::int64_t width_b() const { return s_->hidden_size(b_.teacher); }

  /// Fills `out` with up to batch_rows rows; false (and `out` empty) once every window is read.
  bool next(pair_batch& out) {
    out.clear();
    out.width_a = width_a(), out.width_b = width_b(), out.top_k = s_->top_k();
    while (out.rows < batch_rows_) {
      if (pending_.empty() || at_ == pending_.size()) {
        if (window_ >= s_->windows()) break;
        load_window(window_++);
        continue;
      }
      const auto wv = s_->window(current_);
      const auto xa = wv.hidden(a_.teacher, a_.key), yb = wv.hidden(b_.teacher, b_.key);
      for (; at_ < pending_.size() && out.rows < batch_rows_; ++at_) {
        const auto& sb = pending_[at_];
        append_row(xa, std::int64_t(sb.last_a), out.x);
        append_row(yb, std::int64_t(sb.last_b), out.y);
        if (out.top_k > 0) {
          const auto k = std::size_t(out.top_k);
          const auto lp = wv.topk_logprobs(b_.teacher).subspan(sb.last_b * k, k);
          const auto id = wv.topk_ids(b_.teacher).subspan(sb.last_b * k, k);
          out.topk_logprobs.insert(out.topk_logprobs.end(), lp.begin(), lp.end());
          out.topk_ids.insert(out.topk_ids.end(), id.begin(), id.end());
        }
        out.document.push_back(wv.document());
        out.window.push_back(current_);
        ++out.rows;
      }
    }
    return out.rows > 0;
  }
  /// Back to the first window.
  void rewind() { window_ = 0, at_ = 0, pending_.clear(); }

 private:
  static void append_row(const hidden_rows& h, std::int64_t r, std::vector<float>& dst) {
    const auto at = dst.size();
    dst.resize(at + std::size_t(h.width));
    for (std::int64_t c = 0; c < h.width; ++c) dst[at + std::size_t(c)] = h.at(r, c);
  }
  void load_window(std::int64_t w) {
    pending_.clear(), at_ = 0, current_ = w;
    const auto wv = s_->window(w);
    const bool held = split_->is_heldout(wv.document(), w);
    if ((part_ == split_part::train && held) || (part_ == split_part::heldout && !held)) return;
    pending_ = window_boundaries(wv.spans(a_.teacher), wv.spans(b_.teacher), wv.bytes().first);
  }

  const feature_store* s_;
  store_layer a_, b_;
  const heldout_split* split_;
  split_part part_;
  std::int64_t batch_rows_;
  std::int64_t window_ = 0, current_ = 0;
  std::vector<shared_boundary> pending_;
  std::size_t at_ = 0;
};

}  // namespace nexus::fusion
