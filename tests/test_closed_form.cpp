// Closed-form maps (fusion/maps/closed_form.hpp) and their statistics (fusion/maps/pair_statistics.hpp) on
// synthetic pairs whose answer is known by construction: the statistics against a two-pass long
// double reference and independent of how rows are split; ridge recovers W within the noise's
// standard errors and its held-out R² from statistics equals R² on the rows; Procrustes recovers a
// rotation and a scale; CCA the correlations a covariance was built with; Sinkhorn a hidden
// permutation, with its marginals.
#include <catch2/catch.hpp>

#include <random>

#include "nexus/fusion/maps/closed_form.hpp"

using namespace nexus;
using namespace nexus::fusion;

namespace {

std::vector<float> gaussian(std::mt19937_64& rng, std::int64_t n, double sd = 1.0, double mean = 0.0) {
  std::normal_distribution<double> nd(mean, sd);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = float(nd(rng));
  return v;
}

std::vector<double> gaussian_d(std::mt19937_64& rng, std::int64_t n) {
  std::normal_distribution<double> nd(0, 1);
  std::vector<double> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = nd(rng);
  return v;
}

/// A random orthogonal d × d matrix: U Vᵀ of a Gaussian matrix's SVD.
std::vector<double> random_orthogonal(std::mt19937_64& rng, int d) {
  const auto s = cpu::svd(gaussian_d(rng, std::int64_t(d) * d), d, d);
  return fusion::detail::matmul(false, false, d, d, d, s.u, s.vt);
}

/// y = W x + b for float rows, in double, rounded to float.
std::vector<float> affine(const std::vector<float>& x, std::int64_t rows, const std::vector<double>& w,
                          const std::vector<double>& b, std::int64_t din, std::int64_t dout) {
  std::vector<float> y(static_cast<std::size_t>(rows * dout));
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t o = 0; o < dout; ++o) {
      double s = b[std::size_t(o)];
      for (std::int64_t i = 0; i < din; ++i) s += w[std::size_t(o * din + i)] * x[std::size_t(r * din + i)];
      y[std::size_t(r * dout + o)] = float(s);
    }
  return y;
}

std::span<const float> rows_of(const std::vector<float>& v, std::int64_t first, std::int64_t count, std::int64_t d) {
  return std::span<const float>(v).subspan(std::size_t(first * d), std::size_t(count * d));
}

}  // namespace

