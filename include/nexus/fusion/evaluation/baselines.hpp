// Baselines a fused system must beat, fitted on development documents only: the teacher best there,
// and that teacher with a fitted temperature — so that a mixture's gain is not plain recalibration of
// one teacher (a log-linear mixture whose weights sum below one is partly a temperature).
#pragma once

#include <cmath>
#include <string_view>
#include <vector>

#include "nexus/fusion/mixtures/mixture.hpp"
#include "nexus/fusion/system/development.hpp"

namespace nexus::fusion {

/// p^(1/t) normalised over the outcomes (t > 0; t = 1 gives p).
inline byte_distribution tempered(const byte_distribution& p, double t) {
  byte_distribution q{};
  double top = 0;
  for (const double v : p) top = std::max(top, v);
  double z = 0;
  for (std::size_t k = 0; k < p.size(); ++k) z += q[k] = p[k] > 0 ? std::exp(std::log(p[k] / top) / t) : 0.0;
  for (auto& v : q) v /= z;
  return q;
}

/// Teacher t's nats over every position of `dev` (the bytes that follow, not the end of text).
inline double development_nats(const development_set& dev, std::size_t t, double temperature = 1) {
  double nats = 0;
  std::size_t i = 0;
  for (const auto& e : dev.examples)
    for (const char ch : e.prompt + e.continuation) {
      const auto c = static_cast<unsigned char>(ch);
      nats -= std::log(temperature == 1 ? dev.at(t, i)[c] : tempered(dev.at(t, i), temperature)[c]);
      ++i;
    }
  return nats;
}

/// The teacher with the fewest nats on the development documents.
inline std::size_t best_on_development(const development_set& dev) {
  std::size_t best = 0;
  double least = 0;
  for (std::size_t t = 0; t < dev.teachers(); ++t)
    if (const double n = development_nats(dev, t); t == 0 || n < least) best = t, least = n;
  return best;
}

/// The temperature of teacher t that minimises its development nats: golden-section search over
/// log t in [log 1/8, log 8] (the nats are convex in 1/t: a log-partition function plus a linear term).
inline double fit_temperature(const development_set& dev, std::size_t t) {
  ensemble_fit trace;
  return std::exp(golden_section_max([&](double log_t) { return -development_nats(dev, t, std::exp(log_t)); },
                                     std::log(0.125), std::log(8.0), 48, trace));
}

}  // namespace nexus::fusion
