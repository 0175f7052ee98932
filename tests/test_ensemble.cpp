// Ensembling of distributions over one alphabet: the fits recover the weights of data drawn from a
// known ensemble, the likelihood never decreases, and every mixture is a normalised distribution.
#include <catch2/catch.hpp>
#include <numeric>
#include <random>

#include "nexus/fusion/mixtures/kinds.hpp"

using namespace nexus::fusion;

namespace {

std::vector<double> random_dist(std::mt19937_64& rng, int k, double sharpness) {
  std::gamma_distribution<double> g(sharpness, 1.0);
  std::vector<double> p(static_cast<std::size_t>(k));
  double s = 0;
  for (auto& v : p) s += (v = g(rng) + 1e-12);
  for (auto& v : p) v /= s;
  return p;
}

std::int32_t draw(std::mt19937_64& rng, std::span<const double> p) {
  std::discrete_distribution<std::int32_t> d(p.begin(), p.end());
  return d(rng);
}

std::vector<std::span<const double>> spans(const std::vector<std::vector<double>>& v) { return {v.begin(), v.end()}; }

}  // namespace

TEST_CASE("ensemble: EM recovers the weights of a linear mixture and never loses likelihood", "[ensemble]") {
  std::mt19937_64 rng(11);
  const int K = 257, N = 20000;
  const std::vector<double> truth = {0.2, 0.5, 0.3};
  ensemble_data d{3, K, {}, {}};
  std::vector<std::vector<double>> p(3);
  std::vector<double> mixed(K), all;
  for (int n = 0; n < N; ++n) {
    all.clear();
    for (int t = 0; t < 3; ++t) {
      p[std::size_t(t)] = random_dist(rng, K, 0.05);  // peaked, different at every position
      all.insert(all.end(), p[std::size_t(t)].begin(), p[std::size_t(t)].end());
    }
    mix_linear(spans(p), truth, mixed);
    d.add(all, draw(rng, mixed));
  }
  const auto f = fit_linear_mixture(d);
  for (std::size_t i = 1; i < f.trace.size(); ++i) CHECK(f.trace[i] >= f.trace[i - 1] - 1e-9);
  // With peaked, nearly disjoint teachers each position mostly reveals its component: the estimate's
  // standard deviation is about sqrt(w(1-w)/N) < 0.004; allow 5 of them.
  for (std::size_t t = 0; t < 3; ++t) CHECK(std::abs(f.weights[t] - truth[t]) < 0.02);
  CHECK(std::accumulate(f.weights.begin(), f.weights.end(), 0.0) == Approx(1.0).epsilon(1e-12));
  // The optimum's condition for weights inside the simplex: mean_n p_t(x_n) / mix(x_n) = 1 for every t.
  for (std::int64_t t = 0; t < 3; ++t) {
    double m = 0;
    for (std::int64_t n = 0; n < d.positions(); ++n) {
      double mix = 0;
      for (std::int64_t s = 0; s < 3; ++s)
        mix += f.weights[std::size_t(s)] * d.dist(n, s)[std::size_t(d.observed[std::size_t(n)])];
      m += d.dist(n, t)[std::size_t(d.observed[std::size_t(n)])] / mix;
    }
    CHECK(m / double(N) == Approx(1.0).epsilon(1e-6));
  }
}