TEST_CASE("pair statistics: centred moments against a two-pass reference, independent of the split") {
  std::mt19937_64 rng(1);
  const std::int64_t n = 1500, dx = 7, dy = 5;
  auto x = gaussian(rng, n * dx, 3.0, 1000.0);  // a large mean, as hidden states have
  auto y = gaussian(rng, n * dy, 0.5, -40.0);
  for (std::int64_t r = 0; r < n; ++r) y[std::size_t(r * dy)] += 0.3f * x[std::size_t(r * dx + 2)];

  pair_statistics one(dx, dy);
  one.add(x, y, n);
  // Reference: means, then centred sums, in long double.
  std::vector<long double> mx(dx, 0), my(dy, 0);
  for (std::int64_t r = 0; r < n; ++r) {
    for (std::int64_t i = 0; i < dx; ++i) mx[std::size_t(i)] += x[std::size_t(r * dx + i)];
    for (std::int64_t j = 0; j < dy; ++j) my[std::size_t(j)] += y[std::size_t(r * dy + j)];
  }
  for (auto& v : mx) v /= n;
  for (auto& v : my) v /= n;
  for (std::int64_t i = 0; i < dx; ++i) CHECK(double(mx[std::size_t(i)]) == Approx(one.mean_x()[i]).epsilon(1e-14));
  for (std::int64_t i = 0; i < dx; ++i)
    for (std::int64_t j = 0; j < dy; ++j) {
      long double c = 0, cxx = 0;
      for (std::int64_t r = 0; r < n; ++r) {
        const long double xi = x[std::size_t(r * dx + i)] - mx[std::size_t(i)];
        c += xi * (y[std::size_t(r * dy + j)] - my[std::size_t(j)]);
        cxx += xi * (x[std::size_t(r * dx + j)] - mx[std::size_t(j)]);
      }
      CHECK(one.comoment_xy()[std::size_t(i * dy + j)] == Approx(double(c)).epsilon(1e-10).margin(1e-9));
      CHECK(one.comoment_xx()[std::size_t(i * dx + j)] == Approx(double(cxx)).epsilon(1e-10).margin(1e-9));
    }
  // Raw moments follow: XᵀX[0][0] = Σ x0².
  long double raw = 0;
  for (std::int64_t r = 0; r < n; ++r) raw += (long double)x[std::size_t(r * dx)] * x[std::size_t(r * dx)];
  CHECK(one.raw_xx()[0] == Approx(double(raw)).epsilon(1e-12));

  // Uneven batches, and three shards merged in another order: the same numbers within fp64 rounding.
  pair_statistics batched(dx, dy);
  std::int64_t at = 0;
  for (std::int64_t size : {1, 13, 200, 7, 500}) {
    batched.add(rows_of(x, at, size, dx), rows_of(y, at, size, dy), size);
    at += size;
  }
  batched.add(rows_of(x, at, n - at, dx), rows_of(y, at, n - at, dy), n - at);
  pair_statistics s1(dx, dy), s2(dx, dy), s3(dx, dy);
  s1.add(rows_of(x, 0, 400, dx), rows_of(y, 0, 400, dy), 400);
  s2.add(rows_of(x, 400, 1, dx), rows_of(y, 400, 1, dy), 1);
  s3.add(rows_of(x, 401, n - 401, dx), rows_of(y, 401, n - 401, dy), n - 401);
  s3.merge(s1);
  s3.merge(s2);
  for (const auto* s : {&batched, &s3}) {
    REQUIRE(s->count() == n);
    for (std::size_t i = 0; i < one.mean_x().size(); ++i)
      CHECK(s->mean_x()[i] == Approx(one.mean_x()[i]).epsilon(1e-14));
    for (std::size_t i = 0; i < one.comoment_xx().size(); ++i)
      CHECK(s->comoment_xx()[i] == Approx(one.comoment_xx()[i]).epsilon(1e-11).margin(1e-8));
    for (std::size_t i = 0; i < one.comoment_xy().size(); ++i)
      CHECK(s->comoment_xy()[i] == Approx(one.comoment_xy()[i]).epsilon(1e-11).margin(1e-8));
    for (std::size_t i = 0; i < one.comoment_yy().size(); ++i)
      CHECK(s->comoment_yy()[i] == Approx(one.comoment_yy()[i]).epsilon(1e-11).margin(1e-8));
  }
  CHECK_THROWS_AS(one.add(x, y, n - 1), usage_error);
  CHECK_THROWS_AS(one.merge(pair_statistics(dx, dy + 1)), usage_error);
}

