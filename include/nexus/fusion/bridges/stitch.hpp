// Stitching two teachers with a bridge and scoring the result: teacher A runs up to layer i, the
// bridge maps its residual stream into teacher B's space, and B continues after layer j.
//
// Same tokenizer (both read the text as the same ids): the bridged rows replace B's residual stream
// after layer j (forward_options::hook) and B's remaining layers and head run on them; the score is
// bits per byte of the stitched model, beside A's and B's own.
//
// Across tokenizers, j must be B's last layer: only B's final norm and head follow (fusion/frozen_head).
// At every shared boundary of a window (both have read the same bytes; fusion/store_pairs.hpp's
// window_boundaries) with a next token of B, the next-token loss of B is taken three ways: B itself
// (its logits after last_b), the stitched path (head(bridge(A's row last_a))), and B's unigram
// distribution. The share of B's advantage over unigram that the bridge carries is
// (L_unigram − L_stitched) / (L_unigram − L_B). These boundary losses are also reported in the
// same-tokenizer case when j is B's last layer (every token end is then a shared boundary).
#pragma once

#include <cmath>
#include <functional>
#include <numbers>

#include "nexus/fusion/features/extract.hpp"
#include "nexus/fusion/bridges/frozen_head.hpp"
#include "nexus/fusion/bridges/losses.hpp"
#include "nexus/fusion/features/store_pairs.hpp"

