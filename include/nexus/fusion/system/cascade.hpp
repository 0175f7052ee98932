// A cascade of teachers, cheapest first: at each position the teachers consulted so far give a
// distribution (the first alone, then the mixture of those consulted); where its entropy exceeds the
// stage's threshold the next teacher is consulted too. Thresholds are chosen on development text for
// a target share of escalations (a quantile of the entropies that reach the stage), and the curve of
// quality against share is what a user picks the trade-off from.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <vector>

#include "nexus/core/error.hpp"
#include "nexus/fusion/bytes/vocabulary.hpp"
#include "nexus/fusion/mixtures/mixture.hpp"

namespace nexus::fusion {

/// Teachers' distributions at positions of a text, [position][teacher], with the observed outcomes.
struct position_data {
  std::vector<std::vector<byte_distribution>> dists;  // [position][teacher]
  std::vector<std::int32_t> observed;                 // [position]
};

/// Mixes the distributions of the first `consulted` teachers of the cascade's order.
using subset_mixer =
    std::function<byte_distribution(std::span<const byte_distribution> ordered, std::size_t consulted)>;

struct cascade_step {
  byte_distribution p;
  std::size_t consulted = 1;  // teachers consulted at this position
};

/// The cascade's distribution at one position (`ordered`: the teachers' distributions in cascade order).
inline cascade_step cascade_position(std::span<const byte_distribution> ordered, std::span<const double> thresholds,
                                     const subset_mixer& mix) {
  if (thresholds.size() + 1 != ordered.size())
    throw usage_error("cascade", std::to_string(thresholds.size()) + " thresholds for " +
                                     std::to_string(ordered.size()) + " teachers");
  cascade_step s{ordered[0], 1};
  while (s.consulted < ordered.size() && entropy(s.p) > thresholds[s.consulted - 1]) {
    ++s.consulted;
    s.p = mix(ordered, s.consulted);
  }
  return s;
}

struct cascade_point {
  double target_share = 0;  // asked for at every stage
  std::vector<double> thresholds;
  double escalated_share = 0;  // positions that consulted more than the first teacher
  double consulted_mean = 0;   // teachers consulted per position
  double bits_per_byte = 0;
};

/// Thresholds for a share `share` of escalations at every stage on `d` (teachers in cascade order),
/// each the (1 - share) quantile of the entropies of the positions that reach the stage.
inline std::vector<double> cascade_thresholds(const position_data& d, double share, const subset_mixer& mix) {
  if (d.dists.empty()) throw usage_error("cascade", "no development positions");
  if (!(share >= 0 && share <= 1)) throw usage_error("cascade", "target share must be in [0, 1]");
  const auto T = d.dists[0].size();
  std::vector<double> thresholds;
  std::vector<std::size_t> reach(d.dists.size());
  for (std::size_t i = 0; i < reach.size(); ++i) reach[i] = i;
  for (std::size_t stage = 1; stage < T; ++stage) {
    std::vector<double> h;
    for (const auto i : reach) h.push_back(entropy(stage == 1 ? d.dists[i][0] : mix(d.dists[i], stage)));
    double theta = std::numeric_limits<double>::infinity();  // share 0: never escalate
    if (!h.empty() && share > 0) {
      std::sort(h.begin(), h.end());
      const auto k = std::size_t(std::floor((1 - share) * double(h.size())));
      theta = k == 0 ? -1.0 : h[std::min(k, h.size()) - 1];  // strictly above it: about `share` escalate
      auto f = float(theta);  // a bundle stores thresholds as F32: round up so the stored one escalates the same
      if (double(f) < theta) f = std::nextafter(f, std::numeric_limits<float>::infinity());
      theta = double(f);
    }
    thresholds.push_back(theta);
    std::vector<std::size_t> next;
    for (const auto i : reach)
      if (entropy(stage == 1 ? d.dists[i][0] : mix(d.dists[i], stage)) > theta) next.push_back(i);
    reach = std::move(next);
  }
  return thresholds;
}

/// The cascade with `thresholds` on `d`: its bits per byte and how much it escalated.
inline cascade_point evaluate_cascade(const position_data& d, std::span<const double> thresholds,
                                      const subset_mixer& mix) {
  cascade_point p;
  p.thresholds.assign(thresholds.begin(), thresholds.end());
  double nats = 0, escalated = 0, consulted = 0;
  for (std::size_t i = 0; i < d.dists.size(); ++i) {
    const auto s = cascade_position(d.dists[i], thresholds, mix);
    nats -= std::log(s.p[std::size_t(d.observed[i])]);
    escalated += s.consulted > 1;
    consulted += double(s.consulted);
  }
  const double n = double(std::max<std::size_t>(d.dists.size(), 1));
  p.bits_per_byte = nats / (n * std::log(2.0));
  p.escalated_share = escalated / n;
  p.consulted_mean = consulted / n;
  return p;
}

/// Quality against share: thresholds chosen on `dev` for each target share, evaluated on `test`.
inline std::vector<cascade_point> cascade_curve(const position_data& dev, const position_data& test,
                                                std::span<const double> shares, const subset_mixer& mix) {
  std::vector<cascade_point> curve;
  for (const double s : shares) {
    auto p = evaluate_cascade(test, cascade_thresholds(dev, s, mix), mix);
    p.target_share = s;
    curve.push_back(std::move(p));
  }
  return curve;
}

}  // namespace nexus::fusion
