// The linear mixture p(b) = Σ_t w_t p_t(b), weights fitted on development text by EM (each step in
// closed form: responsibilities, then their means; the likelihood never decreases).
#pragma once

#include "nexus/fusion/mixtures/mixture.hpp"

namespace nexus::fusion {

/// Σ_t w_t p_t into `out`.
inline void mix_linear(teacher_dists dists, std::span<const double> w, std::span<double> out) {
  detail::check_weights(w, std::int64_t(dists.size()));
  std::fill(out.begin(), out.end(), 0.0);
  for (std::size_t t = 0; t < dists.size(); ++t)
    for (std::size_t b = 0; b < out.size(); ++b) out[b] += w[t] * dists[t][b];
}

/// Linear-mixture weights by EM from uniform: r_tn = w_t p_t(x_n) / Σ_s w_s p_s(x_n), w_t = mean_n r_tn.
/// Stops when the log-likelihood gains less than `tolerance` per position.
inline ensemble_fit fit_linear_mixture(const ensemble_data& d, int max_iterations = 500, double tolerance = 1e-12) {
  d.check_fittable();
  const auto T = d.teachers, N = d.positions();
  ensemble_fit f;
  f.weights.assign(std::size_t(T), 1.0 / double(T));
  std::vector<double> next(static_cast<std::size_t>(T));
  double last = -std::numeric_limits<double>::infinity();
  for (int it = 0; it < max_iterations; ++it) {
    std::fill(next.begin(), next.end(), 0.0);
    double ll = 0;
    for (std::int64_t n = 0; n < N; ++n) {
      double mix = 0;
      for (std::int64_t t = 0; t < T; ++t)
        mix += f.weights[std::size_t(t)] * d.dist(n, t)[std::size_t(d.observed[std::size_t(n)])];
      if (!(mix > 0))
        throw usage_error("ensemble",
                          "position " + std::to_string(n) + ": every teacher gives the observed outcome probability 0");
      ll += std::log(mix);
      for (std::int64_t t = 0; t < T; ++t)
        next[std::size_t(t)] += f.weights[std::size_t(t)] * d.dist(n, t)[std::size_t(d.observed[std::size_t(n)])] / mix;
    }
    f.trace.push_back(ll);
    f.log_likelihood = ll;
    f.iterations = it + 1;
    if (ll - last < tolerance * double(N)) break;
    last = ll;
    for (std::int64_t t = 0; t < T; ++t) f.weights[std::size_t(t)] = next[std::size_t(t)] / double(N);
  }
  return f;
}

/// Parameters: a weight per teacher.
struct linear_mixture {
  static constexpr std::int64_t parameters(std::int64_t teachers) { return teachers; }
  static void mix(teacher_dists d, std::span<const double> w, std::span<double> out) { mix_linear(d, w, out); }
  static ensemble_fit fit(const ensemble_data& d) { return fit_linear_mixture(d); }
  /// The mixture of the `teachers` listed (a cascade's first stages): their weights renormalised.
  static std::vector<double> consulted(std::span<const double> w, std::span<const std::size_t> teachers) {
    return detail::renormalised(w, teachers);
  }
  using reader = stateless_reader<linear_mixture>;
};

}  // namespace nexus::fusion