TEST_CASE("ridge: Y = XW + noise recovers W within the noise's standard errors; held-out R² from statistics") {
  std::mt19937_64 rng(2);
  const std::int64_t n = 4000, nt = 3000, dx = 8, dy = 6;
  const double sigma = 0.1;
  auto x = gaussian(rng, n * dx);
  for (std::int64_t r = 0; r < n; ++r) x[std::size_t(r * dx + 1)] += 0.8f * x[std::size_t(r * dx)];  // correlated
  const auto w = gaussian_d(rng, dy * dx), b = gaussian_d(rng, dy);
  auto y = affine(x, n, w, b, dx, dy);
  const auto noise = gaussian(rng, n * dy, sigma);
  for (std::size_t i = 0; i < y.size(); ++i) y[i] += noise[i];
  pair_statistics train(dx, dy), held(dx, dy);
  train.add(rows_of(x, 0, nt, dx), rows_of(y, 0, nt, dy), nt);
  held.add(rows_of(x, nt, n - nt, dx), rows_of(y, nt, n - nt, dy), n - nt);
  const auto fit = fit_ridge(train, held);
  REQUIRE(fit.grid.size() == default_ridge_grid().size());
  // Standard errors of least squares: sd(Ŵ_jk) = σ·sqrt([(Xcᵀ Xc)⁻¹]_kk).
  const auto e = cpu::eigen_symmetric(train.comoment_xx(), int(dx));
  const auto inv = fusion::detail::spectral(e, dx, [](double v) { return 1.0 / v; });
  double worst = 0;
  for (std::int64_t j = 0; j < dy; ++j)
    for (std::int64_t k = 0; k < dx; ++k) {
      const double se = sigma * std::sqrt(inv[std::size_t(k * dx + k)]);
      const double z = std::abs(fit.map.w[std::size_t(j * dx + k)] - w[std::size_t(j * dx + k)]) / se;
      worst = std::max(worst, z);
    }
  INFO("largest error in standard errors: " << worst << ", λ " << fit.lambda);
  CHECK(worst < 5.0);
  CHECK(worst > 0.05);  // the noise is really there: an exact W would mean the test data lost it
  // The held-out R² the fit computed from statistics is the R² of its map on the held-out rows.
  quality_accumulator q(fit.map);
  q.add(rows_of(x, nt, n - nt, dx), rows_of(y, nt, n - nt, dy), n - nt);
  CHECK(q.result().r2 == Approx(fit.heldout_r2).epsilon(1e-9));
  for (std::size_t i = 0; i < fit.grid.size(); ++i) CHECK(fit.r2[i] <= fit.heldout_r2 + 1e-15);
  // A large λ is worse here (the noise is small), so the choice is not the largest one.
  CHECK(fit.lambda < fit.grid.back());
  CHECK(fit.r2.back() < fit.heldout_r2 - 1e-3);
  // And the map predicts: mean cosine near 1, relative error near the noise level.
  CHECK(q.result().cosine > 0.99);
  CHECK_THROWS_AS(fit_ridge(train, pair_statistics(dx, dy)), usage_error);
}

TEST_CASE("Procrustes: a random rotation and scale recovered to 1e-10; semi-orthogonal across widths") {
  std::mt19937_64 rng(3);
  const int d = 6;
  const std::int64_t n = 300;
  const auto r = random_orthogonal(rng, d);
  std::vector<double> w(r.size()), b = {1, -2, 3, 0.5, 0, 7};
  for (std::size_t i = 0; i < r.size(); ++i) w[i] = 2.5 * r[i];
  // y = W x + b exactly: its moments follow from those of x (rows of y in float would round them).
  auto x = gaussian(rng, n * d);
  for (auto& v : x) v = std::round(v * 8) / 8;
  pair_statistics sx(d, d);
  sx.add(x, x, n);  // Cxx; Cxy of y = W x + b is Cxx Wᵀ exactly
  const auto cxy = fusion::detail::matmul(false, true, d, d, d, sx.comoment_xx(), w);
  const auto cyy = fusion::detail::matmul(false, true, d, d, d, w, cxy);
  std::vector<double> my = b;
  for (int o = 0; o < d; ++o)
    for (int i = 0; i < d; ++i) my[std::size_t(o)] += w[std::size_t(o * d + i)] * sx.mean_x()[std::size_t(i)];
  const auto s = pair_statistics::from_moments(n, sx.mean_x(), my, sx.comoment_xx(), cxy, cyy);
  const auto fit = fit_procrustes(s);
  CHECK(fit.scale == Approx(2.5).epsilon(1e-12));
  for (std::size_t i = 0; i < w.size(); ++i) CHECK(std::abs(fit.map.w[i] - w[i]) < 1e-10);
  for (int o = 0; o < d; ++o) CHECK(std::abs(fit.map.b[std::size_t(o)] - b[std::size_t(o)]) < 1e-10);

  // Widths 6 -> 4 and 4 -> 6: W/s has orthonormal rows, resp. columns.
  for (auto [dx, dy] : {std::pair<int, int>{6, 4}, {4, 6}}) {
    auto xs = gaussian(rng, n * dx);
    auto ys = gaussian(rng, n * dy);
    for (std::int64_t k = 0; k < n; ++k) ys[std::size_t(k * dy)] += xs[std::size_t(k * dx)];
    pair_statistics st(dx, dy);
    st.add(xs, ys, n);
    const auto f = fit_procrustes(st);
    REQUIRE(f.scale > 0);
    std::vector<double> q = f.map.w;
    for (auto& v : q) v /= f.scale;
    const auto g = dy < dx ? fusion::detail::matmul(false, true, dy, dy, dx, q, q)
                           : fusion::detail::matmul(true, false, dx, dx, dy, q, q);
    const int m = std::min(dx, dy);
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < m; ++j) CHECK(std::abs(g[std::size_t(i * m + j)] - (i == j ? 1.0 : 0.0)) < 1e-12);
  }
}

