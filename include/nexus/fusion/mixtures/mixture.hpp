// Combining several teachers' next-outcome distributions over one shared alphabet (on the byte level:
// the 256 bytes plus end-of-text, so teachers of different tokenizers are directly comparable):
//   linear       p(b) = Σ_t w_t p_t(b), weights fitted on a development text by EM (each step in
//                closed form: responsibilities, then their means; the likelihood never decreases);
//   log_linear   p(b) ∝ Π_t p_t(b)^{w_t} (a product of experts), normalised exactly over the
//                alphabet; weights fitted by Newton's method (the log-likelihood is concave in w);
//   entropy_gate p(b) = Σ_t g_t p_t(b), g_t ∝ exp(-H_t / τ) per position from each teacher's own
//                entropy H_t, so the most certain teacher leads; τ fitted by golden-section search;
//   fixed_share  p(b) = Σ_t v_t p_t(b) with v the posterior over teachers given the document so far,
//                leaking a share α back to the prior after each byte (Herbster & Warmuth's fixed share):
//                v ← (1-α)·(v ⊙ p(x) / Σ v p(x)) + α·w. Within log T / n bits per byte of the best
//                teacher for the document (α = 0), and able to switch inside it; the prior w by EM (as
//                linear), α by golden-section search over log α, documents read from their starts.
// Everything in fp64; distributions are rows of `outcomes` probabilities.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "nexus/core/error.hpp"

namespace nexus::fusion {

/// What a fit reads: at each position of a development text, every teacher's distribution over the
/// alphabet, and the outcome that followed.
struct ensemble_data {
  std::int64_t teachers = 0, outcomes = 0;
  std::vector<double> prob;               // [positions][teachers][outcomes]
  std::vector<std::int32_t> observed;     // [positions]
  std::vector<std::int64_t> starts = {};  // positions where a document starts (none: one document)

