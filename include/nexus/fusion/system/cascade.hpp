// A cascade of teachers, cheapest first: at each position the teachers consulted so far give a
// distribution (the first alone, then the mixture of those consulted); where its entropy exceeds the
// stage's threshold the next teacher is consulted too. Thresholds are chosen on development text for
// a target share of escalations (a quantile of the entropies that reach the stage); the share itself
// is chosen by cross-validation across development documents (choose_cascade_share: the least share
// whose held-out bits per byte stay within a tolerance of the full mixture's), and that curve of
// quality against share is what a user reads the trade-off from.
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
  std::vector<std::size_t> starts = {};               // positions where a document starts (none: one document)

  /// The positions of the documents `keep` says yes to (by document index), as their own data.
  template <class Keep>
  position_data documents_where(Keep&& keep) const {
    position_data out;
    const auto bounds = document_bounds();
    for (std::size_t k = 0; k + 1 < bounds.size(); ++k) {
      if (!keep(k)) continue;
      out.starts.push_back(out.observed.size());
      for (auto i = bounds[k]; i < bounds[k + 1]; ++i)
        out.dists.push_back(dists[i]), out.observed.push_back(observed[i]);
    }
    return out;
  }
  /// Each document's first position, then the end.
  std::vector<std::size_t> document_bounds() const {
    std::vector<std::size_t> b = starts.empty() ? std::vector<std::size_t>{0} : starts;
    b.push_back(observed.size());
    return b;
  }
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

/// The cascade's share chosen on development documents: the curve of held-out quality and cost
/// against the share asked for, the full mixture's held-out quality, and the share chosen.
struct cascade_choice {
  std::vector<cascade_point> curve;   // cross-validated: thresholds fitted without the documents they are scored on
  double mixture_bits_per_byte = 0;   // share 1 (every position reads every teacher), the same folds
  double tolerance = 0;               // relative, on bits per byte
  std::size_t folds = 0, chosen = 0;  // chosen: an index into curve
};

/// Shares tried by default: 0, 0.05, ..., 1.
inline std::vector<double> default_cascade_shares() {
  std::vector<double> s;
  for (int k = 0; k <= 20; ++k) s.push_back(k / 20.0);
  return s;
}

/// The least share of `shares` whose bits per byte, cross-validated over `folds` folds of documents
/// (document k in fold k mod folds; thresholds fitted on the others), is within `tolerance` (relative)
/// of the full mixture's: the cheapest cascade predicted to keep the mixture's quality on unseen text.
inline cascade_choice choose_cascade_share(const position_data& d, std::span<const double> shares, double tolerance,
                                           const subset_mixer& mix, std::size_t folds = 5) {
  const auto documents = d.document_bounds().size() - 1;
  if (documents < 2)
    throw usage_error("cascade", "choosing the share by cross-validation needs at least 2 development documents, got " +
                                     std::to_string(documents) + " (give the share instead)");
  if (shares.empty()) throw usage_error("cascade", "no shares to choose from");
  if (!(tolerance >= 0)) throw usage_error("cascade", "the tolerance must be at least 0");
  cascade_choice c;
  c.tolerance = tolerance;
  c.folds = std::min(folds, documents);
  std::vector<double> bits(shares.size() + 1, 0.0), escalated(shares.size() + 1, 0.0),
      consulted(shares.size() + 1, 0.0);
  double positions = 0;
  for (std::size_t f = 0; f < c.folds; ++f) {
    const auto train = d.documents_where([&](std::size_t k) { return k % c.folds != f; });
    const auto test = d.documents_where([&](std::size_t k) { return k % c.folds == f; });
    const double n = double(test.observed.size());
    positions += n;
    for (std::size_t s = 0; s <= shares.size(); ++s) {  // the last: share 1, the mixture
      const auto p = evaluate_cascade(test, cascade_thresholds(train, s < shares.size() ? shares[s] : 1.0, mix), mix);
      bits[s] += p.bits_per_byte * n, escalated[s] += p.escalated_share * n, consulted[s] += p.consulted_mean * n;
    }
  }
  c.mixture_bits_per_byte = bits.back() / positions;
  c.chosen = shares.size();
  for (std::size_t s = 0; s < shares.size(); ++s) {
    cascade_point p;
    p.target_share = shares[s];
    p.bits_per_byte = bits[s] / positions;
    p.escalated_share = escalated[s] / positions;
    p.consulted_mean = consulted[s] / positions;
    c.curve.push_back(p);
    if (p.bits_per_byte <= c.mixture_bits_per_byte * (1 + tolerance) &&
        (c.chosen == shares.size() || shares[s] < shares[c.chosen]))
      c.chosen = s;
  }
  if (c.chosen == shares.size()) {  // no share of the grid is close enough: every position reads every teacher
    cascade_point p;
    p.target_share = 1, p.bits_per_byte = c.mixture_bits_per_byte, p.escalated_share = 1;
    p.consulted_mean = consulted.back() / positions;
    c.curve.push_back(p);
  }
  return c;
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
