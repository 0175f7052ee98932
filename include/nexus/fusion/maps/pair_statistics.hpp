// Second-order statistics of paired rows (x from teacher a, y from teacher b) in fp64, in one pass
// and mergeable: count, means, and the centred co-moments Σ(x-x̄)(x-x̄)ᵀ, Σ(x-x̄)(y-ȳ)ᵀ, Σ(y-ȳ)(y-ȳ)ᵀ.
//
// Why centred: hidden states have large means and a few huge units, so raw sums XᵀX lose the
// covariance to cancellation. Each batch is centred on its own mean (dsyrk / dgemm on the centred
// block), then merged into the running statistics with Chan et al.'s pairwise update, which is also
// how statistics of shards or threads combine: the result does not depend on how rows were split,
// up to fp64 rounding. Raw moments (XᵀX ...) are available from the centred ones.
#pragma once

#include <concepts>
#include <cstdint>
#include <span>
#include <vector>

#include "nexus/backend/cpu/lapack.hpp"
#include "nexus/core/error.hpp"

namespace nexus::fusion {

class pair_statistics {
 public:
  pair_statistics() = default;
  pair_statistics(std::int64_t width_x, std::int64_t width_y) : dx_(width_x), dy_(width_y) {
    if (dx_ < 1 || dy_ < 1) throw usage_error("pair_statistics", "widths must be positive");
    mx_.assign(std::size_t(dx_), 0.0), my_.assign(std::size_t(dy_), 0.0);
    cxx_.assign(std::size_t(dx_ * dx_), 0.0), cxy_.assign(std::size_t(dx_ * dy_), 0.0);
    cyy_.assign(std::size_t(dy_ * dy_), 0.0);
  }

  /// Adds `rows` rows: x [rows, width_x], y [rows, width_y], row-major floats.
  void add(std::span<const float> x, std::span<const float> y, std::int64_t rows) {
    if (rows < 0 || x.size() != std::size_t(rows * dx_) || y.size() != std::size_t(rows * dy_))
      throw usage_error("pair_statistics", "x and y must hold " + std::to_string(rows) + " rows of " +
                                               std::to_string(dx_) + " and " + std::to_string(dy_) + " values");
    if (rows == 0) return;
    pair_statistics b(dx_, dy_);
    b.n_ = rows;
    std::vector<double> xc(x.begin(), x.end()), yc(y.begin(), y.end());
    centre(xc, rows, dx_, b.mx_);
    centre(yc, rows, dy_, b.my_);
    cpu::add_gram(int(dx_), int(rows), xc.data(), b.cxx_.data());
    cpu::add_gram(int(dy_), int(rows), yc.data(), b.cyy_.data());
    cpu::dgemm(true, false, int(dx_), int(dy_), int(rows), 1.0, xc.data(), int(dx_), yc.data(), int(dy_), 0.0,
               b.cxy_.data(), int(dy_));
    merge(b);
  }

  /// Adds another set of statistics of the same widths (another shard, thread or batch).
  void merge(const pair_statistics& o) {
    if (o.dx_ != dx_ || o.dy_ != dy_) throw usage_error("pair_statistics", "merging statistics of other widths");
    if (o.n_ == 0) return;
    if (n_ == 0) {
      *this = o;
      return;
    }
    const double na = double(n_), nb = double(o.n_), n = na + nb, f = na * nb / n;
    std::vector<double> ddx(static_cast<std::size_t>(dx_)), ddy(static_cast<std::size_t>(dy_));
    for (std::int64_t i = 0; i < dx_; ++i) ddx[std::size_t(i)] = o.mx_[std::size_t(i)] - mx_[std::size_t(i)];
    for (std::int64_t j = 0; j < dy_; ++j) ddy[std::size_t(j)] = o.my_[std::size_t(j)] - my_[std::size_t(j)];
    auto update = [&](std::vector<double>& c, const std::vector<double>& oc, const std::vector<double>& u,
                      const std::vector<double>& v) {
      for (std::size_t i = 0; i < u.size(); ++i)
        for (std::size_t j = 0; j < v.size(); ++j) c[i * v.size() + j] += oc[i * v.size() + j] + f * u[i] * v[j];
    };
    update(cxx_, o.cxx_, ddx, ddx);
    update(cxy_, o.cxy_, ddx, ddy);
    update(cyy_, o.cyy_, ddy, ddy);
    for (std::int64_t i = 0; i < dx_; ++i) mx_[std::size_t(i)] += ddx[std::size_t(i)] * nb / n;
    for (std::int64_t j = 0; j < dy_; ++j) my_[std::size_t(j)] += ddy[std::size_t(j)] * nb / n;
    n_ += o.n_;
  }

