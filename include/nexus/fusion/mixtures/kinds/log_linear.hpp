// The log-linear mixture p(b) ∝ Π_t p_t(b)^{w_t} (a product of experts), normalised exactly over the
// alphabet; weights fitted by Newton's method (the log-likelihood is concave in w).
#pragma once

#include "nexus/backend/cpu/lapack.hpp"
#include "nexus/fusion/mixtures/mixture.hpp"

namespace nexus::fusion {

namespace detail {
/// w·log p with 0·log 0 = 0 (a teacher of weight 0 does not veto an outcome).
inline double weighted_log(double w, double p) { return w == 0 ? 0.0 : w * std::log(p); }
}  // namespace detail

/// Π_t p_t^{w_t}, normalised over the alphabet (in the log domain, so tiny products do not underflow).
/// An outcome some teacher of positive weight gives probability 0 gets 0.
inline void mix_log_linear(teacher_dists dists, std::span<const double> w, std::span<double> out) {
  detail::check_weights(w, std::int64_t(dists.size()));
  double top = -std::numeric_limits<double>::infinity();
  for (std::size_t b = 0; b < out.size(); ++b) {
    double s = 0;
    for (std::size_t t = 0; t < dists.size(); ++t) s += detail::weighted_log(w[t], dists[t][b]);
    out[b] = s;
    top = std::max(top, s);
  }
  if (!std::isfinite(top)) throw usage_error("ensemble", "the teachers leave no outcome possible");
  double z = 0;
  for (auto& v : out) z += (v = std::exp(v - top));
  for (auto& v : out) v /= z;
}

/// Log-linear weights by Newton's method on the concave log-likelihood
/// L(w) = Σ_n [Σ_t w_t log p_t(x_n) - log Z_n(w)], with ∇L = Σ_n (log p_t(x_n) - E_q[log p_t]) and
/// ∇²L = -Σ_n Cov_q(log p_t, log p_s), q the mixed distribution; steps halved until L increases.
/// Weights start at 1/T each and are kept at or above 0. Outcomes a teacher gives probability 0
/// take log p = log(`floor`) so that every term stays finite.
inline ensemble_fit fit_log_linear(const ensemble_data& d, int max_iterations = 100, double tolerance = 1e-12,
                                   double floor = 1e-300) {
  d.check_fittable();
  const auto T = d.teachers, N = d.positions(), K = d.outcomes;
  const auto lp = [&](std::int64_t n, std::int64_t t, std::int64_t b) {
    return std::log(std::max(d.dist(n, t)[std::size_t(b)], floor));
  };
  std::vector<double> q(static_cast<std::size_t>(K));
  // L, and optionally its gradient and Hessian, at w.
  auto evaluate = [&](const std::vector<double>& w, std::vector<double>* g, std::vector<double>* h) {
    double ll = 0;
    if (g) g->assign(std::size_t(T), 0.0);
    if (h) h->assign(std::size_t(T * T), 0.0);
    std::vector<double> mean(static_cast<std::size_t>(T));
    for (std::int64_t n = 0; n < N; ++n) {
      double top = -std::numeric_limits<double>::infinity();
      for (std::int64_t b = 0; b < K; ++b) {
        double s = 0;
        for (std::int64_t t = 0; t < T; ++t) s += w[std::size_t(t)] * lp(n, t, b);
        q[std::size_t(b)] = s;
        top = std::max(top, s);
      }
      double z = 0;
      for (auto& v : q) z += (v = std::exp(v - top));
      const auto x = d.observed[std::size_t(n)];
      double sx = 0;
      for (std::int64_t t = 0; t < T; ++t) sx += w[std::size_t(t)] * lp(n, t, x);
      ll += sx - top - std::log(z);
      if (!g) continue;
      for (auto& v : q) v /= z;
      for (std::int64_t t = 0; t < T; ++t) {
        double m = 0;
        for (std::int64_t b = 0; b < K; ++b) m += q[std::size_t(b)] * lp(n, t, b);
        mean[std::size_t(t)] = m;
        (*g)[std::size_t(t)] += lp(n, t, x) - m;
      }
      if (!h) continue;
      for (std::int64_t b = 0; b < K; ++b) {
        if (q[std::size_t(b)] == 0) continue;
        for (std::int64_t t = 0; t < T; ++t)
          for (std::int64_t s = 0; s < T; ++s)
            (*h)[std::size_t(t * T + s)] -=
                q[std::size_t(b)] * (lp(n, t, b) - mean[std::size_t(t)]) * (lp(n, s, b) - mean[std::size_t(s)]);
      }
    }
    return ll;
  };
  ensemble_fit f;
  f.weights.assign(std::size_t(T), 1.0 / double(T));
  std::vector<double> g, h;
  double ll = evaluate(f.weights, &g, &h);
  f.trace.push_back(ll);
  for (int it = 0; it < max_iterations; ++it) {
    // The Newton step solves (-H) δ = g, with a small ridge so a flat direction (two identical
    // teachers) stays solvable.
    std::vector<double> a(static_cast<std::size_t>(T * T));
    for (std::int64_t i = 0; i < T * T; ++i) a[std::size_t(i)] = -h[std::size_t(i)];
    for (std::int64_t i = 0; i < T; ++i)
      a[std::size_t(i * T + i)] += 1e-9 * (1.0 + std::abs(a[std::size_t(i * T + i)]));
    const auto delta = cpu::solve(a, g, int(T));
    double step = 1;
    std::vector<double> w(static_cast<std::size_t>(T));
    double next = -std::numeric_limits<double>::infinity();
    for (int halvings = 0; halvings < 40; ++halvings, step /= 2) {
      for (std::int64_t t = 0; t < T; ++t)
        w[std::size_t(t)] = std::max(0.0, f.weights[std::size_t(t)] + step * delta[std::size_t(t)]);
      next = evaluate(w, nullptr, nullptr);
      if (next >= ll) break;
    }
    f.iterations = it + 1;
    if (!(next >= ll)) break;  // no ascent along the Newton direction: at the optimum within rounding
    const double gain = next - ll;
    f.weights = w;
    ll = evaluate(f.weights, &g, &h);
    f.trace.push_back(ll);
    if (gain < tolerance * double(N)) break;
  }
  f.log_likelihood = ll;
  return f;
}

/// Parameters: an exponent per teacher.
struct log_linear_mixture {
  static constexpr std::int64_t parameters(std::int64_t teachers) { return teachers; }
  static void mix(teacher_dists d, std::span<const double> w, std::span<double> out) { mix_log_linear(d, w, out); }
  static ensemble_fit fit(const ensemble_data& d) { return fit_log_linear(d); }
  /// The product of the `teachers` listed: their exponents as they are (the product renormalises).
  static std::vector<double> consulted(std::span<const double> w, std::span<const std::size_t> teachers) {
    std::vector<double> out;
    for (const auto t : teachers) out.push_back(w[t]);
    return out;
  }
  using reader = stateless_reader<log_linear_mixture>;
};

}  // namespace nexus::fusion