TEST_CASE("ensemble: the log-linear mixture is normalised exactly and its fit recovers the exponents", "[ensemble]") {
  std::mt19937_64 rng(5);
  const int K = 257, N = 8000;
  const std::vector<double> truth = {0.7, 1.3};
  ensemble_data d{2, K, {}, {}};
  std::vector<std::vector<double>> p(2);
  std::vector<double> mixed(K), all;
  for (int n = 0; n < N; ++n) {
    all.clear();
    for (int t = 0; t < 2; ++t) {
      p[std::size_t(t)] = random_dist(rng, K, 0.3);
      all.insert(all.end(), p[std::size_t(t)].begin(), p[std::size_t(t)].end());
    }
    mix_log_linear(spans(p), truth, mixed);
    if (n < 50) {  // against the product computed directly, normalised by its plain sum
      std::vector<double> direct(static_cast<std::size_t>(K));
      double z = 0;
      for (int b = 0; b < K; ++b)
        z += (direct[std::size_t(b)] =
                  std::pow(p[0][std::size_t(b)], truth[0]) * std::pow(p[1][std::size_t(b)], truth[1]));
      double sum = 0;
      for (int b = 0; b < K; ++b) {
        sum += mixed[std::size_t(b)];
        CHECK(mixed[std::size_t(b)] == Approx(direct[std::size_t(b)] / z).epsilon(1e-10).margin(1e-300));
      }
      CHECK(sum == Approx(1.0).epsilon(1e-12));
    }
    d.add(all, draw(rng, mixed));
  }
  const auto f = fit_log_linear(d);
  for (std::size_t i = 1; i < f.trace.size(); ++i) CHECK(f.trace[i] >= f.trace[i - 1] - 1e-9);
  CHECK(std::abs(f.weights[0] - truth[0]) < 0.1);
  CHECK(std::abs(f.weights[1] - truth[1]) < 0.1);
  // The fit is the maximum: no better than it at the true exponents or at equal ones.
  auto ll_at = [&](std::vector<double> w) {
    double ll = 0;
    std::vector<std::span<const double>> ds(2);
    for (std::int64_t n = 0; n < d.positions(); ++n) {
      ds = {d.dist(n, 0), d.dist(n, 1)};
      mix_log_linear(ds, w, mixed);
      ll += std::log(mixed[std::size_t(d.observed[std::size_t(n)])]);
    }
    return ll;
  };
  CHECK(f.log_likelihood == Approx(ll_at(f.weights)).epsilon(1e-9));
  CHECK(f.log_likelihood >= ll_at(truth) - 1e-6);
  CHECK(f.log_likelihood >= ll_at({0.5, 0.5}) - 1e-6);
}

TEST_CASE("ensemble: the entropy gate follows the most certain teacher as the temperature falls", "[ensemble]") {
  const std::vector<std::vector<double>> p = {{0.97, 0.01, 0.01, 0.01}, {0.25, 0.25, 0.25, 0.25}};
  std::vector<double> out(4);
  mix_entropy_gate(spans(p), 1e-3, out);
  CHECK(out[0] == Approx(0.97).epsilon(1e-9));
  mix_entropy_gate(spans(p), 1e6, out);  // hot: an even average
  CHECK(out[0] == Approx((0.97 + 0.25) / 2).epsilon(1e-5));
  CHECK(std::accumulate(out.begin(), out.end(), 0.0) == Approx(1.0).epsilon(1e-12));
  CHECK(entropy(p[1]) == Approx(std::log(4.0)));

  // With the same two teachers at every position the gate is a linear mixture whose weight τ sets
  // (g_0 = 1 / (1 + exp(-ΔH / τ)), between 1/2 and 1): fitted on data drawn from the certain teacher, it
  // must reach the likelihood of the EM optimum.
  std::mt19937_64 rng(3);
  ensemble_data d{2, 4, {}, {}};
  for (int n = 0; n < 2000; ++n) {
    std::vector<double> all = p[0];
    all.insert(all.end(), p[1].begin(), p[1].end());
    d.add(all, draw(rng, p[0]));
  }
  const auto f = fit_entropy_gate(d);
  const auto em = fit_linear_mixture(d);
  REQUIRE(em.weights[0] > 0.5);
  CHECK(f.log_likelihood == Approx(em.log_likelihood).epsilon(1e-9));
  const double g0 = 1 / (1 + std::exp(-(entropy(p[1]) - entropy(p[0])) / f.weights.at(0)));
  CHECK(g0 == Approx(em.weights[0]).epsilon(1e-3));
}

TEST_CASE("ensemble: wrong sizes and impossible data are usage errors", "[ensemble]") {
  ensemble_data d{2, 3, {}, {}};
  const std::vector<double> five(5, 0.2), six = {1, 0, 0, 1, 0, 0};
  CHECK_THROWS_AS(d.add(five, 0), nexus::usage_error);
  CHECK_THROWS_AS(d.add(six, 3), nexus::usage_error);
  CHECK_THROWS_AS(fit_linear_mixture(d), nexus::usage_error);  // no positions
  d.add(six, 1);                                               // both teachers say outcome 1 is impossible
  CHECK_THROWS_AS(fit_linear_mixture(d), nexus::usage_error);
  const std::vector<std::vector<double>> p = {{1, 0}, {0, 1}};
  std::vector<double> out(2);
  CHECK_THROWS_AS(mix_log_linear(spans(p), std::vector<double>{1, 1}, out), nexus::usage_error);
  CHECK_THROWS_AS(mix_linear(spans(p), std::vector<double>{1}, out), nexus::usage_error);
  CHECK_THROWS_AS(mix_entropy_gate(spans(p), 0.0, out), nexus::usage_error);
}

