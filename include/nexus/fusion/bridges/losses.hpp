// Training objectives for bridges, per row, with their gradients: MSE and cosine distance between a
// bridged hidden state and the target teacher's, and the KL divergence from the target teacher's
// stored top-k next-token distribution to the distribution of its head on the bridged state.
// Values and gradients are accumulated in double; Real is the caller's element type (float in
// training, double in the gradient checks).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "nexus/core/error.hpp"

namespace nexus::fusion {

enum class objective { mse, cosine, kl };

inline objective parse_objective(const std::string& s) {
  if (s == "mse") return objective::mse;
  if (s == "cosine") return objective::cosine;
  if (s == "kl") return objective::kl;
  throw usage_error("--objective", "'" + s + "': mse, cosine or kl");
}
inline const char* objective_name(objective o) {
  switch (o) {
    case objective::mse: return "mse";
    case objective::cosine: return "cosine";
    case objective::kl: return "kl";
  }
  return "?";
}

/// mean_i (y_i − t_i)²; grad (nullable) = dL/dy.
template <class Real>
double mse_row(const Real* y, const float* t, std::int64_t n, Real* grad) {
  double s = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double d = double(y[i]) - double(t[i]);
    s += d * d;
    if (grad) grad[i] = Real(2 * d / double(n));
  }
  return s / double(n);
}

/// 1 − cos(y, t); grad (nullable) = dL/dy = −(t / (|y||t|) − cos · y / |y|²). A zero vector has
/// cosine 0 and gradient 0.
template <class Real>
double cosine_row(const Real* y, const float* t, std::int64_t n, Real* grad) {
  double yy = 0, tt = 0, yt = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    yy += double(y[i]) * double(y[i]);
    tt += double(t[i]) * double(t[i]);
    yt += double(y[i]) * double(t[i]);
  }
  if (yy == 0 || tt == 0) {
    if (grad) std::fill(grad, grad + n, Real(0));
    return 1.0;
  }
  const double ny = std::sqrt(yy), nt = std::sqrt(tt), c = yt / (ny * nt);
  if (grad)
    for (std::int64_t i = 0; i < n; ++i) grad[i] = Real(-(double(t[i]) / (ny * nt) - c * double(y[i]) / yy));
  return 1.0 - c;
}

/// KL(p ‖ q) between a stored top-k distribution p (log-probabilities `top_lp` of tokens `top_ids`)
/// and q = softmax(logits), on the partition {each top-k token, everything else}: p's remaining mass
/// r = 1 − Σ p_k against q's mass outside the top-k ids. This is exactly what the store knows of p; it
/// is zero only when q gives each top-k token its probability and the rest its total.
/// dL/dlogit_j = q_j − p_j for a top-k token, q_j · (1 − r / q_rest) for any other.
template <class Real>
double topk_kl_row(const Real* logits, std::int64_t vocab, std::span<const float> top_lp,
                   std::span<const std::int32_t> top_ids, Real* grad) {
  if (top_lp.size() != top_ids.size()) throw usage_error("topk_kl", "log-probabilities and ids of different lengths");
  double max = -INFINITY;
  for (std::int64_t v = 0; v < vocab; ++v) max = std::max(max, double(logits[v]));
  double z = 0;
  for (std::int64_t v = 0; v < vocab; ++v) z += std::exp(double(logits[v]) - max);
  const double log_z = max + std::log(z);
  double p_sum = 0, q_top = 0, loss = 0;
  for (std::size_t k = 0; k < top_ids.size(); ++k) {
    const auto id = top_ids[k];
    if (id < 0 || id >= vocab)
      throw usage_error("topk_kl",
                        "stored token id " + std::to_string(id) + " outside a vocabulary of " + std::to_string(vocab));
    const double lp = double(top_lp[k]), lq = double(logits[id]) - log_z;
    p_sum += std::exp(lp);
    q_top += std::exp(lq);
    loss += std::exp(lp) * (lp - lq);
  }
  // p's remaining mass; none where the top k is the whole vocabulary (then 1 − Σ p is rounding only).
  const double r = std::int64_t(top_ids.size()) >= vocab ? 0.0 : std::max(0.0, 1.0 - p_sum);
  // q's mass outside the top k, summed directly (1 − q_top loses it when q_top is close to 1).
  double q_rest = 0;
  std::vector<char> in_top;
  if (grad || r > 0) {
    in_top.assign(std::size_t(vocab), 0);
    for (const auto id : top_ids) in_top[std::size_t(id)] = 1;
    for (std::int64_t v = 0; v < vocab; ++v)
      if (!in_top[std::size_t(v)]) q_rest += std::exp(double(logits[v]) - log_z);
  }
  if (r > 0) loss += r * (std::log(r) - std::log(std::max(q_rest, 1e-300)));
  if (grad) {
    const double rest_factor = q_rest > 0 ? 1.0 - r / q_rest : 1.0;
    for (std::int64_t v = 0; v < vocab; ++v) {
      const double q = std::exp(double(logits[v]) - log_z);
      grad[v] = Real(in_top[std::size_t(v)] ? q : q * rest_factor);
    }
    for (std::size_t k = 0; k < top_ids.size(); ++k)
      grad[top_ids[k]] = Real(double(grad[top_ids[k]]) - std::exp(double(top_lp[k])));
  }
  return loss;
}

/// −log softmax(logits)[target]: a next-token loss in nats.
template <class Real>
double next_token_loss(const Real* logits, std::int64_t vocab, std::int32_t target) {
  if (target < 0 || target >= vocab) throw usage_error("next_token_loss", "target outside the vocabulary");
  double max = -INFINITY;
  for (std::int64_t v = 0; v < vocab; ++v) max = std::max(max, double(logits[v]));
  double z = 0;
  for (std::int64_t v = 0; v < vocab; ++v) z += std::exp(double(logits[v]) - max);
  return max + std::log(z) - double(logits[target]);
}

}  // namespace nexus::fusion
