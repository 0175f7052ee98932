// What every mixture kind shares (kinds/*.hpp, listed in kinds.hpp): the development data a fit
// reads, the result of a fit, and the helpers several kinds use. A mixture combines the teachers'
// next-outcome distributions over one shared alphabet (on the byte level: the 256 bytes plus the end
// of the text, so teachers of different tokenizers are directly comparable). Everything in fp64;
// distributions are rows of `outcomes` probabilities.
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
  /// At least one position and one teacher, or usage_error.
  void check_fittable() const {
    if (teachers < 1 || positions() < 1)
      throw usage_error("ensemble", "nothing to fit: " + std::to_string(positions()) + " positions");
  }
};

struct ensemble_fit {
  std::vector<double> weights;  // the kind's parameters (kinds/*.hpp say what they are)
  double log_likelihood = 0;    // of the development data under the fitted ensemble (nats)
  std::vector<double> trace;    // the log-likelihood after each iteration
  int iterations = 0;
};

/// Teachers' distributions at one position, one span each.
using teacher_dists = std::span<const std::span<const double>>;

/// The entropy (nats) of a distribution.
inline double entropy(std::span<const double> p) {
  double h = 0;
  for (const double v : p)
    if (v > 0) h -= v * std::log(v);
  return h;
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

namespace detail {
inline void check_weights(std::span<const double> w, std::int64_t teachers) {
  if (std::int64_t(w.size()) != teachers)
    throw usage_error("ensemble", std::to_string(w.size()) + " weights for " + std::to_string(teachers) + " teachers");
}
/// The weights of the `teachers` listed, in that order, each divided by their sum (when it is positive).
inline std::vector<double> renormalised(std::span<const double> w, std::span<const std::size_t> teachers) {
  double sum = 0;
  for (const auto t : teachers) sum += w[t];
  std::vector<double> out;
  for (const auto t : teachers) out.push_back(sum > 0 ? w[t] / sum : w[t]);
  return out;
}
}  // namespace detail

/// A mixture read along one document: mix() each position's distributions, observe() the outcome
/// that followed. Kinds without state (all but fixed share) mix with their parameters alone.
template <class Kind>
class stateless_reader {
 public:
  explicit stateless_reader(std::span<const double> params) : params_(params.begin(), params.end()) {}
  void mix(teacher_dists d, std::span<double> out) const { Kind::mix(d, params_, out); }
  void observe(teacher_dists, std::size_t) {}

 private:
  std::vector<double> params_;
};

}  // namespace nexus::fusion
