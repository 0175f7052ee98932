// Closed-form maps from one teacher's hidden states to another's, fitted from pair_statistics in fp64
// with LAPACK (cpu/lapack.hpp): ridge regression (λ chosen on held-out statistics, every λ from one
// eigendecomposition), orthogonal Procrustes with a scale, CCA, and entropic optimal transport between
// the two teachers' units (log-domain Sinkhorn). Each gives an affine_map y = W x + b.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "nexus/backend/cpu/lapack.hpp"
#include "nexus/fusion/maps/pair_statistics.hpp"

namespace nexus::fusion {

/// y = W x + b: W [d_out, d_in] row-major, b [d_out], fp64.
struct affine_map {
  std::int64_t d_in = 0, d_out = 0;
  std::vector<double> w, b;

  static affine_map zero(std::int64_t d_in, std::int64_t d_out) {
    return {d_in, d_out, std::vector<double>(std::size_t(d_in * d_out), 0.0), std::vector<double>(std::size_t(d_out))};
  }
  /// Rows x [rows, d_in] (float) -> y [rows, d_out] (float), computed in fp64.
  std::vector<float> apply(std::span<const float> x, std::int64_t rows) const {
    if (rows < 0 || x.size() != std::size_t(rows * d_in))
      throw usage_error("affine_map", std::to_string(x.size()) + " values are not " + std::to_string(rows) +
                                          " rows of " + std::to_string(d_in));
    std::vector<double> xd(x.begin(), x.end()), yd(static_cast<std::size_t>(rows * d_out));
    for (std::int64_t r = 0; r < rows; ++r) std::copy(b.begin(), b.end(), yd.begin() + r * d_out);
    if (rows > 0)
      cpu::dgemm(false, true, int(rows), int(d_out), int(d_in), 1.0, xd.data(), int(d_in), w.data(), int(d_in), 1.0,
                 yd.data(), int(d_out));
    return {yd.begin(), yd.end()};
  }
};

namespace detail {

inline void require_rows(const pair_statistics& s, const char* what) {
  if (s.count() < 2) throw usage_error(what, "needs at least 2 rows, got " + std::to_string(s.count()));
}
/// Row-major [m, n] transposed.
inline std::vector<double> transpose(const std::vector<double>& a, std::int64_t m, std::int64_t n) {
  std::vector<double> t(a.size());
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) t[std::size_t(j * m + i)] = a[std::size_t(i * n + j)];
  return t;
}
/// C = op(A)·op(B) as a fresh [m, n] matrix.
inline std::vector<double> matmul(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k,
                                  const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> c(std::size_t(m * n), 0.0);
  if (m && n && k)
    cpu::dgemm(ta, tb, int(m), int(n), int(k), 1.0, a.data(), ta ? int(m) : int(k), b.data(), tb ? int(k) : int(n), 0.0,
               c.data(), int(n));
  return c;
}
/// b = ȳ - W x̄.
inline void set_bias(affine_map& f, const pair_statistics& s) {
  f.b = s.mean_y();
  for (std::int64_t o = 0; o < f.d_out; ++o)
    for (std::int64_t i = 0; i < f.d_in; ++i)
      f.b[std::size_t(o)] -= f.w[std::size_t(o * f.d_in + i)] * s.mean_x()[std::size_t(i)];
}
inline double trace(const std::vector<double>& a, std::int64_t n) {
  double t = 0;
  for (std::int64_t i = 0; i < n; ++i) t += a[std::size_t(i * n + i)];
  return t;
}
/// V · diag(f(values)) · Vᵀ of a symmetric eigendecomposition.
template <class F>
std::vector<double> spectral(const cpu::symmetric_eigen& e, std::int64_t n, F f) {
  std::vector<double> vd = e.vectors;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t k = 0; k < n; ++k) vd[std::size_t(i * n + k)] *= f(e.values[std::size_t(k)]);
  return matmul(false, true, n, n, n, vd, e.vectors);
}

}  // namespace detail

// ---- ridge ------------------------------------------------------------------------------------

struct ridge_fit {
  affine_map map;
  double lambda = 0;         // the chosen λ, absolute (added to the covariance's diagonal)
  double heldout_r2 = 0;     // R² on the held-out statistics at that λ
  std::vector<double> grid;  // λ tried (absolute)
  std::vector<double> r2;    // held-out R² of each
};

