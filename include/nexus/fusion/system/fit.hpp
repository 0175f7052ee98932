// Fitting a fused system on development examples: collect_development() reads them once, one teacher
// at a time (its byte distributions at every position; the router's features from the feature
// teacher) into a development_set (development.hpp, which a bundle keeps beside it); fit_parameters()
// then fits the mixture of any kind, the cascade (its share chosen by cross-validation across
// documents) and the router from that, without running a teacher again.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nexus/fusion/system/development.hpp"
#include "nexus/fusion/system/score.hpp"

namespace nexus::fusion {

struct system_fit_options {
  mixture_kind kind = mixture_kind::linear;
  std::int64_t prefix_bytes = 64;                      // the router reads this many bytes of a prompt
  std::optional<double> cascade_share = std::nullopt;  // share of positions escalated at each stage; none: chosen by
      // cross-validation (the least within cascade_tolerance of the mixture)
  double cascade_tolerance = 0.005;                                        // relative, on held-out bits per byte
  std::function<void(std::size_t done, std::size_t total)> progress = {};  // after each teacher's example
};

/// What fitting on development examples found.
struct system_fit {
  ensemble_fit mixture;
  std::optional<router_fit> router;                 // with at least 8 routed examples
  std::optional<cascade_point> cascade;             // its thresholds on the development positions
  std::optional<cascade_choice> cascade_selection;  // when its share was chosen by cross-validation
  std::size_t positions = 0, examples = 0;
};

/// Teacher `t` of `teachers` over `examples` (none empty): its distribution at every position, one
/// example after another, as the development set keeps them. `done` is called after each example.
inline std::vector<float> read_development_teacher(teacher_set& teachers, std::size_t t,
                                                   const std::vector<dev_example>& examples,
                                                   const std::function<void()>& done = {}) {
  std::vector<float> rows;
  for (const auto& e : examples) {
    const std::string text = e.prompt + e.continuation;
    const auto d = development_rows(byte_distributions(teachers.get(t), teachers.tok(t), text), text.size());
    rows.insert(rows.end(), d.begin(), d.end());
    if (done) done();
  }
  return rows;
}

/// The router's features of every routed example of `dev`, read by teacher `f` (dev.feature_teacher := f).
inline void read_development_features(teacher_set& teachers, std::size_t f, development_set& dev) {
  dev.feature_teacher = f;
  dev.features.assign(dev.examples.size(), {});
  for (std::size_t e = 0; e < dev.examples.size(); ++e)
    if (dev.routed(e))
      dev.features[e] = router_features_of(teachers.get(f), teachers.tok(f), dev.examples[e].prompt, dev.prefix_bytes);
}

/// Reads `examples` through every teacher of `teachers`, one teacher resident at a time (the router's
/// features from `p.feature_teacher`).
inline development_set collect_development(teacher_set& teachers, const system_parameters& p,
                                           const std::vector<dev_example>& examples,
                                           const system_fit_options& opt = {}) {
  development_set dev;
  dev.prefix_bytes = opt.prefix_bytes;
  for (const auto& e : examples)
    if (!e.prompt.empty() || !e.continuation.empty()) dev.examples.push_back(e);
  if (dev.examples.empty()) throw usage_error("fit", "empty development text");
  const auto T = teachers.size(), E = dev.examples.size();
  std::size_t done = 0;
  auto tick = [&] {
    if (opt.progress) opt.progress(++done, T * E);
  };
  for (std::size_t t = 0; t < T; ++t) dev.rows.push_back(read_development_teacher(teachers, t, dev.examples, tick));
  read_development_features(teachers, p.feature_teacher, dev);
  return dev;
}

/// Fits the mixture (of kind `opt.kind`), the cascade and the router on `dev` into `p`.
inline system_fit fit_parameters(const development_set& dev, system_parameters& p, const system_fit_options& opt = {}) {
  const auto T = dev.teachers();
  if (T != p.order.size())
    throw usage_error("fit", "development rows of " + std::to_string(T) + " teachers for a system of " +
                                 std::to_string(p.order.size()));
  if (dev.feature_teacher != p.feature_teacher)
    throw usage_error("fit", "the development features were read by teacher " + std::to_string(dev.feature_teacher) +
                                 ", the router's feature teacher is " + std::to_string(p.feature_teacher));
  system_fit out;
  out.examples = dev.examples.size();
  out.positions = dev.positions();
  out.mixture = fit_mixture(opt.kind, mixture_data(dev));
  p.set_mixture(opt.kind, out.mixture.weights, T);
  if (T > 1) {
    const auto ordered = cascade_data(dev, p.order);
    const auto mix = p.cascade_mixer();
    double share = opt.cascade_share.value_or(1.0);
    if (!opt.cascade_share && dev.examples.size() >= 2) {
      out.cascade_selection = choose_cascade_share(ordered, default_cascade_shares(), opt.cascade_tolerance, mix);
      share = out.cascade_selection->curve[out.cascade_selection->chosen].target_share;
    }
    p.thresholds = cascade_thresholds(ordered, share, mix);
    out.cascade = evaluate_cascade(ordered, *p.thresholds, mix);
    out.cascade->target_share = share;
  }
  if (const auto routed = router_data(dev); routed.size() >= 8) {
    out.router = fit_router(routed, dev.prefix_bytes);
    p.router = out.router->model;
  }
  return out;
}

}  // namespace nexus::fusion
