// A query router (RouteLLM / FrugalGPT style, fitted in closed form): from the first bytes of a
// prompt and the cheapest teacher's pooled hidden states, predict each teacher's loss (nats per byte)
// on the continuation by ridge regression, and send the prompt to the teacher predicted best.
//
// Features, version 1 (the bundle stores only the weights, so the layout is fixed here):
//   [0, 256)        the histogram of the first `prefix_bytes` bytes, each count over that length
//   [256, 256 + d)  the mean over the prompt's positions of the feature teacher's final hidden state
//                   (after its final norm; root context included), d its width
// The feature teacher is the cheapest of the bundle (fewest weight bytes, the first on ties): it
// reads the prompt anyway when it is chosen and costs least when it is not.
//
// Fitting keeps the router only where it earns its place: routing is compared, by cross-validation
// across the development examples, with always sending to the teacher best on the other folds; where
// routing is not better, the router is that constant choice (zero weights), which needs no features
// and so runs no teacher before the one it picks.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "nexus/core/error.hpp"
#include "nexus/fusion/bytes/vocabulary.hpp"
#include "nexus/fusion/maps/closed_form.hpp"
#include "nexus/fusion/maps/pair_statistics.hpp"
#include "nexus/model/model.hpp"

namespace nexus::fusion {

inline constexpr std::int64_t router_byte_features = 256;

/// The router's feature row of a prompt: its byte histogram (first `prefix_bytes` bytes), then `pooled`.
inline std::vector<float> router_features(std::string_view prompt, std::int64_t prefix_bytes,
                                          std::span<const float> pooled) {
  if (prefix_bytes < 1) throw usage_error("router", "prefix_bytes must be positive");
  std::vector<float> f(std::size_t(router_byte_features) + pooled.size(), 0.0f);
  const auto n = std::min<std::size_t>(prompt.size(), std::size_t(prefix_bytes));
  for (std::size_t i = 0; i < n; ++i) f[static_cast<unsigned char>(prompt[i])] += 1.0f;
  if (n > 0)
    for (std::size_t b = 0; b < std::size_t(router_byte_features); ++b) f[b] /= float(n);
  std::copy(pooled.begin(), pooled.end(), f.begin() + router_byte_features);
  return f;
}

/// The first `prefix_bytes` bytes of `text`, cut back to a character boundary: what the router reads.
inline std::string_view prompt_head(std::string_view text, std::int64_t prefix_bytes) {
  const auto k = std::min<std::size_t>(text.size(), std::size_t(std::max<std::int64_t>(prefix_bytes, 0)));
  return text.substr(0, utf8::char_start(text, k));
}

/// The router's features of `prompt` as the feature teacher (`m`, `tok`) reads it: the byte histogram
/// and the teacher's mean final hidden state over the prompt's first `prefix_bytes` bytes.
inline std::vector<float> router_features_of(const model& m, const tokenizer& tok, std::string_view prompt,
                                             std::int64_t prefix_bytes) {
  const auto head = prompt_head(prompt, prefix_bytes);
  auto ids = root_context(tok, m.arch().dims.vocab_size);
  const auto enc = tok.encode(head);
  ids.insert(ids.end(), enc.begin(), enc.end());
  auto cache = m.new_cache(std::int64_t(ids.size()));
  const auto r = m.forward(ids, cache, {.all_logits = false, .hidden_states = true});
  const auto& h = r.hidden.back();  // the final norm's output [positions, width]
  const auto H = h.shape.at(1), P = h.shape.at(0);
  std::vector<float> pooled(std::size_t(H), 0.0f);
  for (std::int64_t p = 0; p < P; ++p)
    for (std::int64_t k = 0; k < H; ++k) pooled[std::size_t(k)] += h.data[std::size_t(p * H + k)] / float(P);
  return router_features(head, prefix_bytes, pooled);
}

/// Predicted loss per teacher = W f + b, W [teachers, features] (row-major, fp64).
struct router_model {
  std::int64_t prefix_bytes = 64;
  affine_map map;  // d_in = features, d_out = teachers

