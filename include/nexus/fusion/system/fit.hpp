// Fitting a fused system on development examples: collect() reads them once (every teacher's
// distributions at every position, in the cascade's order too, and for the router each example's
// features and each teacher's loss on its continuation); fit() then fits the mixture of any kind,
// the cascade's thresholds and the router from that, without running a teacher again.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nexus/fusion/system/score.hpp"

namespace nexus::fusion {

/// A development example: a prompt and what should follow it (a plain document: its first bytes and the rest).
struct dev_example {
  std::string prompt, continuation;
};

/// `text` as a development example: the first `prefix_bytes` bytes (cut back to a character boundary) and the rest.
inline dev_example split_document(std::string_view text, std::int64_t prefix_bytes) {
  const auto head = prompt_head(text, prefix_bytes);
  return {std::string(head), std::string(text.substr(head.size()))};
}

struct system_fit_options {
  mixture_kind kind = mixture_kind::linear;
  std::int64_t prefix_bytes = 64;  // the router reads this many bytes of a prompt
  double cascade_share = 0.5;      // target share of positions escalated at each stage of the cascade
  std::function<void(std::size_t done, std::size_t total)> progress = {};  // after each example
};

/// Development examples as read by every teacher (collect_development).
struct development_set {
  ensemble_data mixture;               // every position: each teacher's distribution, the observed byte
  position_data ordered;               // the same in the cascade's order
  std::vector<router_example> routed;  // examples with a prompt and a continuation
  std::int64_t prefix_bytes = 64;
  std::size_t examples = 0;
};

/// What fitting on development examples found.
struct system_fit {
  ensemble_fit mixture;
  std::optional<router_fit> router;      // with at least 8 examples that have continuations
  std::optional<cascade_point> cascade;  // on the development positions
  std::size_t positions = 0, examples = 0;
};

/// Reads `examples` through every teacher of `teachers` (cascade order and feature teacher from `p`).
inline development_set collect_development(teacher_set& teachers, const system_parameters& p,
                                           const std::vector<dev_example>& examples,
                                           const system_fit_options& opt = {}) {
  const auto T = teachers.size();
  development_set dev{{std::int64_t(T), std::int64_t(end_of_text + 1), {}, {}, {}}, {}, {}, opt.prefix_bytes, 0};
  std::vector<double> row;
  for (std::size_t n = 0; n < examples.size(); ++n) {
    if (opt.progress) opt.progress(n, examples.size());
    const auto& e = examples[n];
    const std::string text = e.prompt + e.continuation;
    if (text.empty()) continue;
    ++dev.examples;
    dev.mixture.begin_document();
    const auto all = teacher_distributions(teachers, text);
    std::vector<float> losses(T, 0.0f);
    for (std::size_t i = 0; i < text.size(); ++i) {
      const auto c = static_cast<unsigned char>(text[i]);
      row.clear();
      dev.ordered.dists.emplace_back();
      for (std::size_t k = 0; k < T; ++k) dev.ordered.dists.back().push_back(all[p.order[k]][i]);
      for (std::size_t t = 0; t < T; ++t) {
        row.insert(row.end(), all[t][i].begin(), all[t][i].end());
        if (i >= e.prompt.size()) losses[t] -= float(std::log(all[t][i][c]) / double(e.continuation.size()));
      }
      dev.mixture.add(row, c);
      dev.ordered.observed.push_back(c);
    }
    if (T > 1 && !e.continuation.empty() && !e.prompt.empty()) {
      const auto f = p.feature_teacher;
      dev.routed.push_back(
          {router_features_of(teachers.get(f), teachers.tok(f), e.prompt, opt.prefix_bytes), std::move(losses)});
    }
  }
  if (opt.progress) opt.progress(examples.size(), examples.size());
  if (dev.mixture.positions() == 0) throw usage_error("fit", "empty development text");
  return dev;
}

/// Fits the mixture (of kind `opt.kind`), the cascade and the router on `dev` into `p`.
inline system_fit fit_parameters(const development_set& dev, system_parameters& p, const system_fit_options& opt = {}) {
  const auto T = std::size_t(dev.mixture.teachers);
  system_fit out;
  out.examples = dev.examples;
  out.positions = std::size_t(dev.mixture.positions());
  out.mixture = fit_mixture(opt.kind, dev.mixture);
  p.set_mixture(opt.kind, out.mixture.weights, T);
  if (T > 1) {
    p.thresholds = cascade_thresholds(dev.ordered, opt.cascade_share, p.cascade_mixer());
    out.cascade = evaluate_cascade(dev.ordered, *p.thresholds, p.cascade_mixer());
    out.cascade->target_share = opt.cascade_share;
  }
  if (dev.routed.size() >= 8) {
    out.router = fit_router(dev.routed, dev.prefix_bytes);
    p.router = out.router->model;
  }
  return out;
}

}  // namespace nexus::fusion