TEST_CASE("CCA: the canonical correlations a covariance was built with; unregularised, the least-squares map") {
  std::mt19937_64 rng(4);
  const std::int64_t dx = 5, dy = 4, n = 1000;
  const std::vector<double> rho = {0.9, 0.7, 0.4, 0.1};
  // Sxx = Ax Axᵀ, Syy = Ay Ayᵀ, Sxy = Ax E Ayᵀ with E = [diag(ρ); 0]: Sxx^-½ Sxy Syy^-½ = Ox E Oyᵀ.
  // Well-conditioned mixing (I + 0.3·noise), so that comparisons to 1e-10 measure the method, not cond(Sxx).
  auto mixing = [&](std::int64_t d) {
    auto m = gaussian_d(rng, d * d);
    for (std::int64_t i = 0; i < d * d; ++i)
      m[std::size_t(i)] = 0.3 * m[std::size_t(i)] + (i % (d + 1) == 0 ? 1.0 : 0.0);
    return m;
  };
  const auto ax = mixing(dx), ay = mixing(dy);
  std::vector<double> e(std::size_t(dx * dy), 0.0);
  for (std::size_t k = 0; k < rho.size(); ++k) e[k * std::size_t(dy) + k] = rho[k];
  auto times_n = [&](std::vector<double> v) {
    for (auto& x : v) x *= double(n);
    return v;
  };
  const auto cxx = times_n(fusion::detail::matmul(false, true, dx, dx, dx, ax, ax));
  const auto cyy = times_n(fusion::detail::matmul(false, true, dy, dy, dy, ay, ay));
  const auto cxy = times_n(
      fusion::detail::matmul(false, true, dx, dy, dy, fusion::detail::matmul(false, false, dx, dy, dx, ax, e), ay));
  const auto s =
      pair_statistics::from_moments(n, std::vector<double>(dx, 1.0), std::vector<double>(dy, -1.0), cxx, cxy, cyy);
  const auto fit = fit_cca(s, 0.0);
  REQUIRE(fit.correlations.size() == rho.size());
  for (std::size_t k = 0; k < rho.size(); ++k) CHECK(std::abs(fit.correlations[k] - rho[k]) < 1e-10);
  // All components, no regularisation: W = Syx Sxx⁻¹, the least-squares map.
  const auto inv = fusion::detail::spectral(cpu::eigen_symmetric(cxx, int(dx)), dx, [](double v) { return 1.0 / v; });
  const auto ols = fusion::detail::matmul(true, false, dy, dx, dx, cxy, inv);
  for (std::size_t i = 0; i < ols.size(); ++i) CHECK(std::abs(fit.map.w[i] - ols[i]) < 1e-9);
  // One component keeps only the strongest correlation: a different, rank-one map.
  const auto one = fit_cca(s, 0.0, 1);
  const auto sv = cpu::svd(one.map.w, int(dy), int(dx));
  CHECK(sv.s[0] > 0);
  CHECK(sv.s[1] < 1e-12 * sv.s[0]);
}