/// Relative λ (times the mean eigenvalue of the train covariance) tried by default.
inline std::vector<double> default_ridge_grid() {
  return {1e-8, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0};
}

/// Ridge regression y ≈ W x + b on `train`: W = Syx (Sxx + λI)⁻¹ with covariances S. For each λ of
/// `relative_grid` (scaled by the mean eigenvalue of Sxx), the held-out squared error follows from
/// the held-out statistics without touching rows: with Sxx = V diag(e) Vᵀ and P = Vᵀ Sxy,
/// Wᵀ = V diag(1/(e+λ)) P, and Σ‖y - ŷ‖² = tr C'yy - 2 tr(W C'xy) + tr(W C'xx Wᵀ) + n'‖δy - W δx‖²
/// (C' the held-out co-moments, δ the difference of held-out and train means), each term O(d²) per λ
/// after one decomposition. The λ of the least held-out error is kept.
inline ridge_fit fit_ridge(const pair_statistics& train, const pair_statistics& heldout,
                           std::vector<double> relative_grid = default_ridge_grid()) {
  detail::require_rows(train, "ridge");
  detail::require_rows(heldout, "ridge (held-out)");
  if (heldout.width_x() != train.width_x() || heldout.width_y() != train.width_y())
    throw usage_error("ridge", "train and held-out statistics of different widths");
  if (relative_grid.empty()) throw usage_error("ridge", "no λ to try");
  const std::int64_t dx = train.width_x(), dy = train.width_y();
  const double n = double(train.count()), nh = double(heldout.count());
  std::vector<double> sxx = train.comoment_xx(), sxy = train.comoment_xy();
  for (auto& v : sxx) v /= n;
  for (auto& v : sxy) v /= n;
  const auto eig = cpu::eigen_symmetric(sxx, int(dx));
  const auto& V = eig.vectors;
  const auto P = detail::matmul(true, false, dx, dy, dx, V, sxy);                    // Vᵀ Sxy
  const auto R = detail::matmul(true, false, dx, dy, dx, V, heldout.comoment_xy());  // Vᵀ C'xy
  const auto Q = detail::matmul(true, false, dx, dx, dx, V,
                                detail::matmul(false, false, dx, dx, dx, heldout.comoment_xx(), V));  // Vᵀ C'xx V
  const auto G = detail::matmul(false, true, dx, dx, dy, P, P);                                       // P Pᵀ
  std::vector<double> dmx(static_cast<std::size_t>(dx)), dmy(static_cast<std::size_t>(dy));
  for (std::int64_t i = 0; i < dx; ++i) dmx[std::size_t(i)] = heldout.mean_x()[std::size_t(i)] - train.mean_x()[i];
  for (std::int64_t j = 0; j < dy; ++j) dmy[std::size_t(j)] = heldout.mean_y()[std::size_t(j)] - train.mean_y()[j];
  std::vector<double> vdx(std::size_t(dx), 0.0);  // Vᵀ δx
  for (std::int64_t k = 0; k < dx; ++k)
    for (std::int64_t i = 0; i < dx; ++i) vdx[std::size_t(k)] += V[std::size_t(i * dx + k)] * dmx[std::size_t(i)];
  const double sst = detail::trace(heldout.comoment_yy(), dy);
  double mean_eig = 0;
  for (auto e : eig.values) mean_eig += std::max(e, 0.0);
  mean_eig = std::max(mean_eig / double(dx), std::numeric_limits<double>::min());

  ridge_fit fit;
  double best = std::numeric_limits<double>::infinity();
  std::vector<double> d(static_cast<std::size_t>(dx));
  for (const double rel : relative_grid) {
    const double lambda = rel * mean_eig;
    for (std::int64_t k = 0; k < dx; ++k) {
      const double den = eig.values[std::size_t(k)] + lambda;
      d[std::size_t(k)] = den > 0 ? 1.0 / den : 0.0;
    }
    double cross = 0, quad = 0, mean_term = 0;
    for (std::int64_t k = 0; k < dx; ++k)
      for (std::int64_t j = 0; j < dy; ++j)
        cross += d[std::size_t(k)] * P[std::size_t(k * dy + j)] * R[std::size_t(k * dy + j)];
    for (std::int64_t k = 0; k < dx; ++k)
      for (std::int64_t l = 0; l < dx; ++l)
        quad += d[std::size_t(k)] * d[std::size_t(l)] * Q[std::size_t(k * dx + l)] * G[std::size_t(l * dx + k)];
    for (std::int64_t j = 0; j < dy; ++j) {  // (δy - W δx)_j with W δx = Pᵀ D Vᵀ δx
      double wdx = 0;
      for (std::int64_t k = 0; k < dx; ++k) wdx += P[std::size_t(k * dy + j)] * d[std::size_t(k)] * vdx[std::size_t(k)];
      const double r = dmy[std::size_t(j)] - wdx;
      mean_term += r * r;
    }
    const double sse = sst - 2 * cross + quad + nh * mean_term;
    const double r2 = sst > 0 ? 1 - sse / sst : 0;
    fit.grid.push_back(lambda);
    fit.r2.push_back(r2);
    if (sse < best) best = sse, fit.lambda = lambda, fit.heldout_r2 = r2;
  }
  // Wᵀ = V D P at the chosen λ.
  std::vector<double> dp = P;
  for (std::int64_t k = 0; k < dx; ++k) {
    const double den = eig.values[std::size_t(k)] + fit.lambda, dk = den > 0 ? 1.0 / den : 0.0;
    for (std::int64_t j = 0; j < dy; ++j) dp[std::size_t(k * dy + j)] *= dk;
  }
  fit.map = affine_map::zero(dx, dy);
  fit.map.w = detail::transpose(detail::matmul(false, false, dx, dy, dx, V, dp), dx, dy);
  detail::set_bias(fit.map, train);
  return fit;
}