TEST_CASE("ensemble: fixed share is Bayes' rule over the teachers (α 0) and the prior mixture (α 1)", "[ensemble]") {
  std::mt19937_64 rng(23);
  const int K = 17, N = 40;
  const std::vector<double> prior = {0.3, 0.7};
  ensemble_data d{2, K, {}, {}};
  std::vector<std::vector<double>> p(2);
  std::vector<double> all;
  // Two documents of N positions; in the second, teacher 0 is the one the data follows.
  for (int doc = 0; doc < 2; ++doc) {
    d.begin_document();
    for (int n = 0; n < N; ++n) {
      all.clear();
      for (int t = 0; t < 2; ++t) {
        p[std::size_t(t)] = random_dist(rng, K, 0.3);
        all.insert(all.end(), p[std::size_t(t)].begin(), p[std::size_t(t)].end());
      }
      d.add(all, draw(rng, p[doc == 0 ? 1 : 0]));
    }
  }
  // Reading a document with α = 0 gives log Σ_t w_t Π_n p_t(x_n): the chain rule of the Bayesian mixture.
  auto read = [&](double alpha, bool linear) {
    double total = 0;
    for (int doc = 0; doc < 2; ++doc) {
      fixed_share_state st(std::vector<double>{prior[0], prior[1], alpha});
      double ll = 0;
      std::vector<std::span<const double>> s(2);
      for (int n = doc * N; n < (doc + 1) * N; ++n) {
        for (int t = 0; t < 2; ++t) s[std::size_t(t)] = d.dist(n, t);
        const auto x = std::size_t(d.observed[std::size_t(n)]);
        const auto& w = linear ? prior : st.weights();
        ll += std::log(w[0] * s[0][x] + w[1] * s[1][x]);
        st.observe(s, x);
      }
      total += ll;
    }
    return total;
  };
  double bayes = 0;
  for (int doc = 0; doc < 2; ++doc) {
    double l0 = 0, l1 = 0;
    for (int n = doc * N; n < (doc + 1) * N; ++n) {
      const auto x = std::size_t(d.observed[std::size_t(n)]);
      l0 += std::log(d.dist(n, 0)[x]), l1 += std::log(d.dist(n, 1)[x]);
    }
    const double top = std::max(l0, l1);
    bayes += top + std::log(prior[0] * std::exp(l0 - top) + prior[1] * std::exp(l1 - top));
  }
  CHECK(read(0.0, false) == Approx(bayes).epsilon(1e-12));
  CHECK(read(1.0, false) == Approx(read(0.0, true)).epsilon(1e-12));  // α 1: the prior at every byte
  // The fit restarts at each document and is at least as good as both ends of its search.
  const auto f = fit_fixed_share(d);
  REQUIRE(f.weights.size() == 3);
  const auto fitted_prior = fit_linear_mixture(d).weights;
  CHECK(f.weights[0] == Approx(fitted_prior[0]));
  auto at = [&](double alpha) {
    auto w = fitted_prior;
    w.push_back(alpha);
    fixed_share_state st(w);
    double ll = 0;
    std::vector<std::span<const double>> s(2);
    for (int n = 0; n < 2 * N; ++n) {
      if (n == N) st.reset();
      for (int t = 0; t < 2; ++t) s[std::size_t(t)] = d.dist(n, t);
      const auto x = std::size_t(d.observed[std::size_t(n)]);
      ll += std::log(st.weights()[0] * s[0][x] + st.weights()[1] * s[1][x]);
      st.observe(s, x);
    }
    return ll;
  };
  CHECK(f.log_likelihood == Approx(at(f.weights[2])).epsilon(1e-12));
  CHECK(f.log_likelihood >= at(0.5) - 1e-9);
  CHECK(f.log_likelihood >= at(1e-6) - 1e-9);
  CHECK_THROWS_AS(fixed_share_state(std::vector<double>{0.5, 0.5, 2.0}), nexus::usage_error);
}