  std::int64_t count() const noexcept { return n_; }
  std::int64_t width_x() const noexcept { return dx_; }
  std::int64_t width_y() const noexcept { return dy_; }
  const std::vector<double>& mean_x() const noexcept { return mx_; }
  const std::vector<double>& mean_y() const noexcept { return my_; }
  /// Centred co-moments: Σ(x-x̄)(x-x̄)ᵀ [dx, dx], Σ(x-x̄)(y-ȳ)ᵀ [dx, dy], Σ(y-ȳ)(y-ȳ)ᵀ [dy, dy], row-major.
  const std::vector<double>& comoment_xx() const noexcept { return cxx_; }
  const std::vector<double>& comoment_xy() const noexcept { return cxy_; }
  const std::vector<double>& comoment_yy() const noexcept { return cyy_; }
  /// Raw moments: XᵀX = Cxx + n·x̄x̄ᵀ, XᵀY, YᵀY.
  std::vector<double> raw_xx() const { return raw(cxx_, mx_, mx_); }
  std::vector<double> raw_xy() const { return raw(cxy_, mx_, my_); }
  std::vector<double> raw_yy() const { return raw(cyy_, my_, my_); }

  /// Statistics given directly (tests, or moments computed elsewhere, e.g. on a GPU).
  static pair_statistics from_moments(std::int64_t n, std::vector<double> mx, std::vector<double> my,
                                      std::vector<double> cxx, std::vector<double> cxy, std::vector<double> cyy) {
    pair_statistics s(std::int64_t(mx.size()), std::int64_t(my.size()));
    if (cxx.size() != s.cxx_.size() || cxy.size() != s.cxy_.size() || cyy.size() != s.cyy_.size() || n < 0)
      throw usage_error("pair_statistics", "moments of inconsistent sizes");
    s.n_ = n, s.mx_ = std::move(mx), s.my_ = std::move(my);
    s.cxx_ = std::move(cxx), s.cxy_ = std::move(cxy), s.cyy_ = std::move(cyy);
    return s;
  }

 private:
  static void centre(std::vector<double>& m, std::int64_t rows, std::int64_t w, std::vector<double>& mean) {
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = 0; c < w; ++c) mean[std::size_t(c)] += m[std::size_t(r * w + c)];
    for (auto& v : mean) v /= double(rows);
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = 0; c < w; ++c) m[std::size_t(r * w + c)] -= mean[std::size_t(c)];
  }
  std::vector<double> raw(const std::vector<double>& c, const std::vector<double>& u,
                          const std::vector<double>& v) const {
    std::vector<double> out = c;
    for (std::size_t i = 0; i < u.size(); ++i)
      for (std::size_t j = 0; j < v.size(); ++j) out[i * v.size() + j] += double(n_) * u[i] * v[j];
    return out;
  }

  std::int64_t n_ = 0, dx_ = 0, dy_ = 0;
  std::vector<double> mx_, my_, cxx_, cxy_, cyy_;
};

/// A source of paired rows (features/store_pairs.hpp's store_pairs is one): the widths of x and y,
/// and next(batch) filling batch.x [rows, width_a], batch.y [rows, width_b] until it runs out.
template <class Source>
concept pair_source = requires(Source& s, typename Source::batch_type& b) {
  { s.width_a() } -> std::convertible_to<std::int64_t>;
  { s.width_b() } -> std::convertible_to<std::int64_t>;
  { s.next(b) } -> std::convertible_to<bool>;
  b.x, b.y, b.rows;
};

/// The statistics of every row `pairs` gives from where it stands (one pass; it is left at the end).
template <pair_source Source>
pair_statistics accumulate(Source& pairs) {
  pair_statistics s(pairs.width_a(), pairs.width_b());
  typename Source::batch_type b;
  while (pairs.next(b)) s.add(b.x, b.y, b.rows);
  return s;
}

}  // namespace nexus::fusion