// ---- Procrustes -------------------------------------------------------------------------------

struct procrustes_fit {
  affine_map map;
  double scale = 0;
};

/// y - ȳ ≈ s·Q (x - x̄) with Q [dy, dx] semi-orthogonal (orthonormal rows when dy <= dx, columns
/// otherwise): Q = U Vᵀ from the SVD of the cross-covariance Syx = U Σ Vᵀ (maximises tr(Q Sxy)),
/// and the least-squares scale for that Q, s = tr(Σ) / tr(Q Sxx Qᵀ).
inline procrustes_fit fit_procrustes(const pair_statistics& train) {
  detail::require_rows(train, "procrustes");
  const std::int64_t dx = train.width_x(), dy = train.width_y();
  const auto syx = detail::transpose(train.comoment_xy(), dx, dy);  // co-moments: the common 1/n cancels
  const auto sv = cpu::svd(syx, int(dy), int(dx));
  const std::int64_t r = sv.rank_dim;
  const auto q = detail::matmul(false, false, dy, dx, r, sv.u, sv.vt);
  double num = 0;
  for (auto v : sv.s) num += v;
  const auto qc = detail::matmul(false, false, dy, dx, dx, q, train.comoment_xx());
  double den = 0;  // tr(Q Cxx Qᵀ)
  for (std::size_t i = 0; i < qc.size(); ++i) den += qc[i] * q[i];
  procrustes_fit fit;
  fit.scale = den > 0 ? num / den : 0;
  fit.map = affine_map::zero(dx, dy);
  for (std::size_t i = 0; i < q.size(); ++i) fit.map.w[i] = fit.scale * q[i];
  detail::set_bias(fit.map, train);
  return fit;
}

// ---- CCA --------------------------------------------------------------------------------------

struct cca_fit {
  affine_map map;
  std::vector<double> correlations;  // canonical correlations, descending (min(dx, dy) of them)
};

