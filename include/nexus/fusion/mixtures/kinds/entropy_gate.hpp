// The entropy gate p(b) = Σ_t g_t p_t(b), g_t ∝ exp(-H_t / τ) per position from each teacher's own
// entropy H_t, so the most certain teacher leads; τ fitted by golden-section search.
#pragma once

#include "nexus/fusion/mixtures/kinds/linear.hpp"
#include "nexus/fusion/mixtures/mixture.hpp"

namespace nexus::fusion {

/// Per-position gates g_t ∝ exp(-H_t / τ), then Σ_t g_t p_t.
inline void mix_entropy_gate(teacher_dists dists, double tau, std::span<double> out) {
  if (!(tau > 0)) throw usage_error("ensemble", "entropy gate temperature must be positive");
  std::vector<double> g(dists.size());
  double low = std::numeric_limits<double>::infinity();
  for (std::size_t t = 0; t < dists.size(); ++t) low = std::min(low, g[t] = entropy(dists[t]));
  double z = 0;
  for (auto& v : g) z += (v = std::exp(-(v - low) / tau));
  for (auto& v : g) v /= z;
  mix_linear(dists, g, out);
}

/// The entropy gate's temperature τ by golden-section search of the log-likelihood over log τ in
/// [log `lo`, log `hi`]; weights = {τ}.
inline ensemble_fit fit_entropy_gate(const ensemble_data& d, double lo = 1e-3, double hi = 1e3, int iterations = 60) {
  d.check_fittable();
  const auto T = d.teachers, N = d.positions();
  std::vector<std::span<const double>> dists(static_cast<std::size_t>(T));
  std::vector<double> mixed(static_cast<std::size_t>(d.outcomes));
  auto ll_at = [&](double log_tau) {
    double ll = 0;
    for (std::int64_t n = 0; n < N; ++n) {
      for (std::int64_t t = 0; t < T; ++t) dists[std::size_t(t)] = d.dist(n, t);
      mix_entropy_gate(dists, std::exp(log_tau), mixed);
      ll += std::log(mixed[std::size_t(d.observed[std::size_t(n)])]);
    }
    return ll;
  };
  ensemble_fit f;
  const double best = golden_section_max(ll_at, std::log(lo), std::log(hi), iterations, f);
  f.weights = {std::exp(best)};
  return f;
}

/// Parameters: the temperature τ alone.
struct entropy_gate_mixture {
  static constexpr std::int64_t parameters(std::int64_t) { return 1; }
  static void mix(teacher_dists d, std::span<const double> p, std::span<double> out) {
    mix_entropy_gate(d, tau(p), out);
  }
  static ensemble_fit fit(const ensemble_data& d) { return fit_entropy_gate(d); }
  /// The gate over the `teachers` listed: the same temperature.
  static std::vector<double> consulted(std::span<const double> p, std::span<const std::size_t>) { return {tau(p)}; }
  static double tau(std::span<const double> p) {
    if (p.size() != 1) throw usage_error("ensemble", "an entropy gate has one parameter, its temperature");
    return p[0];
  }
  using reader = stateless_reader<entropy_gate_mixture>;
};

}  // namespace nexus::fusion