  std::int64_t positions() const { return std::int64_t(observed.size()); }
  /// The positions added next start a new document (fixed_share restarts from its prior there).
  void begin_document() { starts.push_back(positions()); }
  std::span<const double> dist(std::int64_t n, std::int64_t t) const {
    return std::span(prob).subspan(std::size_t((n * teachers + t) * outcomes), std::size_t(outcomes));
  }
  /// Appends one position; `dists` holds the teachers' distributions one after another.
  void add(std::span<const double> dists, std::int32_t next) {
    if (std::int64_t(dists.size()) != teachers * outcomes)
      throw usage_error("ensemble", std::to_string(dists.size()) + " probabilities for " + std::to_string(teachers) +
                                        " teachers of " + std::to_string(outcomes) + " outcomes");
    if (next < 0 || next >= outcomes)
      throw usage_error("ensemble", "outcome " + std::to_string(next) + " outside the alphabet");
    prob.insert(prob.end(), dists.begin(), dists.end());
    observed.push_back(next);
  }
};

struct ensemble_fit {
  std::vector<double> weights;  // per teacher (linear, log_linear); {τ} for entropy_gate
  double log_likelihood = 0;    // of the development data under the fitted ensemble (nats)
  std::vector<double> trace;    // the log-likelihood after each iteration
  int iterations = 0;
};

namespace detail {
inline void check_weights(std::span<const double> w, std::int64_t teachers) {
  if (std::int64_t(w.size()) != teachers)
    throw usage_error("ensemble", std::to_string(w.size()) + " weights for " + std::to_string(teachers) + " teachers");
}
/// The argument of the maximum of a unimodal `f` on [a, b] by golden-section search; records the
/// trace, the iterations and the best value in `fit`.
template <class F>
double golden_section_max(F&& f, double a, double b, int iterations, ensemble_fit& fit) {
  const double r = (std::sqrt(5.0) - 1) / 2;
  double c = b - r * (b - a), e = a + r * (b - a), fc = f(c), fe = f(e);
  for (int it = 0; it < iterations; ++it) {
    if (fc > fe) b = e, e = c, fe = fc, c = b - r * (b - a), fc = f(c);
    else a = c, c = e, fc = fe, e = a + r * (b - a), fe = f(e);
    fit.trace.push_back(std::max(fc, fe));
    fit.iterations = it + 1;
  }
  fit.log_likelihood = std::max(fc, fe);
  return fc > fe ? c : e;
}
/// w·log p with 0·log 0 = 0 (a teacher of weight 0 does not veto an outcome).
inline double weighted_log(double w, double p) { return w == 0 ? 0.0 : w * std::log(p); }
}  // namespace detail

/// Σ_t w_t p_t into `out`.
inline void mix_linear(std::span<const std::span<const double>> dists, std::span<const double> w,
                       std::span<double> out) {
  detail::check_weights(w, std::int64_t(dists.size()));
  std::fill(out.begin(), out.end(), 0.0);
  for (std::size_t t = 0; t < dists.size(); ++t)
    for (std::size_t b = 0; b < out.size(); ++b) out[b] += w[t] * dists[t][b];
}

/// Π_t p_t^{w_t}, normalised over the alphabet (in the log domain, so tiny products do not underflow).
/// An outcome some teacher of positive weight gives probability 0 gets 0.
inline void mix_log_linear(std::span<const std::span<const double>> dists, std::span<const double> w,
                           std::span<double> out) {
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

/// The entropy (nats) of a distribution.
inline double entropy(std::span<const double> p) {
  double h = 0;
  for (const double v : p)
    if (v > 0) h -= v * std::log(v);
  return h;
}

/// Per-position gates g_t ∝ exp(-H_t / τ), then Σ_t g_t p_t.
inline void mix_entropy_gate(std::span<const std::span<const double>> dists, double tau, std::span<double> out) {
  if (!(tau > 0)) throw usage_error("ensemble", "entropy gate temperature must be positive");
  std::vector<double> g(dists.size());
  double low = std::numeric_limits<double>::infinity();
  for (std::size_t t = 0; t < dists.size(); ++t) low = std::min(low, g[t] = entropy(dists[t]));
  double z = 0;
  for (auto& v : g) z += (v = std::exp(-(v - low) / tau));
  for (auto& v : g) v /= z;
  mix_linear(dists, g, out);
}

/// Linear-mixture weights by EM from uniform: r_tn = w_t p_t(x_n) / Σ_s w_s p_s(x_n), w_t = mean_n r_tn.
/// Stops when the log-likelihood gains less than `tolerance` per position.
inline ensemble_fit fit_linear_mixture(const ensemble_data& d, int max_iterations = 500, double tolerance = 1e-12) {
  const auto T = d.teachers, N = d.positions();
  if (T < 1 || N < 1) throw usage_error("ensemble", "nothing to fit: " + std::to_string(N) + " positions");
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

/// Log-linear weights by Newton's method on the concave log-likelihood
/// L(w) = Σ_n [Σ_t w_t log p_t(x_n) - log Z_n(w)], with ∇L = Σ_n (log p_t(x_n) - E_q[log p_t]) and
/// ∇²L = -Σ_n Cov_q(log p_t, log p_s), q the mixed distribution; steps halved until L increases.
/// Weights start at 1/T each and are kept at or above 0. Outcomes a teacher gives probability 0
/// take log p = log(`floor`) so that every term stays finite.
inline ensemble_fit fit_log_linear(const ensemble_data& d, int max_iterations = 100, double tolerance = 1e-12,
                                   double floor = 1e-300) {
  const auto T = d.teachers, N = d.positions(), K = d.outcomes;
  if (T < 1 || N < 1) throw usage_error("ensemble", "nothing to fit: " + std::to_string(N) + " positions");
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
    // Solve (-H) δ = g by Gaussian elimination with partial pivoting (T is the number of teachers),
    // with a small ridge so a flat direction (two identical teachers) stays solvable.
    std::vector<double> a(static_cast<std::size_t>(T * T)), delta = g;
    for (std::int64_t i = 0; i < T * T; ++i) a[std::size_t(i)] = -h[std::size_t(i)];
    for (std::int64_t i = 0; i < T; ++i)
      a[std::size_t(i * T + i)] += 1e-9 * (1.0 + std::abs(a[std::size_t(i * T + i)]));
    for (std::int64_t c = 0; c < T; ++c) {
      std::int64_t p = c;
      for (std::int64_t r = c + 1; r < T; ++r)
        if (std::abs(a[std::size_t(r * T + c)]) > std::abs(a[std::size_t(p * T + c)])) p = r;
      for (std::int64_t k = 0; k < T; ++k) std::swap(a[std::size_t(c * T + k)], a[std::size_t(p * T + k)]);
      std::swap(delta[std::size_t(c)], delta[std::size_t(p)]);
      for (std::int64_t r = c + 1; r < T; ++r) {
        const double m = a[std::size_t(r * T + c)] / a[std::size_t(c * T + c)];
        for (std::int64_t k = c; k < T; ++k) a[std::size_t(r * T + k)] -= m * a[std::size_t(c * T + k)];
        delta[std::size_t(r)] -= m * delta[std::size_t(c)];
      }
    }
    for (std::int64_t c = T - 1; c >= 0; --c) {
      for (std::int64_t k = c + 1; k < T; ++k)
        delta[std::size_t(c)] -= a[std::size_t(c * T + k)] * delta[std::size_t(k)];
      delta[std::size_t(c)] /= a[std::size_t(c * T + c)];
    }
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

/// The entropy gate's temperature τ by golden-section search of the log-likelihood over log τ in
/// [log `lo`, log `hi`]; weights = {τ}.
inline ensemble_fit fit_entropy_gate(const ensemble_data& d, double lo = 1e-3, double hi = 1e3, int iterations = 60) {
  const auto T = d.teachers, N = d.positions();
  if (T < 1 || N < 1) throw usage_error("ensemble", "nothing to fit: " + std::to_string(N) + " positions");
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
  const double best = detail::golden_section_max(ll_at, std::log(lo), std::log(hi), iterations, f);
  f.weights = {std::exp(best)};
  return f;
}

/// The running weights of a fixed-share mixture over one document.
class fixed_share_state {
 public:
  /// `params`: the prior weights (one per teacher), then α.
  explicit fixed_share_state(std::span<const double> params) : prior_(params.begin(), params.end() - 1) {
    if (params.size() < 2) throw usage_error("ensemble", "fixed share needs a prior weight per teacher and α");
    alpha_ = params.back();
    if (!(alpha_ >= 0 && alpha_ <= 1)) throw usage_error("ensemble", "fixed share α must be in [0, 1]");
    reset();
  }
  void reset() { v_ = prior_; }
  const std::vector<double>& weights() const noexcept { return v_; }
  /// Bayes' rule on the observed outcome, then the share back to the prior.
  void observe(std::span<const std::span<const double>> dists, std::size_t outcome) {
    double z = 0;
    for (std::size_t t = 0; t < v_.size(); ++t) z += (v_[t] *= dists[t][outcome]);
    if (!(z > 0)) {  // every teacher ruled the outcome out: nothing to learn from it
      reset();
      return;
    }
    for (std::size_t t = 0; t < v_.size(); ++t) v_[t] = (1 - alpha_) * v_[t] / z + alpha_ * prior_[t];
  }

 private:
  std::vector<double> prior_, v_;
  double alpha_ = 0;
};

/// Fixed-share parameters: the prior by EM (fit_linear_mixture), then α by golden-section search of
/// the log-likelihood over log α in [log `lo`, log `hi`], each document read from its start.
inline ensemble_fit fit_fixed_share(const ensemble_data& d, double lo = 1e-6, double hi = 0.5, int iterations = 40) {
  const auto T = d.teachers, N = d.positions();
  const auto prior = fit_linear_mixture(d).weights;
  std::vector<std::span<const double>> dists(static_cast<std::size_t>(T));
  auto ll_at = [&](double log_alpha) {
    auto params = prior;
    params.push_back(std::exp(log_alpha));
    fixed_share_state st(params);
    double ll = 0;
    std::size_t next_start = 0;
    for (std::int64_t n = 0; n < N; ++n) {
      while (next_start < d.starts.size() && d.starts[next_start] <= n)
        if (d.starts[next_start++] == n) st.reset();
      for (std::int64_t t = 0; t < T; ++t) dists[std::size_t(t)] = d.dist(n, t);
      const auto x = std::size_t(d.observed[std::size_t(n)]);
      double p = 0;
      for (std::int64_t t = 0; t < T; ++t) p += st.weights()[std::size_t(t)] * dists[std::size_t(t)][x];
      ll += std::log(p);
      st.observe(dists, x);
    }
    return ll;
  };
  ensemble_fit f;
  const double best = detail::golden_section_max(ll_at, std::log(lo), std::log(hi), iterations, f);
  f.weights = prior;
  f.weights.push_back(std::exp(best));
  return f;
}

}  // namespace nexus::fusion