/// Canonical correlation analysis: with Sxx, Syy regularised by `regularisation` times their mean
/// eigenvalue, T = Sxx^-½ Sxy Syy^-½ = U diag(ρ) Vᵀ gives the canonical correlations ρ. The map
/// predicts y's canonical variates from x's (v = ρ u) and maps them back to y's space:
/// y - ȳ = Syy^½ V diag(ρ) Uᵀ Sxx^-½ (x - x̄), over the first `components` pairs (0: all).
/// Unregularised with all components it is the least-squares map.
inline cca_fit fit_cca(const pair_statistics& train, double regularisation = 1e-6, std::int64_t components = 0) {
  detail::require_rows(train, "cca");
  const std::int64_t dx = train.width_x(), dy = train.width_y();
  const double n = double(train.count());
  auto covariance = [&](const std::vector<double>& c, std::int64_t d) {
    std::vector<double> s = c;
    for (auto& v : s) v /= n;
    const double add = regularisation * std::max(detail::trace(s, d) / double(d), 0.0);
    for (std::int64_t i = 0; i < d; ++i) s[std::size_t(i * d + i)] += add;
    return cpu::eigen_symmetric(s, int(d));
  };
  const auto ex = covariance(train.comoment_xx(), dx), ey = covariance(train.comoment_yy(), dy);
  auto inv_sqrt = [](double e) { return e > 0 ? 1.0 / std::sqrt(e) : 0.0; };
  const auto wx = detail::spectral(ex, dx, inv_sqrt), wy = detail::spectral(ey, dy, inv_sqrt);
  const auto sy_half = detail::spectral(ey, dy, [](double e) { return e > 0 ? std::sqrt(e) : 0.0; });
  std::vector<double> sxy = train.comoment_xy();
  for (auto& v : sxy) v /= n;
  const auto t = detail::matmul(false, false, dx, dy, dy, detail::matmul(false, false, dx, dy, dx, wx, sxy), wy);
  const auto sv = cpu::svd(t, int(dx), int(dy));  // U [dx, r], Vt [r, dy]
  const std::int64_t r = sv.rank_dim, k = components > 0 ? std::min(components, r) : r;
  cca_fit fit;
  fit.correlations = sv.s;
  // M = V_k diag(ρ_k) U_kᵀ [dy, dx]
  std::vector<double> m(std::size_t(dy * dx), 0.0);
  for (std::int64_t c = 0; c < k; ++c)
    for (std::int64_t j = 0; j < dy; ++j) {
      const double vr = sv.vt[std::size_t(c * dy + j)] * sv.s[std::size_t(c)];
      for (std::int64_t i = 0; i < dx; ++i) m[std::size_t(j * dx + i)] += vr * sv.u[std::size_t(i * r + c)];
    }
  fit.map = affine_map::zero(dx, dy);
  fit.map.w = detail::matmul(false, false, dy, dx, dx, detail::matmul(false, false, dy, dx, dy, sy_half, m), wx);
  detail::set_bias(fit.map, train);
  return fit;
}

// ---- optimal transport ------------------------------------------------------------------------

struct sinkhorn_result {
  std::vector<double> plan;   // [m, n] row-major, rows sum to a, columns to b
  double marginal_error = 0;  // max |row sum - a_i| (columns are exact after the last update)
  int iterations = 0;
};

/// Entropic optimal transport between marginals a [m] and b [n] (uniform when empty) for a cost
/// [m, n]: log-domain Sinkhorn (stable for small ε), with ε annealed from the cost's range down to
/// `epsilon` (warm-started potentials), iterated at `epsilon` until every row marginal is within
/// `tolerance`.
inline sinkhorn_result sinkhorn(const std::vector<double>& cost, std::int64_t m, std::int64_t n, double epsilon,
                                std::vector<double> a = {}, std::vector<double> b = {}, double tolerance = 1e-12,
                                int max_iterations = 200000) {
  if (m < 1 || n < 1 || cost.size() != std::size_t(m * n)) throw usage_error("sinkhorn", "cost is not m × n");
  if (!(epsilon > 0)) throw usage_error("sinkhorn", "epsilon must be positive");
  if (a.empty()) a.assign(std::size_t(m), 1.0 / double(m));
  if (b.empty()) b.assign(std::size_t(n), 1.0 / double(n));
  if (a.size() != std::size_t(m) || b.size() != std::size_t(n))
    throw usage_error("sinkhorn", "marginals of wrong size");
  std::vector<double> la(a.size()), lb(b.size());
  for (std::size_t i = 0; i < a.size(); ++i) la[i] = std::log(a[i]);
  for (std::size_t j = 0; j < b.size(); ++j) lb[j] = std::log(b[j]);
  const auto [lo, hi] = std::minmax_element(cost.begin(), cost.end());
  std::vector<double> f(std::size_t(m), 0.0), g(std::size_t(n), 0.0), tmp(std::size_t(std::max(m, n)));
  auto lse = [&](std::size_t len) {
    double mx = -std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < len; ++i) mx = std::max(mx, tmp[i]);
    double s = 0;
    for (std::size_t i = 0; i < len; ++i) s += std::exp(tmp[i] - mx);
    return mx + std::log(s);
  };
  auto update_f = [&](double eps) {
    for (std::int64_t i = 0; i < m; ++i) {
      for (std::int64_t j = 0; j < n; ++j)
        tmp[std::size_t(j)] = (g[std::size_t(j)] - cost[std::size_t(i * n + j)]) / eps;
      f[std::size_t(i)] = eps * (la[std::size_t(i)] - lse(std::size_t(n)));
    }
  };
  auto update_g = [&](double eps) {
    for (std::int64_t j = 0; j < n; ++j) {
      for (std::int64_t i = 0; i < m; ++i)
        tmp[std::size_t(i)] = (f[std::size_t(i)] - cost[std::size_t(i * n + j)]) / eps;
      g[std::size_t(j)] = eps * (lb[std::size_t(j)] - lse(std::size_t(m)));
    }
  };
  auto row_error = [&](double eps) {
    double e = 0;
    for (std::int64_t i = 0; i < m; ++i) {
      double s = 0;
      for (std::int64_t j = 0; j < n; ++j)
        s += std::exp((f[std::size_t(i)] + g[std::size_t(j)] - cost[std::size_t(i * n + j)]) / eps);
      e = std::max(e, std::abs(s - a[std::size_t(i)]));
    }
    return e;
  };
  sinkhorn_result res;
  double eps = std::max(*hi - *lo, epsilon);
  for (;;) {
    const bool last = eps <= epsilon;
    const int rounds = last ? max_iterations : 20;  // enough to warm-start the next ε
    for (int it = 0; it < rounds; ++it) {
      update_f(eps), update_g(eps), ++res.iterations;
      if (last && it % 10 == 9 && row_error(eps) <= tolerance) break;
    }
    if (last) break;
    eps = std::max(eps / 2, epsilon);
  }
  res.marginal_error = row_error(epsilon);
  res.plan.resize(std::size_t(m * n));
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j)
      res.plan[std::size_t(i * n + j)] =
          std::exp((f[std::size_t(i)] + g[std::size_t(j)] - cost[std::size_t(i * n + j)]) / epsilon);
  return res;
}

