// How sure a comparison over documents is: the paired bootstrap (Efron & Tibshirani 1993, ch. 13) of
// the relative difference of two methods' total nats on the same documents, and the verdict a
// pre-registered margin gives it. Documents are the unit resampled (positions within a document are
// not independent); the same seed gives the same interval.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "nexus/core/error.hpp"

namespace nexus::fusion {

/// a / b − 1 over a sample of documents (totals of nats, so of bits per byte on the same bytes), and
/// the bootstrap percentile interval around it.
struct relative_interval {
  double relative = 0, low = 0, high = 0;
};

/// The paired bootstrap of Σa / Σb − 1: `resamples` draws of the documents with replacement (seeded
/// mt19937_64), the `level` percentile interval (0.95: the 2.5th and 97.5th percentiles).
inline relative_interval paired_bootstrap(std::span<const double> a, std::span<const double> b,
                                          std::size_t resamples = 2000, std::uint64_t seed = 0, double level = 0.95) {
  if (a.size() != b.size() || a.empty())
    throw usage_error("bootstrap", "two methods on " + std::to_string(a.size()) + " and " + std::to_string(b.size()) +
                                       " documents (need the same, at least one)");
  if (resamples < 2 || !(level > 0 && level < 1))
    throw usage_error("bootstrap", "need ≥ 2 resamples and 0 < level < 1");
  const auto ratio = [](double x, double y) { return y > 0 ? x / y - 1 : 0.0; };
  double sa = 0, sb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) sa += a[i], sb += b[i];
  relative_interval r{ratio(sa, sb), 0, 0};
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::size_t> pick(0, a.size() - 1);
  std::vector<double> draws(resamples);
  for (auto& d : draws) {
    double x = 0, y = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      const auto k = pick(rng);
      x += a[k], y += b[k];
    }
    d = ratio(x, y);
  }
  std::sort(draws.begin(), draws.end());
  const auto at = [&](double q) {  // linear interpolation between order statistics
    const double pos = q * double(draws.size() - 1);
    const auto i = std::size_t(pos);
    const double f = pos - double(i);
    return i + 1 < draws.size() ? draws[i] * (1 - f) + draws[i + 1] * f : draws[i];
  };
  r.low = at((1 - level) / 2);
  r.high = at(1 - (1 - level) / 2);
  return r;
}

/// A method against the best teacher, by the interval of its relative difference.
enum class eval_verdict { better, non_inferior, worse };

/// better: the whole interval below zero; non-inferior: its upper end at most `margin` (relative);
/// worse otherwise (it may lose more than the margin).
inline eval_verdict judge(const relative_interval& r, double margin) {
  if (r.high < 0) return eval_verdict::better;
  if (r.high <= margin) return eval_verdict::non_inferior;
  return eval_verdict::worse;
}

inline const char* name_of(eval_verdict v) {
  switch (v) {
    case eval_verdict::better: return "better";
    case eval_verdict::non_inferior: return "non-inferior";
    case eval_verdict::worse: return "worse";
  }
  throw usage_error("verdict", "unknown verdict");
}

}  // namespace nexus::fusion
