// Choosing the next token: greedy, or temperature / top-k / top-p sampling from a seeded
// generator whose draws are the same on every platform (no std:: distributions).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <span>
#include <vector>

#include "nexus/core/error.hpp"

namespace nexus {

struct sampling_options {
  float temperature = 0.0f;  // 0: greedy
  int top_k = 0;             // 0: all tokens
  float top_p = 1.0f;        // nucleus: smallest set whose probability reaches top_p
  std::uint64_t seed = 0;

  void validate() const {
    if (!(temperature >= 0) || !std::isfinite(temperature))
      throw usage_error("--temperature", "must be a finite number ≥ 0");
    if (top_k < 0) throw usage_error("--top-k", "must be ≥ 0");
    if (!(top_p > 0 && top_p <= 1)) throw usage_error("--top-p", "must be in (0, 1]");
  }
};

class sampler {
 public:
  explicit sampler(sampling_options o) : opt_(o), rng_(o.seed) { opt_.validate(); }

  std::int32_t next(std::span<const float> logits) {
    if (opt_.temperature == 0.0f)
      return static_cast<std::int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    // Candidates by descending logit (ties: lower id first), cut by top-k.
    std::vector<std::int32_t> order(logits.size());
    std::iota(order.begin(), order.end(), 0);
    const std::size_t k = opt_.top_k > 0 ? std::min<std::size_t>(std::size_t(opt_.top_k), order.size()) : order.size();
    std::partial_sort(order.begin(), order.begin() + std::ptrdiff_t(k), order.end(), [&](auto a, auto b) {
      return logits[std::size_t(a)] > logits[std::size_t(b)] ||
             (logits[std::size_t(a)] == logits[std::size_t(b)] && a < b);
    });
    order.resize(k);
    std::vector<double> p(k);
    const double top = logits[std::size_t(order[0])] / double(opt_.temperature);
    double sum = 0;
    for (std::size_t i = 0; i < k; ++i)
      sum += p[i] = std::exp(logits[std::size_t(order[i])] / double(opt_.temperature) - top);
    std::size_t keep = k;
    if (opt_.top_p < 1.0f) {
      double cumulative = 0;
      for (std::size_t i = 0; i < k; ++i) {
        cumulative += p[i] / sum;
        if (cumulative >= opt_.top_p) {
          keep = i + 1;
          break;
        }
      }
    }
    double kept = 0;
    for (std::size_t i = 0; i < keep; ++i) kept += p[i];
    const double u = double(rng_() >> 11) * 0x1.0p-53 * kept;  // uniform in [0, kept)
    double acc = 0;
    for (std::size_t i = 0; i < keep; ++i)
      if ((acc += p[i]) > u) return order[i];
    return order[keep - 1];
  }

 private:
  sampling_options opt_;
  std::mt19937_64 rng_;  // the engine's output sequence is fixed by the standard
};

}  // namespace nexus
