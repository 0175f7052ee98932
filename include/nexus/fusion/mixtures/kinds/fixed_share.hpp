// The fixed-share mixture p(b) = Σ_t v_t p_t(b) with v the posterior over teachers given the document
// so far, leaking a share α back to the prior after each byte (Herbster & Warmuth's fixed share):
// v ← (1-α)·(v ⊙ p(x) / Σ v p(x)) + α·w. Within log T / n bits per byte of the best teacher for the
// document (α = 0), and able to switch inside it; the prior w by EM (as linear), α by golden-section
// search over log α, documents read from their starts.
#pragma once

#include "nexus/fusion/mixtures/kinds/linear.hpp"
#include "nexus/fusion/mixtures/mixture.hpp"

namespace nexus::fusion {

/// The running weights of a fixed-share mixture over one document.
class fixed_share_state {
 public:
  /// `params`: the prior weights (one per teacher), then α.
  explicit fixed_share_state(std::span<const double> params) {
    if (params.size() < 2) throw usage_error("ensemble", "fixed share needs a prior weight per teacher and α");
    prior_.assign(params.begin(), params.end() - 1);
    alpha_ = params.back();
    if (!(alpha_ >= 0 && alpha_ <= 1)) throw usage_error("ensemble", "fixed share α must be in [0, 1]");
    reset();
  }
  void reset() { v_ = prior_; }
  const std::vector<double>& weights() const noexcept { return v_; }
  /// The linear mixture under the current weights.
  void mix(teacher_dists dists, std::span<double> out) const { mix_linear(dists, v_, out); }
  /// Bayes' rule on the observed outcome, then the share back to the prior.
  void observe(teacher_dists dists, std::size_t outcome) {
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
  const double best = golden_section_max(ll_at, std::log(lo), std::log(hi), iterations, f);
  f.weights = prior;
  f.weights.push_back(std::exp(best));
  return f;
}

/// Parameters: the prior weight of each teacher, then α.
struct fixed_share_mixture {
  static constexpr std::int64_t parameters(std::int64_t teachers) { return teachers + 1; }
  static ensemble_fit fit(const ensemble_data& d) { return fit_fixed_share(d); }
  /// The `teachers` listed, each position read alone (a cascade's stages): the linear mixture of
  /// their prior renormalised, which is what a reader fresh at every position mixes.
  static std::vector<double> consulted(std::span<const double> p, std::span<const std::size_t> teachers) {
    auto out = detail::renormalised(p.first(p.size() - 1), teachers);
    out.push_back(p.back());
    return out;
  }
  using reader = fixed_share_state;
};

}  // namespace nexus::fusion
