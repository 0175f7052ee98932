// Training a bridge on a feature store: teacher a's hidden states at layer i in, teacher b's at layer j
// (MSE or cosine) or b's stored top-k next-token distribution through b's frozen head (KL; then j is
// b's last layer, whose residual stream the head reads) as the target, at the shared boundaries of
// the store (fusion/store_pairs.hpp), held out by document. The loop is fusion/train.hpp.
#pragma once

#include <optional>

#include "nexus/fusion/bridges/bridge.hpp"
#include "nexus/fusion/bridges/frozen_head.hpp"
#include "nexus/fusion/bridges/losses.hpp"
#include "nexus/fusion/features/store_pairs.hpp"
#include "nexus/fusion/bridges/train.hpp"

namespace nexus::fusion {

/// The rows `idx` of a batch.
inline pair_batch gather_rows(const pair_batch& p, std::span<const std::int64_t> idx) {
  pair_batch out;
  out.width_a = p.width_a, out.width_b = p.width_b, out.top_k = p.top_k, out.rows = std::int64_t(idx.size());
  const auto A = std::size_t(p.width_a), B = std::size_t(p.width_b), K = std::size_t(p.top_k);
  for (const auto i : idx) {
    const auto r = std::size_t(i);
    out.x.insert(out.x.end(), p.x.begin() + std::ptrdiff_t(r * A), p.x.begin() + std::ptrdiff_t((r + 1) * A));
    out.y.insert(out.y.end(), p.y.begin() + std::ptrdiff_t(r * B), p.y.begin() + std::ptrdiff_t((r + 1) * B));
    if (K) {
      out.topk_logprobs.insert(out.topk_logprobs.end(), p.topk_logprobs.begin() + std::ptrdiff_t(r * K),
                               p.topk_logprobs.begin() + std::ptrdiff_t((r + 1) * K));
      out.topk_ids.insert(out.topk_ids.end(), p.topk_ids.begin() + std::ptrdiff_t(r * K),
                          p.topk_ids.begin() + std::ptrdiff_t((r + 1) * K));
    }
    out.document.push_back(p.document[r]);
    out.window.push_back(p.window[r]);
  }
  return out;
}

/// Every pair of a part of the split, then at most `max_rows` of them, evenly spaced (0: all).
inline pair_batch read_pairs(const feature_store& s, const store_layer& a, const store_layer& b,
                             const heldout_split& split, split_part part, std::int64_t max_rows) {
  store_pairs pairs(s, a, b, split, part);
  pair_batch all, chunk;
  while (pairs.next(chunk)) {
    all.width_a = chunk.width_a, all.width_b = chunk.width_b, all.top_k = chunk.top_k;
    all.rows += chunk.rows;
    all.x.insert(all.x.end(), chunk.x.begin(), chunk.x.end());
    all.y.insert(all.y.end(), chunk.y.begin(), chunk.y.end());
    all.topk_logprobs.insert(all.topk_logprobs.end(), chunk.topk_logprobs.begin(), chunk.topk_logprobs.end());
    all.topk_ids.insert(all.topk_ids.end(), chunk.topk_ids.begin(), chunk.topk_ids.end());
    all.document.insert(all.document.end(), chunk.document.begin(), chunk.document.end());
    all.window.insert(all.window.end(), chunk.window.begin(), chunk.window.end());
  }
  if (max_rows <= 0 || all.rows <= max_rows) return all;
  std::vector<std::int64_t> keep;
  for (std::int64_t k = 0; k < max_rows; ++k) keep.push_back(k * all.rows / max_rows);
  return gather_rows(all, keep);
}

/// The objective's mean loss over bridged rows y [rows, d_out] against the targets of `target`, and,
/// where dy is given, dL/dy (for a mean over the rows). KL needs b's frozen head.
inline double objective_loss(objective obj, const frozen_head* head, const std::vector<float>& y,
                             const pair_batch& target, std::vector<float>* dy) {
  const std::int64_t rows = target.rows, W = target.width_b;
  if (dy) dy->assign(y.size(), 0.0f);
  double sum = 0;
  switch (obj) {
    case objective::mse:
    case objective::cosine:
      for (std::int64_t r = 0; r < rows; ++r) {
        float* g = dy ? dy->data() + r * W : nullptr;
        sum += obj == objective::mse ? mse_row(y.data() + r * W, target.y.data() + r * W, W, g)
                                     : cosine_row(y.data() + r * W, target.y.data() + r * W, W, g);
      }
      break;
    case objective::kl: {
      if (!head) throw usage_error("--objective kl", "needs the frozen head of the target teacher");
      if (target.top_k <= 0) throw usage_error("--objective kl", "the store has no top-k log-probabilities");
      const std::int64_t V = head->vocab(), K = target.top_k;
      std::vector<float> logits(std::size_t(rows * V)), dl(dy ? std::size_t(rows * V) : 0);
      head->forward(y.data(), rows, logits.data());
      for (std::int64_t r = 0; r < rows; ++r)
        sum += topk_kl_row(logits.data() + r * V, V,
                           std::span<const float>(target.topk_logprobs).subspan(std::size_t(r * K), std::size_t(K)),
                           std::span<const std::int32_t>(target.topk_ids).subspan(std::size_t(r * K), std::size_t(K)),
                           dy ? dl.data() + r * V : nullptr);
      if (dy) head->backward(y.data(), logits.data(), dl.data(), rows, dy->data());
      break;
    }
  }
  if (dy)
    for (auto& v : *dy) v /= float(rows);
  return sum / double(rows);
}

/// The training problem of a bridge on paired rows: batches of `train`, the held-out loss over all of
/// `heldout` (in chunks of `chunk` rows). The bridge, data and head must outlive the problem.
template <class Kind>
train_problem bridge_problem(bridge<Kind, float>& br, const pair_batch& train, const pair_batch& heldout, objective obj,
                             const frozen_head* head, std::int64_t chunk = 64) {
  if (train.rows == 0) throw usage_error("train-bridge", "no training pairs in the store");
  if (heldout.rows == 0) throw usage_error("train-bridge", "no held-out pairs in the store");
  if (br.dims().d_in != train.width_a || br.dims().d_out != train.width_b)
    throw usage_error("train-bridge", "bridge " + std::to_string(br.dims().d_in) + " -> " +
                                          std::to_string(br.dims().d_out) + " for pairs " +
                                          std::to_string(train.width_a) + " -> " + std::to_string(train.width_b));
  if (obj == objective::kl && head && head->hidden() != train.width_b)
    throw usage_error("train-bridge", "the head reads rows of " + std::to_string(head->hidden()) + ", the target has " +
                                          std::to_string(train.width_b));
  train_problem p;
  for (auto& q : br.parameters())
    if (!q.frozen) p.params.push_back({q.name, q.value, q.grad, q.shape.size() >= 2});
  p.examples = train.rows;
  p.batch_loss = [&br, &train, obj, head](std::span<const std::int64_t> idx) {
    const auto b = gather_rows(train, idx);
    const auto y = br.forward(b.x);
    std::vector<float> dy;
    const double loss = objective_loss(obj, head, y, b, &dy);
    br.backward(dy);
    return loss;
  };
  p.held_out_loss = [&br, &heldout, obj, head, chunk] {
    double sum = 0;
    for (std::int64_t r0 = 0; r0 < heldout.rows; r0 += chunk) {
      std::vector<std::int64_t> idx;
      for (std::int64_t r = r0; r < std::min(heldout.rows, r0 + chunk); ++r) idx.push_back(r);
      const auto b = gather_rows(heldout, idx);
      sum += objective_loss(obj, head, br.apply(b.x), b, nullptr) * double(b.rows);
    }
    return sum / double(heldout.rows);
  };
  p.identity = {{"bridge", std::string(Kind::name)},
                {"traits", traits_json(Kind::name, br.dims())},
                {"objective", objective_name(obj)},
                {"train_rows", train.rows},
                {"heldout_rows", heldout.rows}};
  return p;
}

}  // namespace nexus::fusion