struct ot_fit {
  affine_map map;
  sinkhorn_result transport;  // the plan between x's units (rows) and y's (columns)
};

/// Optimal transport between the units of x and of y: cost 1 - |corr(x_i, y_j)| from the train
/// correlations, uniform marginals, Sinkhorn at `epsilon`. Each y unit is predicted from the x units
/// the plan sends to it: standardised, signed by their correlation, averaged with the plan's column
/// weights, times a least-squares gain per y unit (from the statistics), then de-standardised. A plan
/// that is a permutation gives y_j = ±x_π(j) up to scale: the map changes width with the plan.
inline ot_fit fit_ot(const pair_statistics& train, double epsilon = 0.02) {
  detail::require_rows(train, "ot");
  const std::int64_t dx = train.width_x(), dy = train.width_y();
  const auto &cxx = train.comoment_xx(), &cxy = train.comoment_xy(), &cyy = train.comoment_yy();
  std::vector<double> sx(static_cast<std::size_t>(dx)), sy(static_cast<std::size_t>(dy));
  for (std::int64_t i = 0; i < dx; ++i) sx[std::size_t(i)] = std::sqrt(std::max(cxx[std::size_t(i * dx + i)], 0.0));
  for (std::int64_t j = 0; j < dy; ++j) sy[std::size_t(j)] = std::sqrt(std::max(cyy[std::size_t(j * dy + j)], 0.0));
  std::vector<double> corr(std::size_t(dx * dy), 0.0), cost(corr.size());
  for (std::int64_t i = 0; i < dx; ++i)
    for (std::int64_t j = 0; j < dy; ++j) {
      const double s = sx[std::size_t(i)] * sy[std::size_t(j)];
      corr[std::size_t(i * dy + j)] = s > 0 ? cxy[std::size_t(i * dy + j)] / s : 0.0;
      cost[std::size_t(i * dy + j)] = 1 - std::abs(corr[std::size_t(i * dy + j)]);
    }
  ot_fit fit;
  fit.transport = sinkhorn(cost, dx, dy, epsilon, {}, {}, 1e-10, 20000);
  // t_ij = plan_ij / b_j · sign(corr_ij): weights of standardised x units in y unit j's prediction.
  std::vector<double> t(corr.size());
  for (std::size_t k = 0; k < t.size(); ++k) t[k] = fit.transport.plan[k] * double(dy) * (corr[k] < 0 ? -1.0 : 1.0);
  // Gain α_j = cov(z_j, ỹ_j) / var(z_j), z = tᵀ x̃: cov = Σ_i t_ij corr_ij, var = t_jᵀ Rxx t_j.
  std::vector<double> rxx(std::size_t(dx * dx), 0.0);
  for (std::int64_t i = 0; i < dx; ++i)
    for (std::int64_t k = 0; k < dx; ++k) {
      const double s = sx[std::size_t(i)] * sx[std::size_t(k)];
      rxx[std::size_t(i * dx + k)] = s > 0 ? cxx[std::size_t(i * dx + k)] / s : 0.0;
    }
  const auto rt = detail::matmul(false, false, dx, dy, dx, rxx, t);
  fit.map = affine_map::zero(dx, dy);
  for (std::int64_t j = 0; j < dy; ++j) {
    double cov = 0, var = 0;
    for (std::int64_t i = 0; i < dx; ++i) {
      cov += t[std::size_t(i * dy + j)] * corr[std::size_t(i * dy + j)];
      var += t[std::size_t(i * dy + j)] * rt[std::size_t(i * dy + j)];
    }
    const double gain = var > 0 ? cov / var : 0;
    for (std::int64_t i = 0; i < dx; ++i)
      if (sx[std::size_t(i)] > 0)
        fit.map.w[std::size_t(j * dx + i)] =
            gain * sy[std::size_t(j)] * t[std::size_t(i * dy + j)] / sx[std::size_t(i)];
  }
  detail::set_bias(fit.map, train);
  return fit;
}