  std::vector<double> predict(std::span<const float> features) const {
    const auto y = map.apply(features, 1);
    return {y.begin(), y.end()};
  }
  /// Zero weights: the same teacher for every prompt (the bias's least), no features needed.
  bool constant() const {
    return std::all_of(map.w.begin(), map.w.end(), [](double w) { return w == 0; });
  }
  /// The constant router's teacher: the least bias.
  std::size_t constant_choice() const {
    return std::size_t(std::min_element(map.b.begin(), map.b.end()) - map.b.begin());
  }
  /// The teacher of least predicted loss.
  std::size_t route(std::span<const float> features) const {
    const auto p = predict(features);
    return std::size_t(std::min_element(p.begin(), p.end()) - p.begin());
  }
};

/// One development example: the router's features of its prompt and each teacher's loss on the continuation.
struct router_example {
  std::vector<float> features;
  std::vector<float> losses;  // nats per byte, one per teacher
  double bytes = 1;           // of the continuation: the example's weight in the routed loss
};

struct router_fit {
  router_model model;
  double lambda = 0, heldout_r2 = 0;  // chosen on every fourth example, then refitted on all
  std::size_t folds = 0;              // of the cross-validation below (examples: i in fold i mod folds)
  double routed_loss = 0;             // nats per byte of the teachers routed to, held out
  double constant_loss = 0;           // of the teacher best on the other folds, held out
  bool constant = false;              // routing was not better: always the teacher best on every example
};

/// Ridge from features to losses: λ chosen on a held-out quarter of the examples (every fourth),
/// then refitted on all of them with that λ.
inline router_fit fit_router(const std::vector<router_example>& examples, std::int64_t prefix_bytes) {
  if (examples.size() < 8)
    throw usage_error("router", "needs at least 8 development examples, got " + std::to_string(examples.size()));
  const auto F = std::int64_t(examples[0].features.size()), T = std::int64_t(examples[0].losses.size());
  std::vector<float> x[2], y[2];  // [0]: train, [1]: held out (every fourth)
  for (std::size_t i = 0; i < examples.size(); ++i) {
    const auto& e = examples[i];
    if (std::int64_t(e.features.size()) != F || std::int64_t(e.losses.size()) != T)
      throw usage_error("router", "example " + std::to_string(i) + " has another width");
    const int part = i % 4 == 3;
    x[part].insert(x[part].end(), e.features.begin(), e.features.end());
    y[part].insert(y[part].end(), e.losses.begin(), e.losses.end());
  }
  pair_statistics train(F, T), heldout(F, T);
  train.add(x[0], y[0], std::int64_t(y[0].size()) / T);
  heldout.add(x[1], y[1], std::int64_t(y[1].size()) / T);
  pair_statistics all = train;
  all.merge(heldout);
  const auto chosen = fit_ridge(train, heldout);
  double rel = 0;  // the chosen λ relative to the grid's scale, applied to all the examples
  for (std::size_t k = 0; k < chosen.grid.size(); ++k)
    if (chosen.grid[k] == chosen.lambda) rel = default_ridge_grid()[k];
  const auto full = fit_ridge(all, heldout, {rel});
  router_fit out{{prefix_bytes, full.map}, full.lambda, chosen.heldout_r2};
  // Routing against the best constant teacher, each fold scored by what was fitted on the others.
  const auto n = examples.size();
  out.folds = std::min<std::size_t>(5, n / 2);
  double bytes = 0;
  auto mean_losses = [&](auto&& in) {
    std::vector<double> m(std::size_t(T), 0.0);
    for (std::size_t i = 0; i < n; ++i)
      if (in(i))
        for (std::int64_t t = 0; t < T; ++t)
          m[std::size_t(t)] += examples[i].bytes * examples[i].losses[std::size_t(t)];
    return m;
  };
  for (std::size_t f = 0; f < out.folds; ++f) {
    pair_statistics fit_part(F, T), held(F, T);
    for (std::size_t i = 0; i < n; ++i)
      (i % out.folds == f ? held : fit_part).add(examples[i].features, examples[i].losses, 1);
    const router_model r{prefix_bytes, fit_ridge(fit_part, held, {rel}).map};
    const auto m = mean_losses([&](std::size_t i) { return i % out.folds != f; });
    const auto best = std::size_t(std::min_element(m.begin(), m.end()) - m.begin());
    for (std::size_t i = f; i < n; i += out.folds) {
      const auto& e = examples[i];
      out.routed_loss += e.bytes * e.losses[r.route(e.features)];
      out.constant_loss += e.bytes * e.losses[best];
      bytes += e.bytes;
    }
  }
  out.routed_loss /= bytes, out.constant_loss /= bytes;
  if (!(out.routed_loss < out.constant_loss)) {
    double total = 0;
    for (const auto& e : examples) total += e.bytes;
    const auto m = mean_losses([](std::size_t) { return true; });
    out.model.map = affine_map::zero(F, T);
    for (std::int64_t t = 0; t < T; ++t) out.model.map.b[std::size_t(t)] = m[std::size_t(t)] / total;
    out.constant = true;
  }
  return out;
}

}  // namespace nexus::fusion