TEST_CASE("Sinkhorn: a hidden permutation recovered as ε → 0; marginals hold to 1e-9") {
  std::mt19937_64 rng(5);
  const int d = 12;
  std::vector<int> perm(d);
  for (int i = 0; i < d; ++i) perm[std::size_t(i)] = i;
  std::shuffle(perm.begin(), perm.end(), rng);
  std::uniform_real_distribution<double> u(0.3, 1.0);
  std::vector<double> cost(static_cast<std::size_t>(d * d));
  for (int i = 0; i < d; ++i)
    for (int j = 0; j < d; ++j) cost[std::size_t(i * d + j)] = j == perm[std::size_t(i)] ? u(rng) * 0.1 : u(rng);
  double previous = 1;
  for (double eps : {0.3, 0.1, 0.03, 0.01, 0.003}) {
    const auto r = sinkhorn(cost, d, d, eps);
    CHECK(r.marginal_error < 1e-9);
    for (int i = 0; i < d; ++i) {  // rows and columns sum to 1/d
      double row = 0, col = 0;
      for (int j = 0; j < d; ++j) row += r.plan[std::size_t(i * d + j)], col += r.plan[std::size_t(j * d + i)];
      CHECK(std::abs(row - 1.0 / d) < 1e-9);
      CHECK(std::abs(col - 1.0 / d) < 1e-9);
    }
    double off = 0;  // mass off the permutation
    for (int i = 0; i < d; ++i)
      for (int j = 0; j < d; ++j)
        if (j != perm[std::size_t(i)]) off += r.plan[std::size_t(i * d + j)];
    INFO("ε " << eps << ": mass off the permutation " << off);
    CHECK(off < previous);
    previous = off;
  }
  CHECK(previous < 1e-12);
  // Rectangular, with given marginals.
  const std::vector<double> a = {0.5, 0.3, 0.2}, b = {0.1, 0.2, 0.3, 0.4};
  std::vector<double> c(12);
  for (auto& v : c) v = u(rng);
  const auto r = sinkhorn(c, 3, 4, 0.01, a, b);
  for (int i = 0; i < 3; ++i) {
    double row = 0;
    for (int j = 0; j < 4; ++j) row += r.plan[std::size_t(i * 4 + j)];
    CHECK(std::abs(row - a[std::size_t(i)]) < 1e-9);
  }
  for (int j = 0; j < 4; ++j) {
    double col = 0;
    for (int i = 0; i < 3; ++i) col += r.plan[std::size_t(i * 4 + j)];
    CHECK(std::abs(col - b[std::size_t(j)]) < 1e-9);
  }
  CHECK_THROWS_AS(sinkhorn(c, 3, 3, 0.1), usage_error);
  CHECK_THROWS_AS(sinkhorn(c, 3, 4, 0.0), usage_error);
}

TEST_CASE("OT map: units of y that are signed, scaled units of x are found through their correlations") {
  std::mt19937_64 rng(6);
  const std::int64_t n = 5000, d = 10;
  std::vector<int> perm(d);
  for (int i = 0; i < d; ++i) perm[std::size_t(i)] = i;
  std::shuffle(perm.begin(), perm.end(), rng);
  const auto x = gaussian(rng, n * d);
  std::vector<double> w(std::size_t(d * d), 0.0), b(std::size_t(d), 0.5);
  for (std::int64_t j = 0; j < d; ++j)
    w[std::size_t(j * d + perm[std::size_t(j)])] = (j % 2 ? -1.0 : 1.0) * (1 + 0.2 * j);
  auto y = affine(x, n, w, b, d, d);
  const auto noise = gaussian(rng, n * d, 0.05);
  for (std::size_t i = 0; i < y.size(); ++i) y[i] += noise[i];
  pair_statistics s(d, d);
  s.add(x, y, n);
  const auto fit = fit_ot(s, 0.01);
  CHECK(fit.transport.marginal_error < 1e-9);
  for (std::int64_t j = 0; j < d; ++j)
    CHECK(fit.map.w[std::size_t(j * d + perm[std::size_t(j)])] ==
          Approx(w[std::size_t(j * d + perm[std::size_t(j)])]).epsilon(0.02));
  quality_accumulator q(fit.map);
  q.add(x, y, n);
  CHECK(q.result().r2 > 0.99);
}