namespace nexus::fusion {

/// A next-token distribution independent of the context, as log-probabilities over the vocabulary.
struct unigram {
  std::vector<double> logp;
  std::string source;  // how it was estimated (for the report)
};

/// From token ids (e.g. B's tokens of a text), add-one smoothed over the vocabulary.
inline unigram unigram_from_ids(std::span<const std::int32_t> ids, std::int64_t vocab, std::string source) {
  std::vector<double> count(static_cast<std::size_t>(vocab), 1.0);
  for (const auto id : ids)
    if (id >= 0 && id < vocab) count[std::size_t(id)] += 1;
  const double total = double(ids.size()) + double(vocab);
  unigram u{{}, std::move(source)};
  for (const double c : count) u.logp.push_back(std::log(c / total));
  return u;
}

/// From teacher t's stored top-k next-token distributions over the training part of a store: the mean
/// over its token rows of each distribution, where a row's mass outside its top k is spread evenly
/// over the whole vocabulary. The marginal next-token distribution of the teacher on that text.
inline unigram unigram_from_store(const feature_store& s, std::size_t t, std::int64_t vocab,
                                  const heldout_split& split) {
  if (s.top_k() <= 0) throw usage_error("unigram", "the store has no top-k log-probabilities");
  std::vector<double> p(static_cast<std::size_t>(vocab), 0.0);
  double rest = 0;
  std::int64_t rows = 0;
  const auto k = std::size_t(s.top_k());
  for (std::int64_t w = 0; w < s.windows(); ++w) {
    const auto wv = s.window(w);
    if (split.is_heldout(wv.document(), w)) continue;
    const auto lp = wv.topk_logprobs(t);
    const auto ids = wv.topk_ids(t);
    for (std::size_t r = 0; r < wv.tokens(t); ++r) {
      double sum = 0;
      for (std::size_t i = 0; i < k; ++i) {
        const auto id = ids[r * k + i];
        if (id < 0 || id >= vocab) throw usage_error("unigram", "stored id outside the vocabulary");
        const double q = std::exp(double(lp[r * k + i]));
        p[std::size_t(id)] += q;
        sum += q;
      }
      rest += std::max(0.0, 1.0 - sum);
      ++rows;
    }
  }
  if (rows == 0) throw usage_error("unigram", "no training rows in the store");
  unigram u{{},
            "mean of teacher " + s.teacher_name(t) + "'s stored top-" + std::to_string(k) + " distributions over the " +
                std::to_string(rows) + " token rows of the store's training documents (the rest spread evenly)"};
  for (const double v : p) u.logp.push_back(std::log((v + rest / double(vocab)) / double(rows)));
  return u;
}

/// Rows [n, d_in] -> rows [n, d_out]: the bridge as the stitch applies it.
using bridge_fn = std::function<std::vector<float>(std::span<const float>)>;

struct stitch_options {
  std::int64_t layer_a = -1, layer_b = -1;  // after these layers (negative: from the end)
  std::int64_t context = 512;               // tokens per window
  bool force_boundaries = false;            // same tokenizer: still score at shared boundaries only
};

struct stitch_score {
  bool same_tokenizer = false;
  std::int64_t documents = 0, windows = 0, bytes = 0;
  // Same tokenizer: bits per byte over every predicted token.
  std::int64_t tokens = 0;
  double bpb_a = NAN, bpb_b = NAN, bpb_stitched = NAN;
  // At shared boundaries (B's last layer): mean next-token loss of B in nats.
  std::int64_t boundaries = 0;
  double loss_b = NAN, loss_stitched = NAN, loss_unigram = NAN, share = NAN;
};

/// Scores A (layer i) -> bridge -> B (after layer j) on `documents`.
inline stitch_score score_stitch(const model& a, const tokenizer& tok_a, const model& b, const tokenizer& tok_b,
                                 const bridge_fn& bridge, const frozen_head& head_b, const unigram* uni,
                                 const std::vector<std::string>& documents, const stitch_options& o) {
  const auto La = a.arch().dims.num_layers, Lb = b.arch().dims.num_layers, V = b.arch().dims.vocab_size;
  const auto layer_a = std::int64_t(tapped_layers({.layers = {o.layer_a}}, La).front());
  const auto layer_b = hooked_layer({o.layer_b, [](auto...) {}}, Lb);
  const bool at_head = layer_b == Lb - 1;
  if (uni && std::int64_t(uni->logp.size()) != V) throw usage_error("score", "unigram of another vocabulary size");
  if (head_b.vocab() != V || head_b.hidden() != b.arch().dims.hidden_size)
    throw usage_error("score", "the head is not teacher B's");
  stitch_score s;
  s.documents = std::int64_t(documents.size());
  // Same tokenizer when both read every document as the same ids (their own prefixes included).
  s.same_tokenizer = true;
  for (const auto& d : documents) s.same_tokenizer = s.same_tokenizer && tok_a.encode(d, true) == tok_b.encode(d, true);
  if (!s.same_tokenizer && !at_head)
    throw usage_error("--stitch", "teachers with different tokenizers stitch into B's last layer (" +
                                      std::to_string(Lb - 1) + " or -1) only, not " + std::to_string(o.layer_b));
  double nats_a = 0, nats_b = 0, nats_s = 0, sum_b = 0, sum_s = 0, sum_u = 0;
  const std::vector<const tokenizer*> toks = {&tok_a, &tok_b};
  for (std::size_t doc = 0; doc < documents.size(); ++doc) {
    for (const auto& w : plan_windows(documents[doc], std::int64_t(doc), toks, o.context)) {
      const auto &ids_a = w.ids[0], &ids_b = w.ids[1];
      if (ids_a.empty() || ids_b.empty()) continue;
      ++s.windows;
      s.bytes += w.end - w.begin;
      auto ca = a.new_cache(std::int64_t(ids_a.size()));
      const auto ra = a.forward(ids_a, ca, {.taps = {.layers = {layer_a}}});
      const auto& xa = ra.taps.layers[0];
      auto cb = b.new_cache(std::int64_t(ids_b.size()));
      const auto rb = b.forward(ids_b, cb, {.taps = {.layers = {layer_b}}});
      const auto next_loss = [&](const std::vector<float>& logits, std::size_t row, std::int32_t target) {
        return next_token_loss(logits.data() + row * std::size_t(V), V, target);
      };
      if (s.same_tokenizer) {
        // B after layer j on the bridged rows of A.
        auto cs = b.new_cache(std::int64_t(ids_b.size()));
        residual_hook hook{layer_b, [&](std::int64_t, float* rows, std::int64_t n, std::int64_t hidden) {
                             const auto first = cs.size();  // the step's first position
                             const auto y = bridge(std::span<const float>(xa.data).subspan(
                                 std::size_t(first * xa.shape[1]), std::size_t(n * xa.shape[1])));
                             if (std::int64_t(y.size()) != n * hidden)
                               throw usage_error("score", "the bridge's output is not B's hidden size");
                             std::copy(y.begin(), y.end(), rows);
                           }};
        const auto rs = b.forward(ids_b, cs, {.hook = hook});
        const auto prefix = tok_b.prefix_ids().size();
        for (std::size_t p = 0; p + 1 < ids_b.size(); ++p) {
          if (p + 1 < prefix) continue;  // predicts a special prefix token, not text
          nats_a += next_loss(ra.logits.data, p, ids_a[p + 1]);
          nats_b += next_loss(rb.logits.data, p, ids_b[p + 1]);
          nats_s += next_loss(rs.logits.data, p, ids_b[p + 1]);
          ++s.tokens;
        }
      }
      if (at_head && (!s.same_tokenizer || o.force_boundaries || uni)) {
        const auto bounds = window_boundaries(w.spans[0], w.spans[1], w.begin);
        std::vector<float> x;
        std::vector<std::int32_t> next;
        std::vector<std::size_t> row_b;
        const auto dA = xa.shape[1];
        for (const auto& sb : bounds) {
          if (sb.last_b + 1 >= ids_b.size()) continue;  // B's next token is in the next window
          x.insert(x.end(), xa.data.begin() + std::ptrdiff_t(sb.last_a * std::size_t(dA)),
                   xa.data.begin() + std::ptrdiff_t((sb.last_a + 1) * std::size_t(dA)));
          next.push_back(ids_b[sb.last_b + 1]);
          row_b.push_back(sb.last_b);
        }
        if (next.empty()) continue;
        const auto y = bridge(x);
        const auto n = std::int64_t(next.size());
        if (std::int64_t(y.size()) != n * head_b.hidden())
          throw usage_error("score", "the bridge's output is not B's hidden size");
        std::vector<float> logits(std::size_t(n * V));
        head_b.forward(y.data(), n, logits.data());
        for (std::int64_t r = 0; r < n; ++r) {
          sum_b += next_loss(rb.logits.data, row_b[std::size_t(r)], next[std::size_t(r)]);
          sum_s += next_loss(logits, std::size_t(r), next[std::size_t(r)]);
          if (uni) sum_u -= uni->logp[std::size_t(next[std::size_t(r)])];
        }
        s.boundaries += n;
      }
    }
  }
  const double bits = 1.0 / (std::numbers::ln2 * double(std::max<std::int64_t>(1, s.bytes)));
  if (s.same_tokenizer && s.tokens > 0)
    s.bpb_a = nats_a * bits, s.bpb_b = nats_b * bits, s.bpb_stitched = nats_s * bits;
  if (s.boundaries > 0) {
    s.loss_b = sum_b / double(s.boundaries);
    s.loss_stitched = sum_s / double(s.boundaries);
    if (uni) {
      s.loss_unigram = sum_u / double(s.boundaries);
      s.share = (s.loss_unigram - s.loss_stitched) / (s.loss_unigram - s.loss_b);
    }
  }
  return s;
}

}  // namespace nexus::fusion