// ---- evaluation -------------------------------------------------------------------------------

struct map_quality {
  std::int64_t rows = 0;
  double r2 = 0;              // 1 - Σ‖y - ŷ‖² / Σ‖y - ȳ‖² (ȳ: the mean of these rows)
  double cosine = 0;          // mean over rows of cos(ŷ, y)
  double relative_error = 0;  // mean over rows of ‖ŷ - y‖ / ‖y‖
};

/// Accumulates map_quality over batches of rows (x, y) for a map.
class quality_accumulator {
 public:
  explicit quality_accumulator(const affine_map& f) : f_(&f), sum_(std::size_t(f.d_out)), sum2_(std::size_t(f.d_out)) {}
  void add(std::span<const float> x, std::span<const float> y, std::int64_t rows) {
    const auto d = std::size_t(f_->d_out);
    if (y.size() != std::size_t(rows) * d) throw usage_error("evaluate", "y rows do not match the map's output width");
    const auto yhat = f_->apply(x, rows);
    if (rows > 0 && shift_.empty()) shift_.assign(y.begin(), y.begin() + std::ptrdiff_t(d));
    for (std::int64_t r = 0; r < rows; ++r) {
      double dot = 0, nn = 0, np = 0, err = 0;
      for (std::size_t c = 0; c < d; ++c) {
        const double t = y[std::size_t(r) * d + c], p = yhat[std::size_t(r) * d + c];
        dot += t * p, nn += t * t, np += p * p, err += (t - p) * (t - p);
        const double sh = t - shift_[c];  // shifted sums: Σ‖y - ȳ‖² without cancellation
        sum_[c] += sh, sum2_[c] += sh * sh;
      }
      sse_ += err;
      cosine_ += nn > 0 && np > 0 ? dot / std::sqrt(nn * np) : 0;
      rel_ += nn > 0 ? std::sqrt(err / nn) : 0;
    }
    rows_ += rows;
  }
  map_quality result() const {
    map_quality q;
    q.rows = rows_;
    if (rows_ == 0) return q;
    double sst = 0;
    for (std::size_t c = 0; c < sum_.size(); ++c) sst += sum2_[c] - sum_[c] * sum_[c] / double(rows_);
    q.r2 = sst > 0 ? 1 - sse_ / sst : 0;
    q.cosine = cosine_ / double(rows_);
    q.relative_error = rel_ / double(rows_);
    return q;
  }

 private:
  const affine_map* f_;
  std::vector<double> shift_, sum_, sum2_;
  double sse_ = 0, cosine_ = 0, rel_ = 0;
  std::int64_t rows_ = 0;
};

/// The quality of `f` on every row `pairs` gives (one pass; e.g. the held-out part).
template <pair_source Source>
map_quality evaluate(const affine_map& f, Source& pairs) {
  if (f.d_in != pairs.width_a() || f.d_out != pairs.width_b())
    throw usage_error("evaluate", "the map's widths differ from the pair's");
  quality_accumulator acc(f);
  typename Source::batch_type b;
  while (pairs.next(b)) acc.add(b.x, b.y, b.rows);
  return acc.result();
}

}  // namespace nexus::fusion
